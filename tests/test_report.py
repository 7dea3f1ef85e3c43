"""report.html: parsed back, its figures are PNGs and its numbers are the metrics given; the heat map."""

import base64
import importlib.util
import io
import math
import os
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from fcn_scratch.report import render_report, write_report
from fcn_scratch.viz import confusion_figure, overlay_figure, png_bytes, predictions_figure

NAMES = ["background", "circle", "<b>ring</b> & co"]  # a name that must be escaped


class Page(HTMLParser):
    """Collects images, tables (cells with their data-value), every start tag, and the command text."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.images, self.tables = [], [], {}
        self._table = self._row = self._cell = None
        self._in_command = False
        self.command = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self._table = self.tables.setdefault(attrs.get("id") or f"table{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = {"text": "", "value": attrs.get("data-value")}
            self._row.append(self._cell)
        elif tag == "pre" and attrs.get("id") == "command":
            self._in_command = True

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th"):
            self._cell = None
        elif tag == "pre":
            self._in_command = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._in_command:
            self.command += data


def scores(seed, K=3):
    rng = np.random.default_rng(seed)
    cm = rng.integers(0, 500, size=(K, K))
    cm[K - 1] = 0  # a class absent from the truth
    iou = [float(v) for v in rng.uniform(0, 1, K)]
    iou[K - 1] = None  # NaN in metrics.json is null
    return dict(pixel_accuracy=float(rng.uniform()), mean_accuracy=float(rng.uniform()),
                mean_iou=float(rng.uniform()), fw_iou=float(rng.uniform()),
                per_class_iou=dict(zip(NAMES, iou)),
                per_class_accuracy=dict(zip(NAMES, [float(v) for v in rng.uniform(0, 1, K)])),
                confusion_matrix=cm.tolist(), class_names=NAMES)


HISTORY = {"epoch": [1, 2, 3], "loss": [1.2, 0.7, 0.5], "lr": [0.003, 0.002, 0.001], "time": [1.0, 2.0, 3.1],
           "val_pixel_accuracy": [0.8, 0.85, 0.9], "val_mean_iou": [0.4, 0.5, 0.6], "iterations": 30,
           "seconds": 3.1}


def predictions_png():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    m = rng.integers(0, 3, (2, 16, 16))
    return png_bytes(predictions_figure(x, m, m, NAMES))


def decoded_pngs(page):
    out = []
    for img in page.images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,")  # self-contained: no file, no URL
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(data)) as im:
            im.verify()  # a whole, valid PNG (CRCs checked)
            assert im.format == "PNG"
        out.append(data)
    return out


def cell_value(cell):
    return float(cell["value"])  # "nan" parses to NaN


def same(a, b):
    return (a is None and math.isnan(b)) or (a is not None and a == b)


def test_page_holds_the_figures_and_exactly_the_metrics(tmp_path):
    metrics = scores(1)
    metrics["strict"] = {k: v for k, v in scores(2).items() if k != "confusion_matrix"}
    pred = predictions_png()
    (tmp_path / "grid.png").write_bytes(pred)
    command = ["fcn-scratch", "train", "--data", "my data & \"more\"", "--out", "<runs>"]
    path = write_report(tmp_path / "report.html", command=command, settings={"lr": 0.003, "data": {"root": "d"}},
                        metrics=metrics, history=HISTORY, run_id="abc123",
                        figures={"predictions": pred, "the same from a file": tmp_path / "grid.png"})
    text = open(path, encoding="utf-8").read()
    page = Page(text)

    pngs = decoded_pngs(page)
    assert len(pngs) == 4  # confusion matrix, curves, the two given
    assert pngs[2] == pred and pngs[3] == pred
    assert [img["alt"] for img in page.images][2:] == ["predictions", "the same from a file"]

    headline = page.tables["headline"]
    assert [c["text"] for c in headline[0]][1:] == ["pixel acc.", "mean acc.", "mean IoU", "f.w. IoU"]
    for row, source in zip(headline[1:], (metrics, metrics["strict"])):
        got = [cell_value(c) for c in row[1:]]
        assert got == [source[k] for k in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou")]
        assert [c["text"] for c in row[1:]] == [f"{v:.4f}" for v in got]

    per_class = page.tables["per-class"]
    assert [r[0]["text"] for r in per_class[1:]] == NAMES  # escaped on the way in, the same text out
    for row in per_class[1:]:
        name = row[0]["text"]
        assert same(metrics["per_class_iou"][name], cell_value(row[1]))
        assert same(metrics["per_class_accuracy"][name], cell_value(row[2]))
    assert per_class[3][1]["text"] == "n/a"

    assert page.command == "fcn-scratch train --data 'my data & \"more\"' --out '<runs>'"
    assert "b" not in page.tags and "runs" not in page.tags and "script" not in page.tags  # nothing injected
    history = page.tables[[k for k in page.tables if k not in ("headline", "per-class", "settings")][0]]
    assert [c["text"] for c in history[0]] == ["epoch", "loss", "lr", "time", "val_pixel_accuracy", "val_mean_iou"]
    assert [cell_value(r[1]) for r in history[1:]] == HISTORY["loss"]
    assert 'content="abc123"' in text
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp")] == []  # written atomically


def test_comparison_page_one_row_per_model():
    results = {"FCN-32s": scores(3), "FCN-8s": scores(4)}
    page = Page(render_report(command="fcn-scratch compare", settings={}, metrics=results,
                              history={"FCN-32s": HISTORY, "FCN-8s": HISTORY}))
    headline = page.tables["headline"]
    assert [r[0]["text"] for r in headline[1:]] == ["FCN-32s", "FCN-8s"]
    for row, s in zip(headline[1:], results.values()):
        assert [cell_value(c) for c in row[1:]] == [s[k] for k in ("pixel_accuracy", "mean_accuracy", "mean_iou",
                                                                  "fw_iou")]
    per_class = page.tables["per-class"]
    assert [c["text"] for c in per_class[0]] == ["class", "FCN-32s IoU", "FCN-8s IoU"]
    for row in per_class[1:]:
        for cell, s in zip(row[1:], results.values()):
            assert same(s["per_class_iou"][row[0]["text"]], cell_value(cell))
    assert len(decoded_pngs(page)) == 4  # two confusion matrices, two sets of curves


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="not a PNG"):
        render_report(command="x", settings={}, metrics=scores(0), figures={"oops": b"GIF89a..."})
    with pytest.raises(ValueError, match="mean_iou"):
        render_report(command="x", settings={}, metrics={"accuracy": 0.5})
    with pytest.raises(TypeError, match="figure 'f'"):
        render_report(command="x", settings={}, metrics=scores(0), figures={"f": 3})
    (tmp_path / "report.html").write_text("old")
    with pytest.raises(ValueError):
        write_report(tmp_path / "report.html", command="x", settings={}, metrics=scores(0), figures={"f": b"no"})
    assert (tmp_path / "report.html").read_text() == "old"  # a failed write leaves the old page whole


def test_confusion_heat_map_is_row_normalised_with_counts():
    cm = np.array([[50, 10, 0], [5, 15, 0], [0, 0, 0]])
    fig = confusion_figure(cm, ["a", "b", "c"])
    ax = fig.axes[0]
    shown = ax.images[0].get_array()
    expected = np.array([[50 / 60, 10 / 60, 0], [5 / 20, 15 / 20, 0]])
    np.testing.assert_allclose(shown[:2].filled(np.nan), expected)
    assert shown.mask[2].all()  # the absent class: a blank row, not a row of zeros
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert texts[(0, 1)] == "10" and texts[(1, 0)] == "5" and texts[(2, 2)] == "0"
    assert ax.get_ylabel() == "truth" and ax.get_xlabel() == "predicted"
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        confusion_figure(np.zeros((2, 2)), ["a", "b", "c"])


def test_overlay_blends_and_draws_a_legend(tmp_path):
    rgb = np.full((20, 30, 3), 0.5)
    mask = np.zeros((20, 30), np.int64)
    mask[5:10, 5:20] = 1
    fig = overlay_figure(rgb, mask, ["background", "circle"], tmp_path / "o.png", alpha=0.5)
    blend = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(blend[7, 7], 0.25 + 0.5 * np.array([128, 0, 0]) / 255)  # VOC dark red
    np.testing.assert_allclose(blend[0, 0], [0.25, 0.25, 0.25])  # background is black in VOC's palette
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["background", "circle", "ignored (255)"]
    assert (tmp_path / "o.png").read_bytes().startswith(b"\x89PNG")


def _browser():
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        return None
    for module in ("playwright", "selenium"):
        if importlib.util.find_spec(module) is not None:
            return module
    return None


@pytest.mark.skipif(_browser() is None, reason="needs chromium and playwright or selenium (none installed)")
def test_a_headless_browser_renders_the_page(tmp_path):
    path = write_report(tmp_path / "report.html", command="fcn-scratch train", settings={"lr": 0.003},
                        metrics=scores(5), history=HISTORY, figures={"predictions": predictions_png()})
    url = "file://" + os.path.abspath(path)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if _browser() == "playwright":
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=binary, headless=True)
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            loaded = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            cells = page.evaluate("document.querySelectorAll('#headline td').length")
            browser.close()
    else:
        from selenium import webdriver

        options = webdriver.ChromeOptions()
        options.binary_location = binary
        options.add_argument("--headless=new")
        options.add_argument("--no-sandbox")
        driver = webdriver.Chrome(options=options)
        try:
            driver.get(url)
            loaded = driver.execute_script(
                "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            cells = driver.execute_script("return document.querySelectorAll('#headline td').length")
            errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            driver.quit()
    assert errors == []
    assert loaded == [True] * 3  # confusion matrix, curves, predictions all decode in the browser
    assert cells == 4
