"""The API audit: which parts of the installed torch's public surface fxflops can price.

Run from a source checkout: ``python -m tools.api_audit [--json] [--strict] [--write docs/api-coverage.md]``.
``model`` holds the result types and their Markdown, ``data`` what the registry does not know (entries that
are not applicable, probe examples), ``probes`` the walk over each family.
"""
from .model import FAMILIES, STATUSES, ApiAudit, ApiEntry
from .probes import api_audit

__all__ = ["api_audit", "ApiAudit", "ApiEntry", "FAMILIES", "STATUSES"]
