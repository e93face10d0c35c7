"""Docs that cannot drift: every fenced ```python block of README.md and docs/*.md runs here, and every number
its comments state is checked against what it prints.

The blocks of one page run in order in one namespace, as a reader pastes them into one session. Names the prose
around a block implies (``x``, the two models a comparison compares, a custom attention layer) come from the
page's entry in ``SETUP`` (and a block's, keyed by a piece of its code), small or on meta so the whole runner stays quick. A block opts out with a visible
marker on the line before its fence, ``<!-- snippet: skip (why) -->``; a skip without a reason fails.

A statement whose trailing comment, or a comment-only line right after it, states an integer of four digits or
more (``4089184256``, ``123,532,032``) must show that integer in its output: what it prints, or the value of the
expression (as a REPL shows it). Commas are ignored; a number the comment quotes must be the number produced.
"""
from __future__ import annotations

import ast
import contextlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from fxflops.errors import FxFlopsError

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!-- snippet: skip \((.+?)\) -->\s*$", re.M)
NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?!\d)|(?<![\w.,])-?\d{4,}(?!\d|,\d)")

# the prose's names, per page: what a reader has at hand when the page says "model", "x" or "batch"
COMMON = """
import torch, torchvision
import torch.nn as nn
import torch.nn.functional as F
from fxflops import trace_flops
x = torch.randn(1, 3, 64, 64)
batch = torch.randn(2, 3, 64, 64)
"""
ATTENTION = """
class MyAttentionLayer(nn.Module):
    def __init__(self, d=32, num_heads=4):
        super().__init__()
        self.num_heads, self.qkv, self.proj = num_heads, nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.proj(torch.softmax(q @ k.transpose(1, 2) / d ** 0.5, dim=-1) @ v)
MyAttention = MyAttentionLayer
"""
CONV_PAIR = """
std = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1))
dw = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, groups=3), nn.Conv2d(3, 64, 1))
"""
GPT2 = """
from transformers import GPT2Config, GPT2LMHeadModel
with torch.device("meta"):
    model = GPT2LMHeadModel(GPT2Config(use_cache=False)).eval()
"""


def example(name: str) -> str:
    """Code that runs examples/NAME.py quietly as module ``NAME`` (the model a page's prose is about)."""
    return f"""
import importlib.util, contextlib, io, sys
spec = importlib.util.spec_from_file_location("{name}", "{ROOT}/examples/{name}.py")
{name} = importlib.util.module_from_spec(spec)
argv, sys.argv = sys.argv, ["{name}.py", "{name}.svg"]  # not pytest's arguments: an example may read its own
try:
    with contextlib.redirect_stdout(io.StringIO()):
        spec.loader.exec_module({name})
finally:
    sys.argv = argv
"""


SETUP = {
    "README.md": COMMON + ATTENTION + CONV_PAIR,
    # the comparison is examples/conv_vs_depthwise.py's: 64->128 channels at 112x112, the article's groups=64
    "api.md": COMMON + example("conv_vs_depthwise") + "x = conv_vs_depthwise.x\n"
              "standard = conv_vs_depthwise.build_conv_block(64, 128).eval()\n"
              "depthwise = conv_vs_depthwise.build_conv_block(64, 128, use_dw=True).eval()\n",
    "api.md#.roofline(\"h100\")": "model = torchvision.models.resnet18().eval()\nx = torch.randn(1, 3, 64, 64)\n",
    "api.md#compare(trace_flops(standard": "x = conv_vs_depthwise.x\n",  # "model": any model; a small one
    "api.md#sweep(lambda T": GPT2,  # the sweep's model is GPT-2 small, as its comment says
    "api.md#utilization(r": "model = torchvision.models.resnet18()\n",  # a training step of an image model
    "api.md#except ShapeError": example("simple_cnn_graph") + "model = simple_cnn_graph.model\n",  # takes only 3x10x10
    "extending.md": COMMON + ATTENTION + """
x = torch.randn(2, 16, 32)
model = nn.Sequential(MyAttentionLayer(), nn.ReLU(), nn.Dropout(), nn.GELU()).eval()
layer = nn.Linear(32, 32)
def my_rule(call):
    return fxflops.contraction(call.args[0].numel() // call.args[0].shape[-1] * 32 * 32)
import fxflops
""",
    "graph.md": COMMON,
    "how-it-works.md": COMMON,
    "roofline.md": COMMON,
    "training.md": COMMON + "model = torchvision.models.resnet18()\nexample = batch\n",
    "llm.md": COMMON,
    "cli.md": COMMON,
    "faq.md": COMMON,
}


@dataclass
class Snippet:
    page: Path
    line: int  # of the opening fence
    code: str
    skip: str | None  # the reason given, or None

    @property
    def id(self) -> str:
        return f"{self.page.name}:{self.line}"


