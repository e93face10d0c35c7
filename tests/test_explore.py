"""The explorer page (report.explore, --html): its embedded numbers against the report, on every capture path,
infer and train, with a roofline and measured times; then the page itself in headless Chromium, clicked as a
user would (skipped, saying why, where Chromium or its driver is absent; .ci/run installs them)."""
from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
import torchvision

import fxflops
from fxflops.cli import main
from fxflops.errors import FxFlopsError
from fxflops.types import OP_KINDS

from conftest import needs_dot

pytestmark = needs_dot


def page(path) -> dict:
    text = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="fx-data">(.*?)</script>', text, re.S)
    return json.loads(found.group(1))


def rows(data: dict, kind: str) -> list[dict]:
    cols = data[f"{kind}_columns"]
    return [dict(zip(cols, r)) for r in data[f"{kind}s"]]


def check_numbers(report: fxflops.Report, data: dict) -> None:
    """Every module's totals on the page are the report's, and the nodes add up to the report's totals."""
    modules = {m["path"]: m for m in rows(data, "module")}
    assert list(modules) == list(report.modules)
    for path, m in report.modules.items():
        got = modules[path]
        assert (got["params"], got["macs"], got["flops"], got["fwd_flops"], got["bwd_flops"], got["bytes"]) == \
            (m.params, m.macs, m.flops, m.fwd_flops, m.bwd_flops, m.bytes), path
        assert got["drawing"] == -1 or 0 <= got["drawing"] < len(data["svgs"])
    nodes = rows(data, "node")
    assert [n["name"] for n in nodes] == [r.name for r in report.nodes if r.kind in OP_KINDS]
    assert sum(n["flops"] for n in nodes) == report.total_flops == data["totals"]["flops"]
    assert sum(n["macs"] for n in nodes) == report.total_macs == data["totals"]["macs"]
    assert data["totals"]["params"] == report.total_params
    assert data["totals"]["bytes"] == report.total_bytes


@pytest.fixture(scope="module")
def resnet50():
    with torch.device("meta"):
        model = torchvision.models.resnet50().eval()
    return fxflops.trace_flops(model, torch.empty(1, 3, 224, 224, device="meta"))


