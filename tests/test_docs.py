"""Generated documentation must match the code it is generated from."""
from __future__ import annotations

from fxflops import REGISTRY
from tools.docgen import CONVENTIONS, conventions_markdown


def test_conventions_doc_is_current() -> None:
    assert CONVENTIONS.read_text() == conventions_markdown(), "docs/conventions.md is stale: run python -m tools.docgen"


def test_every_counted_rule_documents_its_formula() -> None:
    missing = [r.op for _, _, r in REGISTRY.rules() if r.status == "counted" and len(r.formula) < 10]
    assert not missing, f"rules without a formula docstring: {sorted(set(missing))}"


def test_every_free_rule_gives_a_reason() -> None:
    assert all(r.reason for _, _, r in REGISTRY.rules() if r.status == "free")


def test_every_byte_rule_documents_its_formula() -> None:
    formulas = [r.bytes for _, _, r in REGISTRY.rules() if r.bytes is not None]
    assert formulas and all(len(f.formula) >= 10 for f in formulas)