def snippets(page: Path) -> list[Snippet]:
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        out.append(Snippet(page, text[:m.start()].count("\n") + 1, m.group(1), skip.group(1) if skip else None))
    return out


def claims(code: str) -> dict[int, list[str]]:
    """Line number (1-based) of the statement a comment belongs to -> the integers the comment states."""
    lines = code.splitlines()
    tree = ast.parse(code)
    out: dict[int, list[str]] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # a comment inside a definition describes the code, not an output
        said = []
        for i in range(stmt.lineno - 1, stmt.end_lineno):
            said += NUMBER.findall(_comment(lines[i]))
        j = stmt.end_lineno  # comment-only lines right after the statement speak of its output
        while j < len(lines) and lines[j].lstrip().startswith("#"):
            said += NUMBER.findall(lines[j])
            j += 1
        if said:
            out[stmt.lineno] = said
    return out


def _comment(line: str) -> str:
    """The comment of one line of code (a ``#`` outside a string)."""
    for tok in _tokens(line):
        if tok.startswith("#"):
            return tok
    return ""


def _tokens(line: str) -> list[str]:
    import tokenize

    try:
        return [t.string for t in tokenize.generate_tokens(io.StringIO(line + "\n").readline)]
    except (tokenize.TokenError, IndentationError, SyntaxError):  # a line inside a bracket: look for a plain #
        return [line[line.index("#"):]] if "#" in line else []


def run(snippet: Snippet, ns: dict) -> None:
    """Run the block statement by statement, as a REPL would, checking each statement's stated numbers."""
    stated = claims(snippet.code)
    tree = ast.parse(snippet.code, filename=snippet.id)
    for stmt in tree.body:
        out = io.StringIO()
        value = None
        try:
            with contextlib.redirect_stdout(out):
                if isinstance(stmt, ast.Expr):
                    value = eval(compile(ast.Expression(stmt.value), snippet.id, "eval"), ns)
                else:
                    exec(compile(ast.Module([stmt], []), snippet.id, "exec"), ns)
        except FxFlopsError as exc:  # an optional extra not installed here (pandas): the doc says it needs it
            if 'pip install "fxflops[' not in str(exc) or stated.get(stmt.lineno):
                raise
        shown = (out.getvalue() + ("" if value is None else repr(value))).replace(",", "")
        for number in stated.get(stmt.lineno, []):
            assert number.replace(",", "") in shown, (
                f"{snippet.id} line {stmt.lineno}: the comment says {number}, the code shows:\n{shown[:2000]}")


ALL = [s for page in PAGES for s in snippets(page)]


def test_every_skip_gives_a_reason_and_the_runner_sees_the_blocks() -> None:
    assert len(ALL) >= 35, [s.id for s in ALL]
    for page in PAGES:
        text = page.read_text()
        assert text.count("<!-- snippet: skip") == len(SKIP.findall(text)), f"{page.name}: a skip without (reason)"


def test_claims_are_read_from_comments_only() -> None:
    code = "a = 12345  # 4,089,184,256 MACs\nprint(a)\n# (4089184256, 99)   <- exact\nb = [1000, 2000]\n"
    assert claims(code) == {1: ["4,089,184,256"], 2: ["4089184256"]}
    ns: dict = {}
    with pytest.raises(AssertionError, match="the comment says 4,089,184,256"):
        run(Snippet(Path("x.md"), 1, "a = 12345  # 4,089,184,256\n", None), ns)
    run(Snippet(Path("x.md"), 1, "print(4089184256)  # 4,089,184,256\n", None), ns)


HEAVY = {"llm.md", "roofline.md"}  # a Llama-7B serving estimate, measured MobileNetV3 nodes: 20-40 s each


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if p.name in HEAVY else p for p in PAGES],
                         ids=lambda p: p.name)
def test_page_snippets_run_and_say_what_they_print(page: Path, tmp_path: Path, monkeypatch) -> None:
    blocks = [s for s in ALL if s.page == page]
    if not blocks:
        pytest.skip(f"{page.name} has no python block")
    monkeypatch.chdir(tmp_path)  # the files the blocks write (resnet50.csv, serving.png) land here
    (tmp_path / "docs" / "images").mkdir(parents=True)
    monkeypatch.setenv("FXFLOPS_CACHE", str(tmp_path / "cache"))
    ns: dict = {"__name__": "__snippet__"}
    exec(SETUP.get(page.name, COMMON), ns)
    for s in blocks:
        if s.skip:
            continue
        for key, extra in SETUP.items():  # a block's own setup: keyed by a piece of its code, not by its line
            if key.startswith(page.name + "#") and key.split("#", 1)[1] in s.code:
                exec(extra, ns)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # a deprecated call in the docs is drift too
            run(s, ns)