def test_page_holds_the_reports_numbers_and_nothing_from_the_network(resnet50, tmp_path):
    out = resnet50.explore(tmp_path / "r50.html")
    text = out.read_text(encoding="utf-8")
    data = page(out)
    check_numbers(resnet50, data)
    # one drawing per module with children; the three identical bottlenecks after layerN.0 share layerN.1's
    assert data["aliases"] == {"layer1.2": "layer1.1", "layer2.2": "layer2.1", "layer2.3": "layer2.1",
                               "layer3.2": "layer3.1", "layer3.3": "layer3.1", "layer3.4": "layer3.1",
                               "layer3.5": "layer3.1", "layer4.2": "layer4.1"}
    assert "layer3.4" not in data["drawn"] and "layer3.1" in data["drawn"]
    assert all(svg.startswith("<svg") for svg in data["svgs"])
    # self-contained: no external script, stylesheet, image or font; the only URLs are SVG's XML namespaces
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", text)
    urls = set(re.findall(r"https?://[^\s\"'<>)\\]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls


def test_shared_drawing_maps_each_node_to_its_twin(resnet50, tmp_path):
    """layer3.4 is drawn as layer3.1: each of its nodes points to the node of layer3.1 in the same place."""
    nodes = rows(page(resnet50.explore(tmp_path / "r.html")), "node")
    in_4 = [n for n in nodes if n["module"].startswith("layer3.4")]
    assert in_4 and all(n["twin"] >= 0 for n in in_4)
    for n in in_4:
        twin = nodes[n["twin"]]
        assert twin["module"] == n["module"].replace("layer3.4", "layer3.1")
        assert (twin["op"], twin["flops"], twin["out"]) == (n["op"], n["flops"], n["out"])
    assert all(n["twin"] == -1 for n in nodes if n["module"].startswith("layer3.0"))


def _encoder():
    from transformers import BertConfig, BertModel

    with torch.device("meta"):
        return BertModel(BertConfig(num_hidden_layers=3, hidden_size=64, intermediate_size=128,
                                    num_attention_heads=4, vocab_size=500)).eval()


@pytest.mark.parametrize("capture", ["fx", "record", "dynamo"])
def test_every_capture_path(capture, tmp_path):
    ids = torch.zeros(1, 16, dtype=torch.long, device="meta")
    if capture == "fx":
        model, x = torchvision.models.resnet18().eval(), torch.randn(1, 3, 64, 64)
    else:
        model, x = _encoder(), {"input_ids": ids}
    report = fxflops.trace_flops(model, x, capture=capture)
    data = page(report.explore(tmp_path / "p.html"))
    check_numbers(report, data)
    assert data["capture"] == capture
    if capture != "fx":  # BERT's three layers: one drawing
        layers = {p: a for p, a in data["aliases"].items() if p.count(".") == 2}
        assert layers == {"encoder.layer.1": "encoder.layer.0", "encoder.layer.2": "encoder.layer.0"}


def test_train_mode_has_forward_and_backward(tmp_path):
    report = fxflops.trace_flops(torchvision.models.resnet18(), torch.randn(2, 3, 64, 64), mode="train")
    data = page(report.explore(tmp_path / "t.html"))
    check_numbers(report, data)
    assert data["mode"] == "train"
    assert data["totals"]["backward_flops"] == report.backward_flops > 0
    assert all(m["fwd_flops"] + m["bwd_flops"] == m["flops"] for m in rows(data, "module"))
    assert "backward FLOPs" in (tmp_path / "t.html").read_text(encoding="utf-8")


def test_roofline_and_measured_times(tmp_path):
    model = torchvision.models.resnet18().eval()
    report = fxflops.trace_flops(model, torch.randn(1, 3, 64, 64), measure=True)
    est = report.roofline("cpu")
    data = page(report.explore(tmp_path / "m.html", color="bound"))
    check_numbers(report, data)
    assert data["device"] == est.device.name and data["color"] == "bound"
    assert data["totals"]["time"] == pytest.approx(est.total_time)
    assert data["totals"]["measured"] == pytest.approx(report.total_measured)
    by_name = {n["name"]: n for n in rows(data, "node")}
    for name, e in est.nodes.items():
        assert by_name[name]["time"] == pytest.approx(e.time) and by_name[name]["bound"] == str(e.bound or "")
    data = page(report.explore(tmp_path / "a.html", device="a100"))
    assert data["device"] == "NVIDIA A100 SXM4 80GB" or "a100" in data["device"].lower()
    assert data["totals"]["time"] == pytest.approx(report.roofline("a100").total_time)


def test_analysing_leaves_the_model_alone(tmp_path):
    model = torchvision.models.resnet18().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = fxflops.trace_flops(model, torch.randn(1, 3, 64, 64))
    report.explore(tmp_path / "x.html")
    assert model.training and not model._forward_hooks
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_errors(resnet50, tmp_path):
    with pytest.raises(FxFlopsError, match="color must be one of"):
        resnet50.explore(tmp_path / "x.html", color="heat")
    with pytest.raises(FxFlopsError, match="choose a path in a directory you can write to"):
        resnet50.explore(tmp_path / "missing" / "x.html")


def test_cli_html(tmp_path, capsys):
    out = tmp_path / "r18.html"
    assert main(["torchvision:resnet18", "--input", "1,3,64,64", "--html", str(out), "--roofline", "a100",
                 "--color", "time"]) == 0
    captured = capsys.readouterr()
    assert "explorer written to" in captured.err and "ResNet" in captured.out
    data = page(out)
    assert data["color"] == "time" and data["totals"]["time"] > 0
    assert main(["torchvision:resnet18", "--html", str(tmp_path / "r.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fxflops: error: --html '{tmp_path / 'r.txt'}': the file name must end in .html"]


# ---- in the browser ---------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[test])")
    if not (CHROMIUM and DRIVER):
        pytest.skip("Chromium and chromedriver are not on PATH (apt install chromium chromium-driver); .ci/run "
                    "installs them")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    # the network is off: a page that needed anything from outside would break
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                 "downloadThroughput": 0, "uploadThroughput": 0})
    yield driver
    driver.quit()


def test_click_through_the_page(browser, resnet50, tmp_path):
    from selenium.webdriver.common.by import By

    out = resnet50.explore(tmp_path / "r50.html")
    browser.get(out.resolve().as_uri())
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    css = browser.find_element

    # the costliest module in the breakdown: the root's child with the most FLOPs
    costliest = max((m for p, m in resnet50.modules.items() if p and "." not in p), key=lambda m: m.flops)
    assert costliest.path == "layer3"
    css(By.CSS_SELECTOR, '#icicle .box[data-path="layer3"]').click()
    boxes = [e.get_attribute("data-path") for e in browser.find_elements(By.CSS_SELECTOR, "#drawing g.node.open")]
    assert boxes == [f"layer3.{i}" for i in range(2)]  # layer3.1 ×5: the rolled box stands for 3.1 to 3.5
    assert "×5" in css(By.CSS_SELECTOR, '#drawing g.node[data-path="layer3.1"]').text
    assert css(By.ID, "crumbs").text.startswith("model › layer3")

    css(By.CSS_SELECTOR, '#drawing g.node[data-path="layer3.0"]').click()
    assert css(By.ID, "crumbs").text.startswith("model › layer3 › layer3.0")
    drawn = {e.get_attribute("data-node") for e in browser.find_elements(By.CSS_SELECTOR, "#drawing g.node[data-node]")}
    assert len(drawn) >= 8  # layer3.0's own ops: add and relus, and its convs and norms as ops

    # back to the model through the breadcrumbs, then sort the whole table by FLOPs
    css(By.CSS_SELECTOR, '#crumbs a[data-path=""]').click()
    css(By.CSS_SELECTOR, 'th[data-key="flops"]').click()
    top = css(By.CSS_SELECTOR, "#nodes tbody tr")
    best = max(r.flops for r in resnet50.nodes)
    first = next(r for r in resnet50.nodes if r.flops == best)  # ties keep execution order
    assert top.find_elements(By.TAG_NAME, "td")[1].text == first.name
    # and the selection follows: clicking the row opens its module's drawing with the node marked
    index = top.get_attribute("data-node")
    top.click()  # the table is drawn again: `top` is gone
    marked = css(By.CSS_SELECTOR, "#drawing g.node.sel")
    assert marked.get_attribute("data-node") == index
    assert css(By.CSS_SELECTOR, "#nodes tbody tr.sel").get_attribute("data-node") == index
    assert css(By.CSS_SELECTOR, "#icicle .box.sel").get_attribute("data-path") == first.module_path
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_browser_reads_the_reports_numbers(browser, tmp_path):
    from selenium.webdriver.common.by import By

    ids = torch.zeros(1, 16, dtype=torch.long, device="meta")
    report = fxflops.trace_flops(_encoder(), {"input_ids": ids}, mode="train")
    browser.get(report.explore(tmp_path / "bert.html").resolve().as_uri())
    data = browser.execute_script("return window.fxData")
    check_numbers(report, data)
    heads = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#nodes th")]
    assert {"fwd FLOPs", "bwd FLOPs", "FLOPs"} <= set(heads)
    # a layer drawn as layer 0: opening layer 2 says so, and its ops select layer 2's own nodes
    browser.execute_script("document.querySelector('#icicle .box[data-path=\"encoder\"]').click()")
    browser.find_element(By.CSS_SELECTOR, '#icicle .box[data-path="encoder.layer.2"]').click()
    assert "identical to encoder.layer.0" in browser.find_element(By.ID, "crumbs").text
    browser.find_element(By.CSS_SELECTOR, '#drawing g.node[data-path="encoder.layer.2.attention"]').click()
    browser.find_element(By.CSS_SELECTOR, '#drawing g.node[data-path="encoder.layer.2.attention.self"]').click()
    assert browser.find_element(By.ID, "crumbs").text.startswith("model › encoder › layer › layer.2 › attention › self")
    picked = [int(e.get_attribute("data-node")) for e in
              browser.find_elements(By.CSS_SELECTOR, "#drawing g.node[data-node]")]
    assert picked and all(data["nodes"][i][data["node_columns"].index("module")].startswith("encoder.layer.2")
                          for i in picked)


# ---- the static picture's default: cost-guided ------------------------------------------------------------

def _size(path) -> tuple[int, int]:
    w, h = re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', path.read_text()).groups()
    return int(w), int(h)


def test_default_picture_opens_where_the_flops_are(tmp_path):
    """BERT-base's default picture opens an encoder layer into its attention and its MLP (intermediate and output),
    not the embeddings, and fits a 1400×1000 window (1050×750 pt at 96 dpi); the CLI's --svg draws the same picture."""
    from transformers import BertConfig, BertModel

    from fxflops.draw.dot import choose_view

    with torch.device("meta"):
        model = BertModel(BertConfig()).eval()
    report = fxflops.trace_flops(model, {"input_ids": torch.zeros(1, 128, dtype=torch.long, device="meta")})
    view = choose_view(report.to_networkx(), depth="auto")
    assert {"encoder.layer.0", "encoder.layer.0.attention"} <= set(view.opened)
    assert not any(p.startswith(("embeddings", "pooler")) for p in view.opened)
    boxes = {vn.path for vn in view.nodes.values() if vn.kind == "module"}
    assert {"encoder.layer.0.intermediate", "encoder.layer.0.output"} <= boxes | set(view.opened)
    assert "embeddings" in boxes
    assert sum(vn.flops for vn in view.nodes.values()) == report.total_flops
    w, h = _size(report.render(tmp_path / "bert.svg"))
    assert w <= 1050 and h <= 750
    assert report.to_dot() == report.to_dot(depth="auto", top=0, roll=None)


def test_render_defaults_equal_the_clis(resnet50, tmp_path):
    main(["torchvision:resnet50", "--meta", "--svg", str(tmp_path / "cli.svg")])
    resnet50.render(tmp_path / "api.svg")
    strip = lambda t: re.sub(r"<!--.*?-->", "", t, flags=re.S)  # noqa: E731
    assert strip((tmp_path / "cli.svg").read_text()) == strip((tmp_path / "api.svg").read_text())
    w, h = _size(tmp_path / "api.svg")
    assert w <= 1050 and h <= 750
