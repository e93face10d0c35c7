"""The model audit: what each distinct call target of a captured graph cost and why, and what hooks miss.

Silent zeros are the failure users of FLOPs counters suffer most: an op the tool does not know is
priced as nothing without a word. The audit lists every distinct call target of the graph (module
class, function, Tensor method) with the rule that priced it and its status:

* ``counted``   — a rule computed its cost;
* ``free``      — it does no floating-point work by design (views, copies, lookups), with the reason;
* ``ignored``   — the user asked for it to count as 0;
* ``uncounted`` — no rule knows it, so it was counted as 0: the number is too low.

It also measures the *hook blind spot*: the share of the FLOPs that happen outside any leaf
``nn.Module`` call (functional ops, Tensor methods and operators such as residual adds, ``@``,
softmax, interpolate, SDPA). A forward-hook counter such as thop only sees leaf module calls, so
this is the part of the model it cannot count.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..rules.registry import REGISTRY, Registry
from ..types import OP_KINDS, Backward, NodeRecord, Status
from ..units import human, percent
from .tables import grid
from .html import audit_html

if TYPE_CHECKING:
    from .report import Report

STATUS_ORDER = (Status.UNCOUNTED, Status.PARTIAL, Status.COUNTED, Status.IGNORED, Status.FREE)
KINDS = {"call_module": "module", "call_function": "function", "call_method": "method"}


@dataclass
class AuditRow:
    """One distinct call target with one status: how many nodes use it and what they cost together."""

    kind: str  # module | function | method
    target: str  # qualified name: nn.Conv2d, operator.add, F.interpolate, Tensor.softmax...
    status: Status
    nodes: int
    op: str  # the op type the rule reports ("" when no rule)
    macs: int
    flops: int
    reason: str  # why it is free / ignored / uncounted; for counted rows how, when not by a rule of its own
    # in train mode: how the nodes' backward was priced; Backward.MISSING: no backward formula, counted as 0
    backward: Backward = Backward.NONE
    bwd_flops: int = 0


@dataclass
class BlindSpot:
    """FLOPs and MACs that happen outside any leaf ``nn.Module`` call, i.e. invisible to forward hooks.

    On an fx graph the leaf calls are the ``call_module`` nodes; on a dynamo graph, the nodes whose innermost
    module has no children and a class a rule knows. A submodule fx could not trace and that a fallback capture
    priced whole is one ``call_module`` node: its inner functional ops are not split out, so on a partial
    capture the blind spot is a lower bound.
    """

    macs: int
    flops: int
    total_macs: int
    total_flops: int

    @property
    def flops_share(self) -> float:
        return self.flops / self.total_flops if self.total_flops else 0.0

    @property
    def macs_share(self) -> float:
        return self.macs / self.total_macs if self.total_macs else 0.0

    def describe(self) -> str:
        return (f"{percent(self.flops, self.total_flops)} of FLOPs ({human(self.flops)}) and "
                f"{percent(self.macs, self.total_macs)} of MACs ({human(self.macs)}) happen outside leaf module calls")

    def to_dict(self) -> dict[str, Any]:
        return {"macs": self.macs, "flops": self.flops, "macs_share": self.macs_share, "flops_share": self.flops_share}


@dataclass
class Audit:
    """The result of :meth:`Report.audit`: one row per distinct (call target, status)."""

    model_name: str
    rows: list[AuditRow]
    blind_spot: BlindSpot

    @property
    def uncounted(self) -> list[AuditRow]:
        return [r for r in self.rows if r.status == Status.UNCOUNTED]

    @property
    def incomplete(self) -> list[AuditRow]:
        """Rows whose price misses something: uncounted nodes, and partial ones (priced, with something inside
        left out: an opaque leaf priced through dynamo with uncounted ops, a nested count with gaps)."""
        return [r for r in self.rows if r.status.incomplete]

    @property
    def no_backward(self) -> list[AuditRow]:
        """In train mode, the targets whose rule has no backward formula (a custom rule): their gradient is 0."""
        return [r for r in self.rows if r.backward == Backward.MISSING]

    def by_status(self) -> dict[str, dict[str, int]]:
        """``{status: {"targets", "nodes", "flops"}}`` for the statuses present."""
        out: dict[str, dict[str, int]] = {}
        for r in self.rows:
            s = out.setdefault(r.status, {"targets": 0, "nodes": 0, "flops": 0})
            s["targets"] += 1
            s["nodes"] += r.nodes
            s["flops"] += r.flops
        return {k: out[k] for k in STATUS_ORDER if k in out}

    def summary(self) -> str:
        parts = [f"{s} {v['targets']} targets / {v['nodes']} nodes" for s, v in self.by_status().items()]
        lines = [f"{self.model_name}: {'; '.join(parts) or 'no op nodes'}",
                 f"hook blind spot: {self.blind_spot.describe()}"]
        if self.uncounted:
            lines.append("uncounted (priced as 0, the totals are too low): "
                         + ", ".join(r.target for r in self.uncounted))
        inside = [r for r in self.rows if r.status == Status.PARTIAL]
        if inside:
            lines.append("priced in part, with uncounted ops inside (too low): " + ", ".join(r.target for r in inside))
        if self.no_backward:
            lines.append("no backward formula (gradient priced as 0, the training total is too low): "
                         + ", ".join(r.target for r in self.no_backward))
        return "\n".join(lines)

    def table(self) -> str:
        """The audit as a text table, uncounted targets first, then by FLOPs."""
        total = self.blind_spot.total_flops
        rows = [("status", "kind", "target", "nodes", "rule / reason", "MACs", "FLOPs", "% FLOPs")]
        for r in self.rows:
            why = (r.reason or r.op) if r.status.priced else r.reason
            rows.append((r.status, r.kind, r.target, str(r.nodes), why, human(r.macs), human(r.flops),
                         percent(r.flops, total)))
        return self.summary() + "\n\n" + grid(rows, align_right=(3, 5, 6, 7))

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"<Audit {self.model_name}: {len(self.rows)} targets, {len(self.incomplete)} not fully priced>"

    def _repr_html_(self) -> str:
        return audit_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "by_status": self.by_status(),
            "hook_blind_spot": self.blind_spot.to_dict(),
            "uncounted": [r.target for r in self.uncounted],
            "incomplete": [r.target for r in self.incomplete],
            "no_backward": [r.target for r in self.no_backward],
            "rows": [asdict(r) for r in self.rows],
        }


# ---- naming call targets ----------------------------------------------------------------------------


# ---- the audit -------------------------------------------------------------------------------------


def _reason(n: NodeRecord) -> str:
    if n.status.priced:  # a rule of its own, or how a fallback capture priced it
        why = n.reason
        if n.left_out:
            why = (why + "; " if why else "") + "left out: " + ", ".join(n.left_out)
        return why
    if n.status == Status.UNCOUNTED:
        return "no rule: priced as 0" if n.reason == "no rule" else n.reason
    return n.reason


def audit(report: "Report") -> "Audit":
    """Group the op nodes of ``report`` by (call target, status); see the module docstring."""
    rows: dict[tuple, AuditRow] = {}
    for n in report.nodes:
        if n.kind not in OP_KINDS:
            continue
        kind, target, reason = KINDS[n.kind], n.qualname or n.target, _reason(n)
        bwd = n.bwd_status if report.mode == "train" else Backward.NONE
        if bwd == Backward.MISSING:
            reason = (reason + "; " if reason else "") + "no backward formula: gradient priced as 0"
        key = (kind, target, n.status, reason, bwd == Backward.MISSING)
        row = rows.get(key)
        if row is None:
            op = "" if n.status == Status.UNCOUNTED else n.op
            row = rows[key] = AuditRow(kind, target, n.status, 0, op, 0, 0, reason, bwd)
        row.nodes += 1
        row.macs += n.macs
        row.flops += n.flops
        row.bwd_flops += n.bwd_flops
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    ordered = sorted(rows.values(), key=lambda r: (order.get(r.status, 9), -r.flops, -r.nodes, r.target))
    return Audit(report.model_name, ordered, hook_blind_spot(report))


# ---- the hook blind spot ----------------------------------------------------------------------------


def hook_visible_paths(report: "Report", registry: Registry = REGISTRY) -> set[str]:
    """Paths of the modules a forward hook on leaf modules would see and could price: modules without
    children whose class a rule knows by name: in an fx graph the ``call_module`` nodes, plus childless
    subclasses with their own forward that fx traces through, such as timm's LayerNorm)."""
    known = {cls.__name__ for cls in registry.modules}
    paths = list(report.modules)
    parents = {p.rsplit(".", 1)[0] if "." in p else "" for p in paths if p}
    return {p for p, row in report.modules.items() if p and p not in parents and row.type in known}


