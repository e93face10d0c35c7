"""Short HTML tables for Jupyter (``_repr_html_``) of the report and the objects made from it.

Each is a headline and one or two tables of at most :data:`ROWS` rows: enough to see where the cost is, with
the method that gives the rest named at the end. Nothing here draws; the explorer page is :mod:`fxflops.draw.explore`.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Sequence

from ..types import Status
from ..units import human, percent, seconds
from .tables import fmt_shape, table_modules


if TYPE_CHECKING:
    from .audit import Audit
    from .compare import Comparison
    from .memory import Memory
    from .report import Report
    from .roofline import Roofline
    from .sweep import Sweep

ROWS = 5
_STYLE = "border-collapse:collapse;font-size:12px;margin:4px 0 8px"


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    def cell(tag: str, i: int, v: Any) -> str:
        align = "right" if i in right else "left"
        return f'<{tag} style="text-align:{align};padding:1px 8px">{html.escape(str(v))}</{tag}>'

    out = [f'<table style="{_STYLE}"><thead><tr>' + "".join(cell("th", i, h) for i, h in enumerate(head))
           + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows]
    return "".join(out) + "</tbody></table>"


def _block(title: str, line: str, *parts: str, more: str = "") -> str:
    tail = f'<div style="color:#666;font-size:11px">{html.escape(more)}</div>' if more else ""
    return (f'<div class="fxflops"><b>{html.escape(title)}</b> {html.escape(line)}' + "".join(parts) + tail
            + "</div>")


def _caption(text: str) -> str:
    return f'<div style="font-size:12px;margin-top:4px"><i>{html.escape(text)}</i></div>'


def report_html(r: "Report") -> str:
    line = (f"{human(r.total_macs)} MACs · {human(r.total_flops)} FLOPs · {human(r.total_params)} params · "
            f"{human(r.total_bytes)}B moved · {r.capture} capture"
            + (f" · one training step: forward {human(r.forward_flops)} + backward {human(r.backward_flops)} FLOPs"
               if r.mode == "train" else ""))
    status = r.shortfall()
    top_modules = sorted((m for m in table_modules(r, depth=2) if m.depth), key=lambda m: -m.flops)[:ROWS]
    mods = [(m.path, m.type, human(m.params), human(m.flops), percent(m.flops, r.total_flops)) for m in top_modules]
    nodes = [(n.name, n.op, n.module_path or "-", fmt_shape(n.output_shapes[0]) if n.output_shapes else "",
              human(n.flops), percent(n.flops, r.total_flops)) for n in r.top(ROWS)]
    return _block(
        r.model_name, line,
        f'<div style="font-size:12px;color:{"#b3261e" if status else "#1e7b34"}">'
        f"{html.escape(status or 'every node priced')}</div>",
        _caption(f"costliest modules (depth ≤ 2, {ROWS} of {len(r.modules)})"),
        _table(("module", "type", "params", "FLOPs", "% FLOPs"), mods, right=(2, 3, 4)),
        _caption(f"costliest nodes ({ROWS} of {len(r.nodes)})"),
        _table(("node", "op", "module", "output", "FLOPs", "% FLOPs"), nodes, right=(4, 5)),
        more="report.table(), report.top_table(k), report.explore('model.html') for everything")


def roofline_html(est: "Roofline") -> str:
    total = est.total_time
    mods = sorted(((p, e) for p, e in est.modules.items() if p and "." not in p), key=lambda pe: -pe[1].time)[:ROWS]
    return _block(
        f"{est.report.model_name} on {est.device.name}", est.summary().split(": ", 1)[1],
        _caption("modules with the longest estimated time (depth 1)"),
        _table(("module", "est. time", "% time", "bound"),
               [(p, seconds(e.time), percent(e.time, total), str(e.bound or "-")) for p, e in mods], right=(1, 2)),
        _caption("nodes with the longest estimated time"),
        _table(("node", "op", "module", "FLOPs", "bytes", "est. time", "% time", "bound"),
               [(n.name, n.op, n.module_path or "-", human(n.flops), human(n.bytes), seconds(e.time),
                 percent(e.time, total), str(e.bound or "-")) for n, e in est.top(ROWS)], right=(3, 4, 5, 6)),
        more="est.table(), est.top_table(k), est.plot('roofline.png')")


def audit_html(a: "Audit") -> str:
    statuses = [(s, v["targets"], v["nodes"], human(v["flops"])) for s, v in a.by_status().items()]
    gaps = [r for r in a.rows if r.status.incomplete or r.status == Status.IGNORED][:ROWS]
    parts = [_table(("status", "targets", "nodes", "FLOPs"), statuses, right=(1, 2, 3))]
    if gaps:
        parts += [_caption("not fully priced"),
                  _table(("status", "target", "nodes", "why"), [(r.status, r.target, r.nodes, r.reason) for r in gaps],
                         right=(2,))]
    return _block(f"audit of {a.model_name}", f"hook blind spot: {a.blind_spot.describe()}", *parts,
                  more="audit.table() lists every target")


def memory_html(m: "Memory") -> str:
    rows = [("parameters", m.params), ("gradients", m.grads), ("optimizer state", m.optimizer),
            ("saved activations", m.activations)] + ([("recomputed", m.recompute)] if m.recompute else [])
    return _block("memory of a training step", f"{human(m.total)}B in all",
                  _table(("what", "bytes", "share"), [(k, f"{human(v)}B", percent(v, m.total)) for k, v in rows],
                         right=(1, 2)))


def comparison_html(c: "Comparison") -> str:
    rows = c._module_rows(1, _Plain)
    return _block(f"comparison of {len(c.reports)} reports", "", "".join(
        f'<div style="font-size:12px">{html.escape(line)}</div>' for line in c.summary().splitlines()),
        _table(rows[0], rows[1:], right=tuple(range(2, len(rows[0]) - 1))), more="c.table(depth), c.op_table()")


def sweep_html(s: "Sweep") -> str:
    rows = s._rows()
    lines = "".join(f'<div style="font-size:12px">{html.escape(str(s.formula(m)))}</div>' for m in s.metrics)
    return _block(f"sweep over {', '.join(s.symbols)}", f"{len(s.points)} points", lines,
                  _table(rows[0], rows[1:], right=tuple(range(len(rows[0])))), more="s.formula(metric), s.chart(path)")


class _Plain:
    """How the comparison's rows are written here (Comparison._module_rows' formatter): HTML collapses the text
    table's indenting spaces, so depth is shown with dots."""

    num = staticmethod(human)

    @staticmethod
    def name(r: Any) -> str:
        return "· " * r.depth + r.name
