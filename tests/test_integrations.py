"""fxflops in the training loop: exact step FLOPs at new batch shapes from one fit, Hugging Face's Trainer with
FlopsCallback and Lightning's Trainer with FlopsMonitor on CPU, and Lightning's measure_flops on the same models."""
from __future__ import annotations

import gc
import logging
import subprocess
import sys
import warnings
import weakref
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

import fxflops
from fxflops.devices import calibrate_cpu
from fxflops.integrations.step_flops import step_flops

ROOT = Path(__file__).resolve().parents[1]


def gpt2() -> nn.Module:
    import transformers as T

    torch.manual_seed(0)
    cfg = T.GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=128, n_positions=64)
    return T.GPT2LMHeadModel(cfg).train()


def lm_batch(b: int, t: int) -> dict:
    ids = torch.randint(0, 128, (b, t))
    return {"input_ids": ids, "labels": ids}


def step(model: nn.Module, example) -> fxflops.Report:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fxflops.trace_flops(model, example, mode="train")


def test_import_fxflops_integrations_imports_no_trainer():
    code = ("import sys, fxflops, fxflops.integrations, fxflops.integrations.step_flops; "
            "print(sorted(m for m in ('lightning', 'transformers', 'timm', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "[]", out.stderr


def test_step_flops_fits_once_and_gives_new_lengths_exactly():
    model = gpt2()
    counter = step_flops(model, lm_batch(4, 32))
    assert counter.formulas and counter.checked_at == (4, 32) and "checked at B=4, T=32" in counter.note
    assert step_flops(model, lm_batch(4, 32)) is counter  # cached per model and layout
    for b, t in [(4, 17), (2, 50), (3, 9), (8, 64)]:
        got = counter(b, t)
        assert got.exact_by == "formula"
        assert got.flops == got.model_flops == step(model, lm_batch(b, t)).total_flops
    gone = weakref.ref(model)
    del model, counter
    gc.collect()
    assert gone() is None  # the cache does not keep the model alive


class ShapeBranch(nn.Module):
    """Runs an extra layer only on long sequences: its FLOPs are no polynomial in T."""

    def __init__(self):
        super().__init__()
        self.emb, self.fc, self.extra = nn.Embedding(16, 8), nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, ids):
        x = self.fc(self.emb(ids))
        return self.extra(x) if ids.shape[1] > 12 else x


def test_step_flops_checks_beyond_the_grid_when_the_example_is_on_it():
    model = gpt2()
    counter = step_flops(model, lm_batch(2, 30))  # B=2 and T=30 are both points of the fit's grid
    assert counter.checked_at == (4, 30) and counter(4, 30).flops == step(model, lm_batch(4, 30)).total_flops


def test_step_flops_traces_each_shape_where_no_formula_fits():
    model = ShapeBranch()
    counter = step_flops(model, torch.zeros(2, 20, dtype=torch.long))
    assert not counter.formulas and "each shape is traced" in counter.note
    for t in (8, 30):
        got = counter(2, t)
        assert got.exact_by == "trace" and got.flops == step(model, torch.zeros(2, t, dtype=torch.long)).total_flops


class LengthCycle:
    """Pads each batch to the next length of ``lengths``: a variable-length stream, in a known order."""

    def __init__(self, lengths):
        self.lengths, self.calls = list(lengths), 0

    def __call__(self, items):
        t = self.lengths[self.calls % len(self.lengths)]
        self.calls += 1
        ids = torch.stack([item["input_ids"][:t] for item in items])
        return {"input_ids": ids, "labels": ids}


