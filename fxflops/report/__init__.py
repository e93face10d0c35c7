"""Stage 3, the report: the :class:`Report` (totals and views), its text ``tables``, the coverage ``audit``,
``export`` (CSV, Markdown, DataFrame) and ``compare`` (reports side by side)."""
from .audit import Audit, AuditRow, BlindSpot
from .compare import Align, Comparison, ModuleMatch, compare
from .report import Report

__all__ = ["Report", "Audit", "AuditRow", "BlindSpot", "Comparison", "ModuleMatch", "Align", "compare"]
