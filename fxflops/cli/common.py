"""What every subcommand shares: the model specs, the example inputs, the options that build them, and the one
call that analyses them."""
from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import importlib.util
import inspect
import os
import sys
import warnings
from typing import Any, Sequence

import torch

from .. import __version__
from ..errors import FxFlopsError, TrainModeWarning, UncountedOpWarning, first_line, user_frame

DTYPES = {
    "float": torch.float32, "float32": torch.float32, "float16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "float64": torch.float64, "double": torch.float64,
    "long": torch.int64, "int64": torch.int64, "int": torch.int32, "int32": torch.int32, "bool": torch.bool,
}

class Parser(argparse.ArgumentParser):
    """argparse whose refusals are the CLI's one ``fxflops: error:`` line (exit 2), not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if "expected one argument" in message:  # argparse reads "-1,3" as an option, not as a value
            message += "; a value that starts with '-' takes '=', like --input=-1,3,224,224"
        self.exit(2, f"fxflops: error: {message}. `{self.prog} --help` lists the options\n")


def at_least(low: int):
    """An argparse ``type``: an integer no smaller than ``low`` (a negative --top or --depth is a typo)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value
    return parse


def needs(args: argparse.Namespace, base: str, *dependents: str) -> None:
    """Refuse options given without the option they only work with (their default is None or False)."""
    if getattr(args, base):
        return
    given = [d for d in dependents if getattr(args, d) not in (None, False)]
    if given:
        flags = ", ".join("--" + d.replace("_", "-") for d in given)
        verb = "works" if len(given) == 1 else "work"
        raise FxFlopsError(f"{flags} {verb} only with --{base.replace('_', '-')}, which is not given: add it, or "
                           f"drop {flags}")


EPILOG = """model specs:
  torchvision:resnet50            a torchvision model, built with weights=None
  timm:vit_small_patch16_224      a timm model, built with pretrained=False
  mypkg.models:build_net          any importable callable returning an nn.Module (or an nn.Module instance)
  path/to/file.py:Net             a class or function defined in a Python file
  hf:path/to/config_dir           a transformers causal LM built on meta from a local config.json (hf:ORG/NAME
                                  fetches only the config from the Hub, where there is network)

inputs (repeat --input for several positional inputs; name= makes a keyword input):
  --input 1,3,224,224             a float32 tensor of that shape
  --input input_ids=1,128:long    a keyword input of dtype int64 (zeros)
"""


