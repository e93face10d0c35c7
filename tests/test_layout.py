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
# Stages in pipeline order; a module may import its own stage and the ones before it, never a later one.
LATER = {
    "capture": ("report", "draw", "api", "cli"),
    "passes": ("report", "draw", "api", "cli"),
    "rules": ("capture", "passes", "report", "draw", "api", "cli"),
    "report": ("api", "cli"),
    "draw": ("api", "cli"),
}


def _imports(path: Path) -> set[str]:
    """Absolute names of the fxflops modules ``path`` imports (at any depth in the file)."""
    mod = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
    package = mod.rsplit(".", 1)[0] if path.name != "__init__.py" else mod.removesuffix(".__init__")
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {n for n in out if n == "fxflops" or n.startswith("fxflops.")}


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


@pytest.mark.parametrize("stage", sorted(LATER))
def test_imports_point_down_the_pipeline(stage):
    bad = []
    for path in (PKG / stage).rglob("*.py"):
        for name in _imports(path):
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in LATER[stage]:
                bad.append(f"{path.relative_to(PKG.parent)} imports {name}")
    assert not bad, bad


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
