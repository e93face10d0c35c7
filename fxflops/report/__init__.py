"""Stage 3, the report: the :class:`Report` (totals and views), its text ``tables`` and the coverage ``audit``."""
from .audit import Audit, AuditRow, BlindSpot
from .report import Report

__all__ = ["Report", "Audit", "AuditRow", "BlindSpot"]
