"""The fcn-scratch command end to end on a tiny budget: train, predict, evaluate, compare, and its errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread, imsave

from fcn_scratch.checkpoint import load_checkpoint
from fcn_scratch.cli import main
from fcn_scratch.data import CLASS_NAMES, denormalize, normalize, toy_shapes
from fcn_scratch.train import predict
from fcn_scratch.viz import palette
from cli_helpers import error_line

TINY = ["--size", "32", "--train-images", "8", "--val-images", "4", "--epochs", "2", "--batch-size", "4",
        "--widths", "4,4,8,8,8", "--fc-channels", "8", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_train_writes_its_four_files(run_dir):
    # and history.csv; .lock is the output directory's lock (fcn_scratch.runs), nothing else is left behind
    assert sorted(os.listdir(run_dir)) == [".lock", "curves.png", "history.csv", "metrics.json", "model.npz",
                                           "predictions.png", "report.html"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert 0.0 <= metrics[key] <= 1.0
    assert list(metrics["per_class_iou"]) == list(CLASS_NAMES)
    assert metrics["wall_time_seconds"] > 0 and metrics["arch"] == "fcn8s"
    assert metrics["history"]["epoch"] == [1, 2] and len(metrics["history"]["val_mean_iou"]) == 2
    assert metrics["settings"]["data"]["size"] == [32, 32]
    assert metrics["ignore_border"] == 1  # VOC-style band by default; the strict scores count every pixel
    assert set(metrics["strict"]) == {"pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "per_class_iou"}
    assert list(metrics["strict"]["per_class_iou"]) == list(CLASS_NAMES)
    for name in ("predictions.png", "curves.png"):
        img = imread(run_dir / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    model, meta = load_checkpoint(run_dir / "model.npz")
    assert meta["arch"] == "FCN8s" and meta["class_names"] == list(CLASS_NAMES)
    assert model.widths == (4, 4, 8, 8, 8) and meta["training"]["epochs"] == 2


def test_evaluate_reproduces_the_training_metrics(run_dir, capsys):
    out_json = run_dir.parent / "eval.json"
    assert main(["evaluate", "--checkpoint", str(run_dir / "model.npz"), "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "mean IoU" in text and "pixel acc" in text
    scores = json.loads(out_json.read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert scores[key] == pytest.approx(metrics[key], abs=1e-12)  # same validation images, same model
    assert main(["evaluate", "--checkpoint", str(run_dir / "model.npz"), "--images", "3", "--seed", "5",
                 "--size", "24"]) == 0
    assert "3 toy images 24x24 (seed 5, 1-px ignore band" in capsys.readouterr().out


def test_predict_any_size_png(run_dir, tmp_path, capsys):
    x, _ = toy_shapes(1, (37, 45), seed=9)
    rgb = denormalize(x[0]).transpose(1, 2, 0)
    src, dst = tmp_path / "in.png", tmp_path / "mask.png"
    imsave(src, rgb)
    assert main(["predict", "--checkpoint", str(run_dir / "model.npz"), "--input", str(src),
                 "--output", str(dst)]) == 0
    assert "45x37" in capsys.readouterr().out  # WxH, as image tools print sizes
    mask_rgb = (imread(dst)[:, :, :3] * 255).round().astype(np.uint8)
    assert mask_rgb.shape == (37, 45, 3)
    # decode the colours back to classes: they must be the model's prediction on the (8-bit) input
    lut = palette(len(CLASS_NAMES))
    decoded = np.argmin(np.abs(mask_rgb[:, :, None, :].astype(int) - lut[None, None].astype(int)).sum(-1), axis=-1)
    assert (lut[decoded] == mask_rgb).all()
    model, _ = load_checkpoint(run_dir / "model.npz")
    png_rgb = imread(src)[:, :, :3].transpose(2, 0, 1)[None]
    np.testing.assert_array_equal(decoded, predict(model, normalize(png_rgb))[0])


def test_predict_greyscale_and_rgba(run_dir, tmp_path):
    grey, rgba = tmp_path / "grey.png", tmp_path / "rgba.png"
    imsave(grey, np.linspace(0, 1, 20 * 30).reshape(20, 30), cmap="gray")
    imsave(rgba, np.random.default_rng(0).uniform(0, 1, (16, 16, 4)))
    for src in (grey, rgba):
        assert main(["predict", "--checkpoint", str(run_dir / "model.npz"), "--input", str(src),
                     "--output", str(tmp_path / "m.png")]) == 0


def test_compare_prints_table_two(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", *TINY, "--epochs", "1", "--out", str(out), "--show", "2"])
    assert code == 0
    text = capsys.readouterr().out
    assert "pixel acc." in text and "mean IU" in text and "f.w. IU" in text and "counting every pixel" in text
    for title in ("FCN-32s", "FCN-16s", "FCN-8s"):
        assert title in text
    assert sorted(os.listdir(out)) == [".lock", "compare.json", "compare.png", "report.html"]  # .lock: the locked --out
    results = json.loads((out / "compare.json").read_text())["results"]
    assert list(results) == ["fcn32s", "fcn16s", "fcn8s"]
    assert imread(out / "compare.png").ndim == 3


def test_staged_training_and_determinism(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", *TINY, "--epochs", "1", "--arch", "fcn16s", "--staged", "--out", str(a)]) == 0
    assert main(["train", *TINY, "--epochs", "1", "--arch", "fcn16s", "--staged", "--out", str(b)]) == 0
    ma, meta = load_checkpoint(a / "model.npz")
    mb, _ = load_checkpoint(b / "model.npz")
    assert meta["arch"] == "FCN16s" and meta["training"]["staged"] is True
    sa, sb = ma.state_dict(), mb.state_dict()
    for k in sa:  # same seed, same run, bit for bit
        np.testing.assert_array_equal(sa[k], sb[k])
    history = json.loads((a / "metrics.json").read_text())["history"]
    assert history["epoch"] == [1]  # the last stage's history


def test_first_step_report_for_the_cold_start_bench(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FCN_SCRATCH_REPORT_FIRST_STEP", "1")
    assert main(["train", *TINY, "--epochs", "1", "--threads", "1", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err.count("first step done") == 1


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--epochs", "0"], "expected a positive integer"),
        (["train", "--threads", "0"], "expected a positive integer"),
        (["train", "--arch", "fcn4s"], "invalid choice"),
        (["train", "--size", "abc"], "expected a positive integer"),
        (["train", "--size", "4"], "at least 8 pixels"),
        (["train", "--lr", "-1"], "expected a positive number"),
        (["train", "--widths", "1,2,3"], "5 comma-separated"),
        (["train", "--dropout", "1.5"], r"\[0, 1\)"),
        (["predict", "--input", "x.png", "--output", "y.png"], "--checkpoint"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments(capsys, argv, match):
    import re

    assert re.search(match, error_line(capsys, argv))


def test_missing_and_corrupt_checkpoints(run_dir, tmp_path, capsys):
    img = tmp_path / "img.png"
    imsave(img, np.zeros((8, 8, 3)))
    args = ["--input", str(img), "--output", str(tmp_path / "o.png")]
    assert "not found" in error_line(capsys, ["predict", "--checkpoint", str(tmp_path / "nope.npz"), *args])
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes((run_dir / "model.npz").read_bytes()[:500])
    assert "truncated or corrupt" in error_line(capsys, ["predict", "--checkpoint", str(corrupt), *args])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, w=np.ones(3))
    assert "not an fcn_scratch checkpoint" in error_line(capsys, ["evaluate", "--checkpoint", str(foreign)])
    assert not (tmp_path / "o.png").exists()


def test_unreadable_image(run_dir, tmp_path, capsys):
    ck = str(run_dir / "model.npz")
    fake = tmp_path / "fake.png"
    fake.write_text("this is not a PNG")
    line = error_line(capsys, ["predict", "--checkpoint", ck, "--input", str(fake), "--output",
                                str(tmp_path / "o.png")])
    assert "cannot read image" in line
    line = error_line(capsys, ["predict", "--checkpoint", ck, "--input", str(tmp_path / "none.png"),
                                "--output", str(tmp_path / "o.png")])
    assert "not found" in line


def test_unwritable_output_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should go")
    assert "cannot create output directory" in error_line(capsys, ["train", *TINY, "--out", str(blocker / "x")])


def test_console_entry_point_exit_status_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fcn_scratch", "evaluate", "--checkpoint", str(tmp_path / "x.npz")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("fcn-scratch: error: checkpoint") and "Traceback" not in proc.stderr


def test_a_closed_output_pipe_stops_quietly():
    """`fcn-scratch ... | head` with the reader gone: exit 141 (128 + SIGPIPE), no BrokenPipeError traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "fcn_scratch", "exercise", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader leaves before a byte arrives: the output is block-buffered into the pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