def add_export_options(p: argparse.ArgumentParser, chart: str = "an icicle chart of FLOPs by module down to --depth") -> None:
    """Where the numbers go besides the terminal: a spreadsheet, a paper, a picture."""
    g = p.add_argument_group("export")
    g.add_argument("--csv", metavar="PATH", help="also write the table's rows to PATH as CSV (exact integers)")
    g.add_argument("--markdown", action="store_true", help="print the table as a Markdown pipe table")
    g.add_argument("--chart", metavar="PATH", help=f"draw {chart} into PATH (.png/.svg/.pdf; needs fxflops[plot])")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Options that say how to build the model and its example; shared by every subcommand."""
    p.add_argument("--version", action="version", version=f"fxflops {__version__}")
    p.add_argument("--input", action="append", default=[], metavar="SHAPE",
                   help="example input shape, e.g. 1,3,224,224 or ids=1,128:long (repeatable)")
    p.add_argument("--meta", action="store_true",
                   help="build the model and inputs on the meta device: nothing is allocated (large models)")
    p.add_argument("--mode", choices=("infer", "train"), default="infer",
                   help="infer: the forward pass (default); train: one training step, forward + backward FLOPs "
                        "(gradient-aware), with the model in training mode")
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "none"), default=None,
                   help="with --mode train: also print the memory of a step with this optimizer's state")
    p.add_argument("--train", action="store_true",
                   help="the forward pass only, with the model in training mode (dropout, batch-norm batch "
                        "statistics); not the cost of a training step: that is --mode train")
    p.add_argument("--capture", choices=("auto", "fx", "record", "dynamo"), default="auto",
                   help="graph capture: fx symbolic tracing, record (one eager run on fake tensors), dynamo, or "
                        "auto (fx, then record, then dynamo; docs/capture.md)")
    p.add_argument("--verbose", action="store_true", help="errors in full (each capture path's reason), not one line")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 2) when an op has no FLOPs rule instead of counting it as 0 with a note")


def parse_input(spec: str, device: torch.device | None = None) -> tuple[str | None, torch.Tensor]:
    """``"1,3,224,224"`` → float tensor; ``"ids=1,128:long"`` → ("ids", int64 zeros)."""
    given, name = spec, None
    if "=" in spec:
        name, spec = spec.split("=", 1)
    dtype = torch.float32
    if ":" in spec:
        spec, dt = spec.rsplit(":", 1)
        if dt not in DTYPES:
            raise FxFlopsError(f"unknown dtype {dt!r} in --input {given!r}; use one of {', '.join(sorted(DTYPES))}")
        dtype = DTYPES[dt]
    parts = [s.strip() for s in spec.replace("x", ",").split(",")]
    try:
        shape = tuple(int(s) for s in parts)
    except ValueError:  # a letter, or an empty size between two commas, is a typo: never drop it silently
        raise FxFlopsError(f"--input {given!r} is not a shape; write its sizes separated by commas, "
                           "like 1,3,224,224") from None
    if any(d < 1 for d in shape):
        raise FxFlopsError(f"--input {given!r} has a size below 1; every size of the example must be at least 1")
    if dtype.is_floating_point:
        meta = device is not None and device.type == "meta"
        t = torch.empty(shape, dtype=dtype, device=device) if meta else torch.randn(shape, dtype=dtype, device=device)
    else:
        t = torch.zeros(shape, dtype=dtype, device=device)
    return name, t


def _device(name: str | None) -> torch.device | None:
    if name is None:
        return None
    try:
        device = torch.device(name)
    except RuntimeError:
        raise FxFlopsError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FxFlopsError(f"--device {name}: this torch sees no CUDA device; use --device cpu")
    return device


def load_model(spec: str) -> torch.nn.Module:
    """Build the model a spec names (see EPILOG)."""
    if ":" not in spec:
        raise FxFlopsError(f"model spec {spec!r} needs a colon: torchvision:NAME, timm:NAME, module:attr or file.py:attr")
    if spec.startswith("hf:"):
        return _hf_model(spec[3:])
    where, attr = spec.rsplit(":", 1)
    if where == "torchvision":
        return _torchvision_model(attr)
    if where == "timm":
        return _timm_model(attr)
    module = _load_file(where) if where.endswith(".py") or os.sep in where else _import(where)
    try:
        obj: Any = getattr(module, attr)
    except AttributeError:
        raise FxFlopsError(f"{where} has no attribute {attr!r}{_close(attr, dir(module))}") from None
    if isinstance(obj, torch.nn.Module):
        return obj
    if not callable(obj):
        raise FxFlopsError(f"{spec} is a value of type {type(obj).__name__}, not a model: name an nn.Module, a class, or a "
                           "function that returns a module when called without arguments")
    obj = _build(spec, obj)
    if not isinstance(obj, torch.nn.Module):
        raise FxFlopsError(f"{spec} did not give an nn.Module (got {type(obj).__name__})")
    return obj


def _close(name: str, names: Sequence[str]) -> str:
    near = difflib.get_close_matches(name, list(names), n=3)
    return f" (did you mean {', '.join(near)}?)" if near else ""


def _build(spec: str, make: Any, **kwargs: Any) -> Any:
    """Call the model's constructor; its failure is the user's code failing, told in one line with its place."""
    try:
        return make(**kwargs)
    except FxFlopsError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the user's constructor becomes one error line
        where = user_frame(exc.__traceback__)
        raise FxFlopsError(f"building {spec} raised {first_line(exc)}" + (f" ({where})" if where else "") +
                           ". What to do: the spec must name a class or function callable without arguments") from None


def _torchvision_model(name: str) -> torch.nn.Module:
    import torchvision

    known = torchvision.models.list_models()
    if name not in known:
        raise FxFlopsError(f"torchvision has no model {name!r}{_close(name, known)}; "
                           "torchvision.models.list_models() lists them")
    builder = torchvision.models.get_model_builder(name)
    kwargs = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:  # detection/segmentation: no download either
        kwargs["weights_backbone"] = None
    return _build(f"torchvision:{name}", builder, **kwargs)


def _hf_model(name: str) -> torch.nn.Module:
    """A transformers causal LM built on meta from a config: a local directory holding config.json, or a Hub
    name whose config.json alone is fetched (never the weights). The model's dtype is the config's."""
    import transformers

    if not os.path.isdir(name) and (os.sep in name and not name.count("/") == 1 or os.path.exists(name)):
        raise FxFlopsError(f"hf:{name}: no such directory; give a directory holding config.json or a Hub name "
                           "(hf:ORG/NAME)")
    try:
        config = transformers.AutoConfig.from_pretrained(name)
    except Exception as exc:  # noqa: BLE001 - a missing file, a network error, an unknown model type: one line
        raise FxFlopsError(f"hf:{name}: could not read its config ({first_line(exc)}). What to do: give a directory "
                           "holding a config.json, or a Hub name where this machine has network") from None
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    with torch.device("meta"):
        model = _build(f"hf:{name}", transformers.AutoModelForCausalLM.from_config, config=config)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return (model.to(dtype) if isinstance(dtype, torch.dtype) else model).eval()


def _timm_model(name: str) -> torch.nn.Module:
    import timm

    if not timm.is_model(name.split(".", 1)[0]):  # a pretrained tag (name.tag) names the same architecture
        raise FxFlopsError(f"timm has no model {name!r}{_close(name, timm.list_models())}; "
                           "timm.list_models('pattern*') lists them")
    return _build(f"timm:{name}", timm.create_model, model_name=name, pretrained=False)


def _import(where: str) -> Any:
    if os.getcwd() not in sys.path:  # the console script's path does not hold the directory it is run from
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and (where == exc.name or where.startswith(exc.name + ".")):
            raise FxFlopsError(f"no module named {where!r}. What to do: check the spelling, install it, run from the "
                               "directory that holds it, or name a file: path/to/file.py:NAME") from None
        missing = f"install {exc.name!r}" if exc.name else "install what it imports"
        raise FxFlopsError(f"importing {where} failed: {first_line(exc)}. What to do: {missing}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while being imported
        where_ = user_frame(exc.__traceback__)
        raise FxFlopsError(f"importing {where} raised {first_line(exc)}" + (f" ({where_})" if where_ else "")) from None


def _load_file(where: str) -> Any:
    path = os.path.abspath(where)
    if not os.path.isfile(path):
        raise FxFlopsError(f"no such file: {where}")
    mod_spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(mod_spec)
    sys.path.insert(0, os.path.dirname(path))
    try:
        mod_spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise FxFlopsError(f"{where}:{exc.lineno}: {exc.msg} (a syntax error: the file cannot be loaded)") from None
    except Exception as exc:  # noqa: BLE001 - the user's file failed while being run
        at = user_frame(exc.__traceback__)
        raise FxFlopsError(f"loading {where} raised {first_line(exc)}" + (f" ({at})" if at else "")) from None
    return module


def default_input(spec: str, model: torch.nn.Module) -> list[str]:
    """Image models get their natural input size; anything else must be told."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if isinstance(cfg, dict) and cfg.get("input_size"):
        return ["1," + ",".join(str(d) for d in cfg["input_size"])]
    if spec.startswith("torchvision:"):
        size = 299 if "inception" in spec else 224
        return [f"1,3,{size},{size}"]
    raise FxFlopsError("this model needs an example: pass --input SHAPE (e.g. --input 1,3,224,224)")