def hf_train(model: nn.Module, lengths, accumulation: int = 1, steps: int = 3, install: bool = False):
    import transformers as T
    from fxflops.integrations.transformers import FlopsCallback

    data = [{"input_ids": torch.randint(0, 128, (64,))} for _ in range(64)]
    args = T.TrainingArguments(output_dir="unused", max_steps=steps, per_device_train_batch_size=4,
                               gradient_accumulation_steps=accumulation, logging_steps=1, report_to=[],
                               use_cpu=True, save_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
    trainer = T.Trainer(model=model, args=args, train_dataset=data, data_collator=LengthCycle(lengths),
                        callbacks=None if install else [FlopsCallback(device="cpu")])
    if install:  # first, before the reporting integrations
        callback = FlopsCallback.install(trainer, device="cpu")
        assert trainer.callback_handler.callbacks[0] is callback
    trainer.train()
    logged = [h for h in trainer.state.log_history if "fxflops/flops_per_step" in h]
    return trainer, logged


def test_hugging_face_trainer_logs_the_exact_step(caplog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = gpt2()
    lengths = [32, 20, 44]  # the first is traced; the next two come from the formula
    with caplog.at_level(logging.WARNING, logger="fxflops"):
        trainer, logged = hf_train(model, lengths)
    exact = [step(model, lm_batch(4, t)).total_flops for t in lengths]
    assert [h["fxflops/flops_per_step"] for h in logged] == exact
    assert trainer.state.total_flos == sum(exact)  # not 6·N·tokens
    said = [r.getMessage() for r in caplog.records if "total_flos" in r.getMessage()]
    assert len(said) == 1 and "not the Trainer's 6·N·tokens" in said[0]
    peak = calibrate_cpu().peak("fp32")
    for h in logged:  # MFU of the measured step time over the calibrated cpu's peak
        assert 0 < h["fxflops/mfu"] < 1
        assert h["fxflops/mfu"] * peak == pytest.approx(h["fxflops/tflops_per_second"] * 1e12, rel=1e-9)
        assert "fxflops/hfu" not in h  # no checkpointing


def test_hugging_face_gradient_accumulation_counts_every_micro_batch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = gpt2()
    trainer, logged = hf_train(model, [16, 24], accumulation=2, steps=2, install=True)
    both = step(model, lm_batch(4, 16)).total_flops + step(model, lm_batch(4, 24)).total_flops
    assert [h["fxflops/flops_per_step"] for h in logged] == [both, both]
    assert trainer.state.total_flos == 2 * both


class Checkpointed(nn.Module):
    """A small classifier whose two blocks are activation-checkpointed (what HFU is for)."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 32)) for _ in range(2)])
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        for blk in self.blocks:
            x = cp.checkpoint(blk, x, use_reentrant=False)
        return self.head(x)


def test_lightning_trainer_logs_the_exact_step_with_hfu():
    import lightning as L
    from lightning.pytorch.loggers import Logger
    from fxflops.integrations.lightning import FlopsMonitor
    from fxflops.report.utilization import recompute_flops

    class Memory(Logger):
        name, version = "memory", "0"

        def __init__(self):
            super().__init__()
            self.rows = []

        def log_metrics(self, metrics, step=None):
            self.rows.append(dict(metrics))

        def log_hyperparams(self, *args, **kwargs):
            pass

    class Classifier(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = Checkpointed()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, i):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(24, 32), torch.randint(0, 10, (24,)))
    module, logger = Classifier(), Memory()
    trainer = L.Trainer(max_steps=3, logger=logger, callbacks=[FlopsMonitor(device="cpu")], log_every_n_steps=1,
                        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                        accelerator="cpu")
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=8))
    rows = [r for r in logger.rows if "fxflops/flops_per_step" in r]
    r = step(module, torch.randn(8, 32))
    assert len(rows) == 3 and all(row["fxflops/flops_per_step"] == r.total_flops for row in rows)
    model_flops = r.total_flops - recompute_flops(r)
    assert model_flops < r.total_flops
    for row in rows:  # HFU over MFU is the hardware FLOPs over the model FLOPs
        assert row["fxflops/hfu"] / row["fxflops/mfu"] == pytest.approx(r.total_flops / model_flops, rel=1e-12)


def test_beside_lightning_measure_flops_op_by_op():
    """measure_flops (FlopCounterMode) counts 2 FLOPs per multiply-accumulate of the aten matmuls and nothing else;
    fxflops also counts every other floating-point op. On a real training step: its total is 2 × our MACs, and the
    difference is, op by op, our non-contraction FLOPs (layer norms, GELU's mul/tanh/pow, residual adds, softmax and
    scaling inside attention, bias adds, the loss, dropout, the embeddings' gradient scatter)."""
    from lightning.fabric.utilities.throughput import measure_flops
    from torch.utils.flop_counter import FlopCounterMode

    model = gpt2()
    batch = lm_batch(4, 32)
    theirs = measure_flops(model, lambda: model(**batch).loss, loss_fn=lambda loss: loss)
    with FlopCounterMode(display=False) as fc:
        model(**batch).loss.backward()
    per_aten = {str(k): v for k, v in fc.get_flop_counts()["Global"].items()}
    ours = step(model, batch)
    by_op = ours.by_op()
    assert theirs == 2 * ours.total_macs == 88_080_384
    assert per_aten["aten.bmm"] == 2 * by_op["scaled_dot_product_attention"]["macs"]  # attention's two products
    assert per_aten["aten.addmm"] + per_aten["aten.mm"] == 2 * (by_op["addmm"]["macs"] + by_op["linear"]["macs"])
    rest = {op: row["flops"] - 2 * row["macs"] for op, row in by_op.items() if row["flops"] != 2 * row["macs"]}
    assert ours.total_flops - theirs == sum(rest.values()) == 2_828_802
    assert set(rest) == {"layer_norm", "mul", "add", "tanh", "cross_entropy", "pow", "dropout", "embedding",
                         "scaled_dot_product_attention", "addmm"}
