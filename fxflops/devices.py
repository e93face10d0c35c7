"""Devices for the roofline estimate: peak FLOP/s per dtype and memory bandwidth.

The GPU presets are the vendors' published dense (no sparsity) peaks, each with its source; ``"cpu"`` is
measured on this machine by :func:`calibrate_cpu` (a float32 GEMM and a streaming copy, about two seconds)
and cached under ``~/.cache/fxflops`` (``$FXFLOPS_CACHE`` overrides), keyed by the machine, the torch
version and the number of threads. A :class:`Device` of your own takes plain numbers.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Mapping

import torch

from .errors import FxFlopsError

__all__ = ["Device", "PRESETS", "get_device", "preset_for", "preset_named", "calibrate_cpu", "dtype_key", "torch_tf32"]

# The names a Device's per-dtype peaks are keyed by, and the torch dtypes that run at each.
DTYPE_KEYS = ("fp64", "fp32", "tf32", "bf16", "fp16", "int8")
_TORCH_DTYPES = {"float64": "fp64", "float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "int8": "int8",
                 "uint8": "int8", "int32": "int8"}  # an int8 GEMM accumulates into int32


def dtype_key(dtype: str) -> str:
    """The peak a node of output dtype ``dtype`` (``float16``, ``fp16``...) runs at; unknown dtypes run at fp32."""
    return dtype if dtype in DTYPE_KEYS else _TORCH_DTYPES.get(dtype, "fp32")


# The TF32 switch of torch that governs a float32 op of each rule family: cuDNN's (convolutions and cuDNN's RNNs,
# on by default) or cuBLAS's (matmuls, off by default); other families do not run on tensor cores.
TF32_SWITCH = {"conv": "cudnn", "rnn": "cudnn", "linear": "cublas", "matmul": "cublas", "attention": "cublas",
               "transformer": "cublas"}
FP32_AS = ("torch", "fp32", "tf32")


def torch_tf32(family: str) -> bool:
    """Whether torch, as set now, runs a float32 op of rule family ``family`` as TF32 on a GPU:
    ``torch.backends.cudnn.allow_tf32`` for convolutions and RNNs, ``torch.backends.cuda.matmul.allow_tf32``
    (which ``torch.set_float32_matmul_precision("high"|"medium")`` turns on) for matmuls, linear layers and
    attention."""
    switch = TF32_SWITCH.get(family)
    if switch == "cudnn":
        return bool(torch.backends.cudnn.allow_tf32)
    return switch == "cublas" and bool(torch.backends.cuda.matmul.allow_tf32)


@dataclass(frozen=True)
class Device:
    """A roofline: peak FLOP/s (one number for every dtype, or a dict keyed by ``fp32``, ``tf32``, ``bf16``,
    ``fp16``, ``int8``, ``fp64``) and memory bandwidth in bytes/s. ``compute_efficiency`` and
    ``memory_efficiency`` (0..1] scale the peaks to what kernels attain."""

    peak_flops: float | Mapping[str, float]
    bandwidth: float
    name: str = "custom"
    source: str = ""
    compute_efficiency: float = 1.0
    memory_efficiency: float = 1.0
    # The peak a float32 contraction runs at: "torch" follows torch's TF32 switches as they are when the estimate is
    # made (convolutions TF32 by default, matmuls fp32), "fp32" or "tf32" sets it for every family.
    fp32_as: str = "torch"
    memory: float = 0.0  # memory capacity in bytes (0: not known), for what fits on the device

    def __post_init__(self) -> None:
        peaks = self.peak_flops.values() if isinstance(self.peak_flops, Mapping) else [self.peak_flops]
        if not all(p > 0 for p in peaks) or self.bandwidth <= 0:
            raise FxFlopsError(f"device {self.name!r}: peak_flops and bandwidth must be positive (FLOP/s and bytes/s)")
        if not (0 < self.compute_efficiency <= 1 and 0 < self.memory_efficiency <= 1):
            raise FxFlopsError(f"device {self.name!r}: efficiencies must be in (0, 1]")
        if self.fp32_as not in FP32_AS:
            raise FxFlopsError(f"device {self.name!r}: fp32_as must be one of {', '.join(FP32_AS)}, got {self.fp32_as!r}")

    def peak_key(self, dtype: str = "fp32", family: str = "") -> str:
        """The peak a node of ``dtype`` and rule ``family`` runs at: the dtype's key, or ``tf32`` for a float32
        node where :attr:`fp32_as` (``"torch"``: :func:`torch_tf32`) says so and the device has a TF32 peak."""
        key = dtype_key(dtype)
        if key != "fp32" or not isinstance(self.peak_flops, Mapping) or "tf32" not in self.peak_flops:
            return key
        tf32 = torch_tf32(family) if self.fp32_as == "torch" else self.fp32_as == "tf32"
        return "tf32" if tf32 else "fp32"

    def peak(self, dtype: str = "fp32", family: str = "") -> float:
        """Attained FLOP/s for ``dtype`` (a torch dtype name or a key) in rule ``family`` (see :meth:`peak_key`):
        that peak times the efficiency."""
        if not isinstance(self.peak_flops, Mapping):
            return float(self.peak_flops) * self.compute_efficiency
        key = self.peak_key(dtype, family)
        value = self.peak_flops.get(key, self.peak_flops.get("fp32"))
        if value is None:
            raise FxFlopsError(f"device {self.name!r} gives no peak for {dtype} nor fp32; add one to peak_flops")
        return float(value) * self.compute_efficiency

    @property
    def attained_bandwidth(self) -> float:
        return float(self.bandwidth) * self.memory_efficiency

    def ridge(self, dtype: str = "fp32") -> float:
        """The arithmetic intensity (FLOP/byte) above which a node is compute-bound."""
        return self.peak(dtype) / self.attained_bandwidth

    def with_efficiency(self, compute: float = 1.0, memory: float = 1.0) -> "Device":
        return replace(self, compute_efficiency=compute, memory_efficiency=memory)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["peak_flops"] = dict(self.peak_flops) if isinstance(self.peak_flops, Mapping) else self.peak_flops
        return d


T = 1e12
PRESETS: dict[str, Device] = {
    "a100": Device(
        {"fp64": 9.7 * T, "fp32": 19.5 * T, "tf32": 156 * T, "bf16": 312 * T, "fp16": 312 * T, "int8": 624 * T},
        2.039e12, name="a100", memory=80e9,
        source="NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB): dense peaks, HBM2e 2,039 GB/s, 80 GB"),
    "a100-40gb": Device(
        {"fp64": 9.7 * T, "fp32": 19.5 * T, "tf32": 156 * T, "bf16": 312 * T, "fp16": 312 * T, "int8": 624 * T},
        1.555e12, name="a100-40gb", memory=40e9,
        source="NVIDIA A100 Tensor Core GPU datasheet (SXM4 40GB): dense peaks, HBM2 1,555 GB/s, 40 GB"),
    "h100": Device(
        {"fp64": 34 * T, "fp32": 67 * T, "tf32": 494.7 * T, "bf16": 989.4 * T, "fp16": 989.4 * T, "int8": 1978.9 * T},
        3.35e12, name="h100", memory=80e9,
        source="NVIDIA H100 Tensor Core GPU datasheet (SXM5): dense peaks (half the sparsity figures), HBM3 3.35 TB/s, "
               "80 GB"),
    "h100-pcie": Device(
        {"fp64": 26 * T, "fp32": 51 * T, "tf32": 378 * T, "bf16": 756 * T, "fp16": 756 * T, "int8": 1513 * T},
        2.0e12, name="h100-pcie", memory=80e9,
        source="NVIDIA H100 Tensor Core GPU datasheet (PCIe): dense peaks (half the sparsity figures), HBM2e 2 TB/s, "
               "80 GB"),
    "h200": Device(
        {"fp64": 34 * T, "fp32": 67 * T, "tf32": 494.7 * T, "bf16": 989.4 * T, "fp16": 989.4 * T, "int8": 1978.9 * T},
        4.8e12, name="h200", memory=141e9,
        source="NVIDIA H200 Tensor Core GPU datasheet (SXM): dense peaks as H100, HBM3e 4.8 TB/s, 141 GB"),
    "b200": Device(
        {"fp64": 37 * T, "fp32": 75 * T, "tf32": 1125 * T, "bf16": 2250 * T, "fp16": 2250 * T, "int8": 4500 * T},
        8.0e12, name="b200", memory=180e9,
        source="NVIDIA HGX B200 datasheet (8 GPUs), per GPU: dense peaks (half the sparsity figures), HBM3e 8 TB/s, "
               "180 GB"),
    "l40s": Device(
        {"fp32": 91.6 * T, "tf32": 183 * T, "bf16": 366 * T, "fp16": 366 * T, "int8": 733 * T},
        0.864e12, name="l40s", memory=48e9,
        source="NVIDIA L40S datasheet: dense peaks (half the sparsity figures), no fp64 figure, GDDR6 864 GB/s, 48 GB"),
    "l4": Device(
        {"fp32": 30.3 * T, "tf32": 60 * T, "bf16": 121 * T, "fp16": 121 * T, "int8": 242.5 * T},
        0.3e12, name="l4", memory=24e9,
        source="NVIDIA L4 Tensor Core GPU datasheet: dense peaks (half the sparsity figures), no fp64 figure, "
               "GDDR6 300 GB/s, 24 GB"),
    "mi300x": Device(
        {"fp64": 163.4 * T, "fp32": 163.4 * T, "tf32": 653.7 * T, "bf16": 1307.4 * T, "fp16": 1307.4 * T,
         "int8": 2614.9 * T},
        5.3e12, name="mi300x", memory=192e9,
        source="AMD Instinct MI300X data sheet: dense matrix peaks (without sparsity), HBM3 5.3 TB/s, 192 GB"),
    "v100": Device(
        {"fp64": 7.8 * T, "fp32": 15.7 * T, "fp16": 125 * T, "int8": 62.8 * T},
        0.9e12, name="v100", memory=32e9,
        source="NVIDIA Tesla V100 datasheet (SXM2): fp16 on tensor cores; no bf16 (runs at the fp32 peak here), HBM2 "
               "900 GB/s, 32 GB"),
}


def preset_for(device: "str | torch.device") -> str | None:
    """The preset of the torch device ``device`` ("cpu" for a CPU, the GPU's preset by its name), or None."""
    device = torch.device(device)
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda" and torch.cuda.is_available():
        return preset_named(torch.cuda.get_device_name(device))
    return None


def preset_named(gpu: str) -> str | None:
    """The preset of a GPU by its name: the one whose every part is a word of it, the most specific first
    ("NVIDIA A100-SXM4-40GB" is ``a100-40gb``, "NVIDIA H100 PCIe" ``h100-pcie``, "NVIDIA L40S" ``l40s``, not ``l4``)."""
    words = set(gpu.lower().replace("-", " ").split())
    found = [key for key in PRESETS if set(key.split("-")) <= words]
    return max(found, key=lambda key: len(key.split("-")), default=None)


def default_device(measured_on: str | None) -> str:
    """The roofline device a report's times default to: the preset of where its nodes were measured
    (``Report.measured_on``), so that measured and estimated times compare; else this machine's ``"cpu"``."""
    if measured_on is None:
        return "cpu"
    preset = preset_for(measured_on)
    if preset is None:
        raise FxFlopsError(f"no roofline preset matches {measured_on}, where this report was measured: "
                           "pass device= (a preset name or fxflops.Device(peak_flops=..., bandwidth=...))")
    return preset


def get_device(device: "str | Device") -> Device:
    """A :class:`Device`, a preset name (``a100``, ``h100``, ``b200``... ``fxflops devices`` lists them) or ``"cpu"``
    (calibrated)."""
    if isinstance(device, Device):
        return device
    if not isinstance(device, str):
        raise FxFlopsError(f"device must be a preset name or an fxflops.Device, got {type(device).__name__}")
    key = device.lower()
    if key == "cpu":
        return calibrate_cpu()
    if key not in PRESETS:
        raise FxFlopsError(f"unknown device {device!r}: use one of {', '.join(['cpu', *PRESETS])} "
                           "(`fxflops devices` lists them) or fxflops.Device(peak_flops=..., bandwidth=...)")
    return PRESETS[key]


def cache_dir() -> Path:
    return Path(os.environ.get("FXFLOPS_CACHE") or Path.home() / ".cache" / "fxflops")


def _machine_key() -> str:
    ident = "|".join([platform.node(), platform.machine(), platform.processor(), _cpu_model(), torch.__version__,
                      str(torch.get_num_threads())])
    return hashlib.sha1(ident.encode()).hexdigest()[:12]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _rates(work: float, fn, seconds: float, rounds: int = 5) -> list[float]:
    """``work`` per second of ``fn`` in each of ``rounds`` rounds, each round the fastest of its runs (two at
    least) in its share of ``seconds``: the best round is the machine's rate, the spread how steady it was."""
    fn()  # warm-up: first-touch page faults and thread-pool start
    rates = []
    for _ in range(rounds):
        end, best, runs = time.perf_counter() + seconds / rounds, float("inf"), 0
        while runs < 2 or time.perf_counter() < end:
            t0 = time.perf_counter()
            fn()
            best, runs = min(best, time.perf_counter() - t0), runs + 1
        rates.append(work / best)
    return rates


def _last_cache_bytes() -> int:
    """The largest CPU cache Linux reports (0 elsewhere): the copy must be larger, or it measures the cache."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = f.read_text().strip().upper()
        with contextlib.suppress(ValueError):
            sizes.append(int(text[:-1]) * {"K": 2**10, "M": 2**20}[text[-1]] if text[-1] in "KM" else int(text))
    return max(sizes, default=0)


def calibrate_cpu(refresh: bool = False, seconds: float = 0.8) -> Device:
    """The ``"cpu"`` device: float32 GEMM FLOP/s and streaming-copy bytes/s measured here, cached per machine.

    Each figure is the best of five rounds (a busy machine only ever slows a run down); the copy is four times
    the last-level cache (64 MiB at least), so it measures memory, not cache. The source says the spread of
    the rounds, when they ran, and where the cached value lives; ``refresh=True`` (``fxflops devices
    --recalibrate``) measures again."""
    path = cache_dir() / f"cpu-{_machine_key()}.json"
    if not refresh and path.exists():
        try:
            d = json.loads(path.read_text())
            return Device(d["peak_flops"], d["bandwidth"], name="cpu",
                          source=f"{d['source']}; read from the cache {path} (`fxflops devices --recalibrate` "
                                 "measures again)")
        except (ValueError, KeyError, FxFlopsError):
            pass  # a damaged cache (or one from an older fxflops) is measured again
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    copy_bytes = max(64 * 2**20, 4 * _last_cache_bytes())
    with torch.no_grad():
        flops = _rates(2 * n**3, lambda: torch.mm(a, b, out=out), seconds)
        src = torch.empty(copy_bytes // 4)
        dst = torch.empty_like(src)
        bandwidth = _rates(2 * copy_bytes, lambda: dst.copy_(src), seconds)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    steady = "" if max(bandwidth) < 1.5 * min(bandwidth) else " (a wide spread: the machine was busy; the best is kept)"
    source = (f"measured on this machine ({_cpu_model()}, {torch.get_num_threads()} thread(s)) on {when}, best of "
              f"{len(flops)} rounds: {n}x{n} float32 GEMM {min(flops) / 1e9:.3g}-{max(flops) / 1e9:.3g} GFLOP/s, "
              f"{copy_bytes // 2**20} MiB copy {min(bandwidth) / 1e9:.3g}-{max(bandwidth) / 1e9:.3g} GB/s{steady}")
    dev = Device(max(flops), max(bandwidth), name="cpu", source=source)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"peak_flops": max(flops), "bandwidth": max(bandwidth), "source": source,
                                    "flops_rounds": flops, "bandwidth_rounds": bandwidth, "copy_bytes": copy_bytes,
                                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    except OSError:
        pass  # a read-only home: measured again next time
    return dev