def build_model(spec: str, args: argparse.Namespace) -> torch.nn.Module:
    """The model a spec names, on the meta device with --meta, in eval mode unless --train."""
    with torch.device("meta") if args.meta else contextlib.nullcontext():
        model = load_model(spec)
    model.train(args.train or getattr(args, "mode", "infer") == "train")
    return model


def prepare(args: argparse.Namespace) -> tuple[torch.nn.Module, Any]:
    """The model (in eval mode unless --train) and its example from the parsed options."""
    model = build_model(args.model, args)
    device = torch.device("meta") if args.meta else _device(getattr(args, "device", None))
    return model, make_example(args.input or default_input(args.model, model), device)


def make_example(specs: Sequence[str], device: torch.device | None) -> Any:
    """The example of several ``--input`` specs: one tensor, a tuple of them, or a dict of keyword tensors."""
    positional, keywords = [], {}
    for s in specs:
        name, t = parse_input(s, device)
        if name:
            keywords[name] = t
        else:
            positional.append(t)
    if keywords and positional:
        raise FxFlopsError("mix of positional and keyword --input values: name them all (name=SHAPE)")
    return keywords or (positional[0] if len(positional) == 1 else tuple(positional))


def analyse(model: torch.nn.Module, example: Any, args: argparse.Namespace, strict: bool | None = None):
    """The report of ``model`` on ``example`` with the options every subcommand shares (``strict`` overrides
    ``--strict``)."""
    from ..api import trace_flops

    with warnings.catch_warnings():  # the library's warning gives Python advice; tell_shortfall gives the CLI's
        warnings.simplefilter("ignore", UncountedOpWarning)
        warnings.simplefilter("ignore", TrainModeWarning)  # --train asks for it; the CLI sets eval otherwise
        report = trace_flops(model, example, ignore=args.ignore, capture=args.capture,
                             strict=bool(args.strict) if strict is None else strict,
                             measure=getattr(args, "measure", False), repeats=getattr(args, "repeats", None) or 5,
                             mode=getattr(args, "mode", "infer"), bytes=getattr(args, "bytes", "eager"))
    tell_unused_ignores(report, args.ignore)
    return report