def hook_blind_spot(report: "Report", registry: Registry = REGISTRY) -> BlindSpot:
    """FLOPs/MACs of op nodes that are not a leaf module call nor inside one (see :class:`BlindSpot`)."""
    visible = hook_visible_paths(report, registry)
    macs = flops = 0
    for n in report.nodes:
        if n.kind not in OP_KINDS or n.kind == "call_module" or n.module_path in visible:
            continue
        macs += n.fwd.macs
        flops += n.fwd.flops
    return BlindSpot(macs, flops, report.forward_macs, report.forward_flops)


# ---- what the count is missing ------------------------------------------------------------------------


def shortfall(report: "Report", strict: bool = False) -> str | None:
    """What the count could not price, in one sentence without advice (None when nothing): the
    uncounted targets, the partly priced ones and what they leave out, and FlopCounterMode's missing
    MACs. ``strict`` words it for an error ("would be counted as 0")."""
    parts = []
    left = report.uncounted
    if left:
        verb = "would be" if strict else "were"
        parts.append(f"{len(left)} node(s) have no FLOPs rule or could not be priced, and {verb} counted as 0: "
                     f"{', '.join(sorted({n.target for n in left}))}")
    partial = [n for n in report.nodes if n.status == Status.PARTIAL]
    if partial:
        inside = sorted({x for n in partial for x in n.left_out})
        parts.append(f"{len(partial)} node(s) were priced only in part ({', '.join(sorted({n.target for n in partial}))}"
                     f"), leaving out {', '.join(inside)}")
    if report.missing:
        parts.append(report.missing)
    nob = report.no_backward
    if nob:
        verb = "would be" if strict else "were"
        parts.append(f"{len(nob)} node(s) have no backward formula, and their gradients {verb} counted as 0: "
                     f"{', '.join(sorted({n.target for n in nob}))}")
    return " ".join("; ".join(parts).split()) if parts else None
