"""The package's shape: each module imports on its own, imports point down the pipeline, and the wheel works."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "fxflops"
MODULES = sorted(
    ".".join(p.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
    for p in PKG.rglob("*.py")
)
# The rooms in pipeline order. A module may import its own room and the ones before it, never a later one, counting
# imports inside functions; the only exceptions are spelled out in ALLOWED.
ROOMS = (
    ("base", ("types", "errors", "paths", "tensors", "units", "devices", "captured", "quick_shapes")),
    ("rules", ("rules",)),
    ("capture", ("capture",)),
    ("passes", ("passes",)),
    ("report", ("report",)),
    ("draw", ("draw",)),
    ("pipeline", ("pipeline", "measure", "api", "sweeping")),
    ("consumers", ("cli", "integrations", "llm")),
)
ROOM = {name: i for i, (_, names) in enumerate(ROOMS) for name in names}
# A room that does not come before another does not import it: capture and passes do not import each other.
APART = {("capture", "passes"), ("passes", "capture")}


def _room(module: str) -> int | None:
    parts = module.split(".")
    return ROOM.get(parts[1]) if len(parts) > 1 else None  # "fxflops" itself: the package's public face


def _imports(path: Path, type_hints: bool = False) -> dict[str, int]:
    """The fxflops modules ``path`` imports (at any depth in the file), each with the line of its import; imports under
    ``if TYPE_CHECKING:`` only with ``type_hints``."""
    mod = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
    package = mod.rsplit(".", 1)[0] if path.name != "__init__.py" else mod.removesuffix(".__init__")
    tree = ast.parse(path.read_text())
    hinted: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hinted.update(id(n) for b in node.body for n in ast.walk(b))
    out: dict[str, int] = {}
    for node in ast.walk(tree):
        if id(node) in hinted and not type_hints:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.setdefault(name, node.lineno)
            for a in node.names:
                out.setdefault(f"{name}.{a.name}", node.lineno)
        elif isinstance(node, ast.Import):
            for a in node.names:
                out.setdefault(a.name, node.lineno)
    return {n: line for n, line in out.items() if n in MODULE_SET}


MODULE_SET = set(MODULES)


def _delegations(path: Path) -> set[int]:
    """Lines of imports inside a method whose body is that import and one return: report's drawing delegations."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef):
            body = [b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
            if len(body) == 2 and isinstance(body[0], ast.ImportFrom) and isinstance(body[1], ast.Return):
                out.add(body[0].lineno)
    return out


ISOLATED_IMPORTS = """
import importlib, sys, traceback
import torch  # imported once; every fxflops module is then imported from scratch
failed = []
for name in sys.argv[1:]:
    for m in [m for m in sys.modules if m == "fxflops" or m.startswith("fxflops.")]:
        del sys.modules[m]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_on_its_own():
    """Each module imported first, into an empty fxflops: an import cycle fails here whatever the order elsewhere."""
    run = subprocess.run([sys.executable, "-c", ISOLATED_IMPORTS, *MODULES], cwd=PKG.parent, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_imports_point_down_the_pipeline():
    """No module imports a later room, nor capture and passes each other. The report reaches the drawing only through
    one-line delegating methods (``Report.render`` & co.), and the drawing sees the report only in type hints."""
    bad = []
    names = [r for r, _ in ROOMS]
    for path in PKG.rglob("*.py"):
        mod = ".".join(path.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
        here = _room(mod)
        if here is None:
            continue
        lazy = _delegations(path)
        for name, line in _imports(path).items():
            there = _room(name)
            if there is None or there == here:
                continue
            if there > here or (names[here], names[there]) in APART or (names[here], names[there]) == ("draw", "report"):
                if names[here] == "report" and names[there] == "draw" and line in lazy:
                    continue
                bad.append(f"{path.relative_to(PKG.parent)}:{line} imports {name}")
    assert not bad, bad


def test_no_module_is_part_of_an_import_cycle():
    """Every import counts, those inside functions too (type hints aside): no module reaches itself again."""
    graph = {}
    for path in PKG.rglob("*.py"):
        mod = ".".join(path.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__")
        # a module's own packages are imported before it anyway: ``from . import x`` adds no edge to them
        graph[mod] = {n for n in _imports(path) if n != mod and not mod.startswith(n + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_only_the_cli_and_the_api_call_trace_flops():
    # the trainer integrations sit beside the CLI, at the top of the pipeline: they count a step as a user would
    users = [p.relative_to(PKG.parent).as_posix() for p in PKG.rglob("*.py")
             if "trace_flops(" in p.read_text() and p.name not in ("api.py", "__init__.py")
             and p.parent.name not in ("cli", "integrations")]
    assert users == []


@pytest.mark.slow
def test_a_wheel_install_works_from_outside_the_repo(tmp_path):
    """``pip install .`` (not editable) into a fresh venv that borrows torch & co. from this one; run from elsewhere."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "borrowed.pth").write_text("\n".join(ours) + "\n")  # plain paths: their own .pth files stay unread
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", str(PKG.parent)],
                   check=True, cwd=tmp_path)
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([py, "-c", "import fxflops; print(fxflops.__file__)"], check=True, cwd=tmp_path,
                           capture_output=True, text=True, env=clean).stdout
    assert str(PKG.parent) not in where  # the installed copy, not the checkout
    help_text = subprocess.run([py, "-m", "fxflops.cli", "--help"], check=True, cwd=tmp_path, capture_output=True,
                               text=True, env=clean).stdout
    assert "fxflops" in help_text
    out = subprocess.run([py, "-m", "fxflops.cli", "torchvision:resnet18"], check=True, cwd=tmp_path,
                         capture_output=True, text=True, env=clean).stdout
    assert "1.81G MACs" in out
    typed = subprocess.run([py, "-c", "import fxflops, pathlib; print((pathlib.Path(fxflops.__file__).parent / "
                            "'py.typed').exists())"], check=True, cwd=tmp_path, capture_output=True, text=True,
                           env=clean).stdout
    assert typed.strip() == "True"