def tell_unused_ignores(report: Any, ignore: Sequence[str]) -> None:
    """An --ignore entry that names nothing in the graph is a typo until shown otherwise: a warning with the
    closest names, since the count it meant to change did not change."""
    names = {str(v) for n in report.nodes for v in (n.op, n.target, n.module_type) if v}
    for entry in ignore:
        if entry not in names:
            print(f"fxflops: warning: --ignore {entry} matched nothing in the graph{_close(entry, sorted(names))}; "
                  "`fxflops audit MODEL` lists the op names", file=sys.stderr)


def wrote(what: str, path: Any) -> None:
    print(f"fxflops: {what} written to {path}", file=sys.stderr)


CLI_FIX = ("What to do: count them as 0 with --ignore OP, or price them with a custom rule (docs/extending.md); "
           "`fxflops audit MODEL` lists every op with its status")


def count(args: argparse.Namespace) -> Any:
    """The report of the model the options name (see :func:`analyse`); what it could not price is for
    :func:`tell_shortfall` to say, in CLI terms."""
    model, example = prepare(args)
    return analyse(model, example, args, strict=False)


def tell_shortfall(report: Any, strict: bool) -> None:
    """What the count could not price: one note on stderr, or with --strict the error."""
    gap = report.shortfall(strict=strict)
    if gap and strict:
        sys.stdout.flush()
        raise FxFlopsError(f"--strict: {gap}. {CLI_FIX}")
    if gap:
        print(f"fxflops: note: {gap}. {CLI_FIX}", file=sys.stderr)
