"""Regenerate the pictures of docs/graph.md: render SVGs with fxflops, screenshot them in headless
Chromium as a reader's browser shows them, crop where a picture is too tall to show whole, and save
palette PNGs next to this script.

    python docs/images/make_images.py [--only NAME]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings

import torch
import torchvision
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests"))
from tiny_transformer import TinyEncoder  # noqa: E402

import fxflops  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_BYTES = 500_000


def vision(name: str) -> fxflops.Report:
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None).eval()
    return fxflops.trace_flops(model, torch.empty(1, 3, 224, 224, device="meta"))


def bert_base() -> fxflops.Report:
    """A BERT-base-sized encoder (12 layers, hidden 768, 12 heads, 128 tokens) written op by op."""
    try:
        from transformers import BertConfig, BertModel

        with torch.device("meta"):
            model = BertModel(BertConfig()).eval()
        ids = torch.zeros(1, 128, dtype=torch.long, device="meta")
        return fxflops.trace_flops(model, {"input_ids": ids})
    except Exception as exc:  # noqa: BLE001 - fall back to the op-level stand-in
        print(f"BertModel: {str(exc).splitlines()[0]}; drawing the BERT-base-sized TinyEncoder instead")
        with torch.device("meta"):
            model = TinyEncoder(vocab=30522, dim=768, heads=12, layers=12, seq=128).eval()
        return fxflops.trace_flops(model, torch.zeros(1, 128, dtype=torch.long, device="meta"))


def llama() -> fxflops.Report:
    """The Llama-2-70B configuration on the meta device, 128 tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(num_hidden_layers=80, hidden_size=8192, intermediate_size=28672,
                                             num_attention_heads=64, num_key_value_heads=8)).eval()
    return fxflops.trace_flops(model, {"input_ids": torch.zeros(1, 128, dtype=torch.long, device="meta")})


MODELS = {"resnet50": lambda: vision("resnet50"), "vit_b_16": lambda: vision("vit_b_16"), "bert": bert_base,
          "mobilenet_v3_large": lambda: vision("mobilenet_v3_large"), "llama": llama}

# picture -> (model, render options, crop height in CSS pixels or None)
PICTURES = {
    "resnet50_depth2": ("resnet50", dict(depth=2, top=3), None),
    "resnet50_depth2_rolled": ("resnet50", dict(depth=2, roll=True), None),
    "resnet50_full": ("resnet50", dict(depth=None, top=5), 2600),
    "vit_b_16_rolled": ("vit_b_16", dict(depth=None, roll=True, top=3), None),
    "bert_base_rolled": ("bert", dict(depth=None, roll=True, top=3), None),
    # The CLI's default picture (--svg with --depth 2, here --top 5), shot in a 1400×1000 window as a
    # screen shows it: the default layout wraps long chains into columns to fit it.
    "resnet50_default": ("resnet50", dict(top=5), None),
    "vit_b_16_default": ("vit_b_16", dict(top=5), None),
    "bert_default": ("bert", dict(top=5), None),
    "mobilenet_v3_bound_default": ("mobilenet_v3_large", dict(color="bound", device="a100"), None),
    "llama_default": ("llama", dict(), None),
}
WINDOW = {"resnet50_default", "vit_b_16_default", "bert_default", "mobilenet_v3_bound_default", "llama_default"}
# The explorer (report.explore), two clicks deep: (model, what to click, in order), shot at 1400×1000 in Chromium.
EXPLORER = {
    "explore_resnet50": ("resnet50", ['#icicle .box[data-path="layer3"]', '#drawing g.node[data-path="layer3.1"]']),
    "explore_bert": ("bert", ['#icicle .box[data-path="encoder.layer.0"]',
                              '#drawing g.node[data-path="encoder.layer.0.attention"]']),
    "explore_llama": ("llama", ['#icicle .box[data-path="model.layers.0"]',
                                '#drawing g.node[data-path="model.layers.0.self_attn"]']),
}  # shot at 1400×1000, not at the SVG's size


def screenshot(svg: str, png: str, window: bool = False) -> None:
    head = open(svg, encoding="utf-8").read(4000)
    w, h = (float(re.search(rf'{k}="([\d.]+)pt"', head).group(1)) * 4 / 3 for k in ("width", "height"))
    size = "1400,1000" if window else f"{int(w) + 16},{int(h) + 16}"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={png}", f"--window-size={size}", svg],
                   check=True, capture_output=True, timeout=180)


def save(png: str, out: str, crop: int | None) -> None:
    im = Image.open(png).convert("RGB")
    if crop and im.height > crop:
        im = im.crop((0, 0, im.width, crop))
    for colours in (256, 128, 64):
        im.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)
        if os.path.getsize(out) <= MAX_BYTES:
            break
    print(f"{os.path.relpath(out)}: {im.width}x{im.height}, {os.path.getsize(out) / 1000:.0f} KB")


def explorer_shot(report: fxflops.Report, clicks: list[str], html: str, png: str) -> None:
    """Open the explorer page in headless Chromium (Selenium), click as a reader would, and screenshot it."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    report.explore(html)
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or ""
    # the driver named outright: Selenium would otherwise go online to look for one
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        driver.get("file://" + os.path.abspath(html))
        for css in clicks:
            driver.find_element(By.CSS_SELECTOR, css).click()
        driver.save_screenshot(png)
    finally:
        driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=sorted([*PICTURES, *EXPLORER]))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    reports: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, options, crop) in PICTURES.items():
            if args.only and name != args.only:
                continue
            if model not in reports:
                reports[model] = MODELS[model]()
            report = reports[model]
            svg = os.path.join(tmp, name + ".svg")
            report.render(svg, **options)
            screenshot(svg, os.path.join(tmp, name + ".png"), window=name in WINDOW)
            save(os.path.join(tmp, name + ".png"), os.path.join(HERE, name + ".png"), crop)
        for name, (model, clicks) in EXPLORER.items():
            if args.only and name != args.only:
                continue
            if model not in reports:
                reports[model] = MODELS[model]()
            png = os.path.join(tmp, name + ".png")
            explorer_shot(reports[model], clicks, os.path.join(tmp, name + ".html"), png)
            save(png, os.path.join(HERE, name + ".png"), None)


if __name__ == "__main__":
    main()
