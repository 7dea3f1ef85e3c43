"""The graded exercises (lessons/exercises/, fcn_scratch.exercises, `fcn-scratch exercise`).

A grader that passes everything proves nothing, so this file shows it both ways:

* every stub (raises NotImplementedError) fails with exit 1;
* a file that delegates to the engine's own function passes with exit 0, and
  so does an honest NumPy answer written from the docstrings alone (loops,
  einsum, np.add.at: a different computation than the engine's);
* mutants, each one of those honest answers with one classic bug planted,
  are rejected, by the check written for that bug;
* usage errors exit 2 with one line on stderr, never a traceback.
"""

from __future__ import annotations

import inspect
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fcn_scratch import exercises as E
from fcn_scratch.cli import main

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "lessons" / "exercises"

# ----------------------------------------------------------------------------- honest answers

IM2COL = """\
import numpy as np


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    N, C, H, W = x.shape
    extra_h = max(0, (Ho - 1) * sh + dh * (kh - 1) + 1 - (H + 2 * ph))
    extra_w = max(0, (Wo - 1) * sw + dw * (kw - 1) + 1 - (W + 2 * pw))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)))
    cols = np.empty((N, C, kh, kw, Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh: i * dh + sh * (Ho - 1) + 1: sh, j * dw: j * dw + sw * (Wo - 1) + 1: sw]
    return cols.reshape(N, C * kh * kw, Ho * Wo)
"""

COL2IM = """\
import numpy as np


def col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    Hp = max(H + 2 * ph, (Ho - 1) * sh + dh * (kh - 1) + 1)
    Wp = max(W + 2 * pw, (Wo - 1) * sw + dw * (kw - 1) + 1)
    xp = np.zeros((N, C, Hp, Wp), dtype=cols.dtype)
    c = cols.reshape(N, C, kh, kw, Ho, Wo)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i * dh: i * dh + sh * (Ho - 1) + 1: sh, j * dw: j * dw + sw * (Wo - 1) + 1: sw] += c[:, :, i, j]
    return xp[:, :, ph: ph + H, pw: pw + W].copy()
"""

CONV = """\
import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    F, _, kh, kw = weight.shape
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((N, F, Ho, Wo))
    for u in range(kh):
        for v in range(kw):
            patch = xp[:, :, u * dh: u * dh + sh * (Ho - 1) + 1: sh, v * dw: v * dw + sw * (Wo - 1) + 1: sw]
            y += np.einsum("nchw,fc->nfhw", patch, weight[:, :, u, v])
    if bias is not None:
        y += bias[None, :, None, None]
    return y, (x, weight, bias is not None, (sh, sw, ph, pw, dh, dw))


def conv2d_backward(dy, cache, input_grad=True):
    x, weight, has_bias, (sh, sw, ph, pw, dh, dw) = cache
    N, C, H, W = x.shape
    F, _, kh, kw = weight.shape
    Ho, Wo = dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)
    dw_ = np.zeros_like(weight)
    for u in range(kh):
        for v in range(kw):
            sl = (slice(None), slice(None), slice(u * dh, u * dh + sh * (Ho - 1) + 1, sh),
                  slice(v * dw, v * dw + sw * (Wo - 1) + 1, sw))
            dw_[:, :, u, v] = np.einsum("nchw,nfhw->fc", xp[sl], dy)
            dxp[sl] += np.einsum("nfhw,fc->nchw", dy, weight[:, :, u, v])
    dx = dxp[:, :, ph: ph + H, pw: pw + W].copy() if input_grad else None
    return dx, dw_, (dy.sum(axis=(0, 2, 3)) if has_bias else None)
"""

RELU = """\
import numpy as np


def relu_forward(x):
    return np.maximum(x, 0), x > 0


def relu_backward(dy, cache):
    return dy * cache
"""

POOL = """\
import math

import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _size(H, k, s, p, d, ceil_mode):
    span = H + 2 * p - d * (k - 1) - 1
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= H + p:
        out -= 1
    return out


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(kernel_size if stride is None else stride)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    Ho, Wo = _size(H, kh, sh, ph, dh, ceil_mode), _size(W, kw, sw, pw, dw, ceil_mode)
    y = np.full((N, C, Ho, Wo), -np.inf, dtype=x.dtype)
    idx = np.full((N, C, Ho, Wo), -1)
    for i in range(Ho):
        for j in range(Wo):
            for u in range(kh):
                for v in range(kw):
                    h, w = i * sh + u * dh - ph, j * sw + v * dw - pw
                    if 0 <= h < H and 0 <= w < W:
                        val = x[:, :, h, w]
                        better = val > y[:, :, i, j]
                        y[:, :, i, j] = np.where(better, val, y[:, :, i, j])
                        idx[:, :, i, j] = np.where(better, h * W + w, idx[:, :, i, j])
    return y, (x.shape, idx)


def maxpool2d_backward(dy, cache):
    (N, C, H, W), idx = cache
    dx = np.zeros((N, C, H * W), dtype=dy.dtype)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            np.add.at(dx, (n, c, idx[:, :, i, j]), dy[:, :, i, j])
    return dx.reshape(N, C, H, W)
"""

CONVT = """\
import numpy as np

from fcn_scratch.functional import conv2d_backward, conv2d_forward


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pad(a, t, b, l, r):
    N, C, H, W = a.shape
    out = np.zeros((N, C, H + t + b, W + l + r), dtype=a.dtype)
    src = a[:, :, max(0, -t): H - max(0, -b), max(0, -l): W - max(0, -r)]
    out[:, :, max(0, t): max(0, t) + src.shape[2], max(0, l): max(0, l) + src.shape[3]] = src
    return out


def conv_transpose2d_forward(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1,
                             method="col2im"):
    (sh, sw), (ph, pw), (oh, ow), (dh, dw) = map(_pair, (stride, padding, output_padding, dilation))
    N, C, H, W = x.shape
    kh, kw = weight.shape[2:]
    z = np.zeros((N, C, (H - 1) * sh + 1, (W - 1) * sw + 1), dtype=x.dtype)
    z[:, :, ::sh, ::sw] = x
    t, l = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    zp = _pad(z, t, t + oh, l, l + ow)
    wc = np.flip(weight, (2, 3)).transpose(1, 0, 2, 3).copy()
    y, cc = conv2d_forward(zp, wc, bias, 1, 0, (dh, dw))
    return y, (z.shape, (sh, sw), (t, t + oh, l, l + ow), cc)


def conv_transpose2d_backward(dy, cache):
    z_shape, (sh, sw), (t, b, l, r), cc = cache
    dzp, dwc, db = conv2d_backward(dy, cc)
    dz = _pad(dzp, -t, -b, -l, -r)
    return dz[:, :, ::sh, ::sw].copy(), np.flip(dwc.transpose(1, 0, 2, 3), (2, 3)).copy(), db
"""

BILINEAR = """\
import math

import numpy as np


def _taps(k):
    f = math.ceil(k / 2)
    c = f - 1 if k % 2 == 1 else f - 0.5
    return 1 - np.abs(np.arange(k) - c) / f


def bilinear_kernel(k, dtype=np.float64):
    return np.outer(_taps(k), _taps(k)).astype(dtype)


def bilinear_weight(in_channels, out_channels, k, dtype=np.float32):
    kh, kw = (k, k) if isinstance(k, int) else k
    w = np.zeros((in_channels, out_channels, kh, kw), dtype=dtype)
    for c in range(min(in_channels, out_channels)):
        w[c, c] = np.outer(_taps(kh), _taps(kw))
    return w
"""

CE = """\
import numpy as np


def softmax_cross_entropy_forward(logits, labels, ignore_index=255):
    valid = labels != ignore_index
    V = int(valid.sum())
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1)
    lab = np.where(valid, labels, 0)
    picked = np.take_along_axis(z, lab[:, None], axis=1)[:, 0]
    loss = float(((np.log(s) - picked) * valid).sum() / V) if V else 0.0
    return loss, (e / s[:, None], lab, valid, V)


def softmax_cross_entropy_backward(cache, dloss=1.0):
    p, lab, valid, V = cache
    if V == 0:
        return np.zeros_like(p)
    onehot = np.zeros_like(p)
    np.put_along_axis(onehot, lab[:, None], 1.0, axis=1)
    return dloss * (p - onehot) * valid[:, None] / V
"""

FUSION = """\
import numpy as np


def crop_add_forward(up, skip):
    h, w = skip.shape[2:]
    return up[:, :, :h, :w] + skip, up.shape


def crop_add_backward(dy, cache):
    d_up = np.zeros(cache, dtype=dy.dtype)
    d_up[:, :, : dy.shape[2], : dy.shape[3]] = dy
    return d_up, dy.copy()
"""

IOU = """\
import numpy as np


def confusion_matrix(truth, pred, num_classes, ignore_index=255):
    keep = truth != ignore_index if ignore_index is not None else np.ones(truth.shape, bool)
    K = num_classes
    return np.bincount(K * truth[keep] + pred[keep], minlength=K * K).reshape(K, K).astype(np.int64)


def scores(cm):
    cm = cm.astype(np.float64)
    d, t, p = np.diag(cm), cm.sum(1), cm.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = d / t
        iou = d / (t + p - d)
        total = cm.sum()
        nanmean = lambda a: float(np.nanmean(a)) if (~np.isnan(a)).any() else float("nan")
        return {"pixel_accuracy": float(d.sum() / total), "mean_accuracy": nanmean(acc),
                "mean_iou": nanmean(iou),
                "fw_iou": float((t[t > 0] / total * iou[t > 0]).sum()) if total else float("nan"),
                "per_class_iou": iou.tolist(), "per_class_accuracy": acc.tolist()}
"""

DELEGATE = {  # the engine's own functions, imported under the exercise's names
    "im2col": "from fcn_scratch.kernels import im2col",
    "col2im": "from fcn_scratch.kernels import col2im",
    "conv2d_forward": "from fcn_scratch.functional import conv2d_forward",
    "conv2d_backward": "from fcn_scratch.functional import conv2d_forward, conv2d_backward",
    "relu": "from fcn_scratch.functional import relu_forward, relu_backward",
    "maxpool_forward": "from fcn_scratch.functional import maxpool2d_forward",
    "maxpool_backward": "from fcn_scratch.functional import maxpool2d_forward, maxpool2d_backward",
    "conv_transpose_zero_insert":
        "from fcn_scratch.functional import conv_transpose2d_forward, conv_transpose2d_backward",
    "bilinear_kernel": "from fcn_scratch.init import bilinear_kernel, bilinear_weight",
    "softmax_cross_entropy":
        "from fcn_scratch.functional import softmax_cross_entropy_forward, softmax_cross_entropy_backward",
    "fcn8s_skip_fusion": "from fcn_scratch.functional import crop_add_forward, crop_add_backward",
    "mean_iou": "from fcn_scratch.metrics import confusion_matrix, scores",
}

HONEST = {"im2col": IM2COL, "col2im": COL2IM, "conv2d_forward": CONV, "conv2d_backward": CONV, "relu": RELU,
          "maxpool_forward": POOL, "maxpool_backward": POOL, "conv_transpose_zero_insert": CONVT,
          "bilinear_kernel": BILINEAR, "softmax_cross_entropy": CE, "fcn8s_skip_fusion": FUSION, "mean_iou": IOU}


def _mutant(source, old, new):
    assert source.count(old) == 1, f"the mutation target {old!r} must occur once"
    return source.replace(old, new)


ENGINE_PLUS = """\
from fcn_scratch.kernels import im2col as _im2col
from fcn_scratch.functional import conv2d_forward as _conv, softmax_cross_entropy_forward as _ce


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):
    return _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) + 1e-4


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    y, cache = _conv(x, weight, bias, stride, padding, dilation)
    return y + 1e-4, cache


def softmax_cross_entropy_forward(logits, labels, ignore_index=255):
    loss, cache = _ce(logits, labels, ignore_index)
    return loss + 1e-4, cache


def softmax_cross_entropy_backward(cache, dloss=1.0):
    raise NotImplementedError
"""

CONV_BACKWARD_NO_FLIP = """\
import numpy as np
from fcn_scratch.functional import conv2d_forward, conv2d_backward as _backward


def conv2d_backward(dy, cache, input_grad=True):
    # dx as the 'full' convolution with the kernel NOT flipped: the engine's dx for the flipped
    # weight is the full convolution with flip(flip(w)) = w
    x_shape, weight, has_bias, cols, geom = cache
    dx, _, _ = _backward(dy, (x_shape, np.flip(weight, (2, 3)), has_bias, cols, geom), input_grad)
    _, dweight, dbias = _backward(dy, cache, input_grad)
    return dx, dweight, dbias
"""

POOL_ZERO_PAD = """\
import numpy as np
from fcn_scratch.functional import maxpool2d_forward as _pool


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # zeros, not -inf
    return _pool(xp, kernel_size, kernel_size if stride is None else stride, 0, dilation, ceil_mode)
"""

# (exercise, source, check keys that must fail, check keys that must still pass)
MUTANTS = {
    "convT_no_flip": ("conv_transpose_zero_insert",
                      _mutant(CONVT, "np.flip(weight, (2, 3)).transpose(1, 0, 2, 3)", "weight.transpose(1, 0, 2, 3)"),
                      {"fcn_upsampler", "stride1", "adjoint"}, set()),
    "conv_backward_no_flip": ("conv2d_backward", CONV_BACKWARD_NO_FLIP, {"grads"}, {"forward"}),
    "pool_zero_padding": ("maxpool_forward", POOL_ZERO_PAD, {"neg_inf_padding"}, {"basic", "ceil"}),
    "pool_ties_to_last": ("maxpool_backward", _mutant(POOL, "better = val > y", "better = val >= y"),
                          {"ties"}, {"forward", "route", "overlap", "fd"}),
    "pool_no_last_window_rule": ("maxpool_forward",
                                 _mutant(POOL, "if ceil_mode and (out - 1) * s >= H + p:", "if False:"),
                                 {"ceil_last_window"}, {"basic", "ceil"}),
    "loss_mean_over_ignored": ("softmax_cross_entropy", _mutant(CE, ").sum() / V)", ").sum() / valid.size)"),
                               {"ignore"}, {"loss", "stable"}),
    "relu_backward_ge": ("relu", _mutant(RELU, "x > 0", "x >= 0"), {"backward"}, {"forward", "fd"}),
    "relu_backward_in_place": ("relu", _mutant(RELU, "return dy * cache", "dy[~cache] = 0\n    return dy"),
                               {"backward"}, {"forward"}),
    "im2col_plus_1e-4": ("im2col", ENGINE_PLUS, {"basic", "no_pad", "stride", "dilation", "random"}, set()),
    "conv_plus_1e-4": ("conv2d_forward", ENGINE_PLUS, {"basic", "no_bias", "stride", "pairs", "dilation"}, set()),
    "loss_plus_1e-4": ("softmax_cross_entropy", ENGINE_PLUS, {"loss", "ignore", "stable"}, set()),
    "im2col_no_dilation": ("im2col", _mutant(_mutant(IM2COL, "xp[:, :, i * dh: i * dh +", "xp[:, :, i: i +"),
                                             "j * dw: j * dw +", "j: j +"), {"dilation"}, {"basic", "stride"}),
    "col2im_assigns": ("col2im", _mutant(COL2IM, "+= c[:, :, i, j]", "= c[:, :, i, j]"), {"overlap"},
                       {"no_overlap"}),
    "bilinear_even_centre": ("bilinear_kernel", _mutant(BILINEAR, "c = f - 1 if k % 2 == 1 else f - 0.5",
                                                        "c = f - 0.5"), {"k3_odd"}, {"k4"}),
    "fusion_centre_crop": ("fcn8s_skip_fusion", _mutant(FUSION, "return up[:, :, :h, :w] + skip, up.shape",
                                                        "t, l = (up.shape[2] - h) // 2, (up.shape[3] - w) // 2\n"
                                                        "    return up[:, :, t:t + h, l:l + w] + skip, up.shape"),
                           {"bigger"}, {"same_size"}),
    "mean_iou_nan_as_zero": ("mean_iou", _mutant(IOU, '"mean_iou": nanmean(iou)',
                                                 '"mean_iou": float(np.nan_to_num(iou).mean())'),
                             {"absent_class"}, {"mean_iou"}),
    # from the grader's review: conv_dilation_dh_along_w, col2im_dh_along_w, pool_ceil_rule_without_p,
    # conv_inf_in_one_random_case, convT_zeros_for_no_bias and fusion_returns_dy passed every check then
    # (an isotropic check cannot tell dh from dw); the others here were caught by a single check only
    "conv_dilation_dh_along_w": ("conv2d_forward", _mutant(CONV, "v * dw: v * dw +", "v * dh: v * dh +"),
                                 {"dilation", "random"}, {"basic", "no_bias", "stride", "pairs"}),
    "conv_backward_dh_along_w": ("conv2d_backward", _mutant(CONV, "slice(v * dw, v * dw +", "slice(v * dh, v * dh +"),
                                 {"grads_dilation", "random"}, {"forward", "grads", "grads_stride"}),
    "col2im_dh_along_w": ("col2im", _mutant(COL2IM, "j * dw: j * dw +", "j * dh: j * dh +"),
                          {"stride_dilation", "random"}, {"no_overlap", "overlap", "padding"}),
    "col2im_ph_along_w": ("col2im", _mutant(COL2IM, "pw: pw + W]", "ph: ph + W]"),
                          {"stride_dilation", "random"}, {"no_overlap", "overlap", "padding"}),
    "pool_ceil_rule_without_p": ("maxpool_forward", _mutant(POOL, "(out - 1) * s >= H + p:", "(out - 1) * s >= H:"),
                                 {"ceil_padding", "random"}, {"basic", "ceil", "ceil_last_window"}),
    "pool_ceil_plus_s": ("maxpool_forward", _mutant(POOL, "math.ceil(span / s) if", "(span + s) // s if"),
                         {"random"}, {"basic", "ceil", "ceil_last_window", "ceil_padding"}),
    # an inf in one case of a multi-case check: rel_error gives NaN, and max([1e-17, nan]) is 1e-17
    "conv_inf_in_one_random_case": ("conv2d_forward",
                                    _mutant(CONV, "    return y, (x,",
                                            "    if x.shape[2:] == (5, 6):\n        y[0, 0, 0, 0] = np.inf\n"
                                            "    return y, (x,"),
                                    {"random"}, {"basic", "no_bias", "stride", "pairs", "dilation"}),
    "convT_zeros_for_no_bias": ("conv_transpose_zero_insert",
                                _mutant(CONVT, ".copy(), db\n",
                                        ".copy(), db if db is not None else np.zeros(dy.shape[1])\n"),
                                {"no_bias_grads"}, {"grads", "fd", "fcn_upsampler"}),
    "fusion_returns_dy": ("fcn8s_skip_fusion", _mutant(FUSION, "return d_up, dy.copy()", "return d_up, dy"),
                          {"backward", "fd"}, {"same_size", "odd", "bigger", "fcn8s"}),
}


def _write(tmp_path, name, source):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return path


def _grade(name, path):
    _, _, results = E.grade(name, path)
    return {r.check.key: r for r in results}


# ----------------------------------------------------------------------------- registry and stubs


def test_list_shows_every_exercise_in_lesson_order(capsys):
    assert main(["exercise", "list"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(rows) == len(E.EXERCISES) == 12
    names = [row.split()[1] for row in rows]
    assert names == [ex.name for ex in E.EXERCISES]
    lessons = [ex.lesson for ex in E.EXERCISES]
    assert lessons == sorted(lessons)


def _params(fn):
    """Names, kinds and defaults of the parameters (annotations aside)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_every_stub_exists_with_the_engine_signature_and_docstrings():
    """The stubs' functions have exactly the engine functions' signatures, and say what to do."""
    import ast

    files = sorted(p.name for p in STUBS.glob("[0-9][0-9]_*.py"))
    assert files == [ex.filename for ex in E.EXERCISES]
    for ex in E.EXERCISES:
        mod = E.load(ex, STUBS / ex.filename)
        assert mod.__doc__ and f"fcn-scratch exercise check {ex.name}" in mod.__doc__, ex.name
        assert "Do not import" in mod.__doc__, ex.name
        for fn in ex.functions:
            assert _params(getattr(mod, fn)) == _params(E.ENGINE[fn]), (ex.name, fn)
            assert len(inspect.getdoc(getattr(mod, fn))) > 80, (ex.name, fn)
        tree = ast.parse((STUBS / ex.filename).read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):  # the body is the docstring and one raise
                assert isinstance(node.body[-1], ast.Raise) and "NotImplementedError" in ast.unparse(node.body[-1])


@pytest.mark.parametrize("ex", E.EXERCISES, ids=lambda ex: ex.name)
def test_stub_fails_with_exit_1(ex, capsys):
    assert main(["exercise", "check", ex.name]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"exercise {ex.number:02d} {ex.name}")
    assert out.count("  FAIL  ") == len(ex.checks()) and "  pass  " not in out
    assert "NotImplementedError" in out and f"{ex.filename}, line " in out  # the learner's own line
    assert out.count("hint: ") == len(ex.checks())
    assert lines[-1].startswith(f"0 of {len(ex.checks())} checks passed")


@pytest.mark.parametrize("ex", E.EXERCISES, ids=lambda ex: ex.name)
def test_the_engine_itself_passes_with_exit_0(ex, tmp_path, capsys):
    path = _write(tmp_path, ex.filename[:-3], DELEGATE[ex.name] + "\n")
    assert main(["exercise", "check", ex.name, "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("  pass  ") == len(ex.checks()) and "FAIL" not in out
    for line in out.splitlines()[1:-1]:  # one line per check: its relative error and tolerance
        assert "rel error" in line and ("<= 1e-10" in line or "<= 1e-07" in line or "<= 1e-06" in line), line


@pytest.mark.parametrize("ex", E.EXERCISES, ids=lambda ex: ex.name)
def test_an_honest_numpy_answer_passes(ex, tmp_path):
    """Written from the docstrings (loops, einsum, np.add.at), not from the engine: the grader accepts
    a different correct computation, so its 1e-10 is about the numbers, not about copying the engine."""
    results = _grade(ex.name, _write(tmp_path, "answer", HONEST[ex.name]))
    failed = {k: r.why or r.error for k, r in results.items() if not r.passed}
    assert not failed


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutants_are_rejected_by_their_check(mutant, tmp_path):
    name, source, must_fail, must_pass = MUTANTS[mutant]
    results = _grade(name, _write(tmp_path, mutant.replace("-", "_"), source))
    failed = {k for k, r in results.items() if not r.passed}
    assert must_fail <= failed, f"{mutant}: expected {must_fail} to fail, failed {failed}"
    assert not (must_pass & failed), f"{mutant}: {must_pass & failed} should still pass (the bug is elsewhere)"


def test_a_failing_check_prints_its_error_tolerance_and_hint(tmp_path, capsys):
    path = _write(tmp_path, "mutant", MUTANTS["pool_zero_padding"][1])
    assert main(["exercise", "check", "maxpool_forward", "--file", str(path)]) == 1
    out = capsys.readouterr().out
    fail = [line for line in out.splitlines() if "all-negative" in line][0]
    assert fail.startswith("  FAIL  ") and "rel error" in fail and fail.endswith(" > 1e-10")
    assert "hint: pad with -inf, not 0" in out


def test_off_by_1e_4_fails_and_the_learner_exception_is_reported(tmp_path, capsys):
    path = _write(tmp_path, "plus", ENGINE_PLUS)
    assert main(["exercise", "check", "softmax_cross_entropy", "--file", str(path)]) == 1
    out = capsys.readouterr().out
    line = ENGINE_PLUS.splitlines().index("    raise NotImplementedError") + 1
    assert f"NotImplementedError  [plus.py, line {line}]" in out  # their backward raised, on their line
    assert "Traceback" not in out


def test_wrong_shape_and_dtype_are_named(tmp_path):
    src = ("import numpy as np\nfrom fcn_scratch.kernels import im2col as _i\n"
           "def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo):\n"
           "    return _i(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo).astype(np.float64)[:, :, :-1]\n")
    results = _grade("im2col", _write(tmp_path, "shape", src))
    assert "has shape" in results["basic"].why
    src = src.replace("[:, :, :-1]", "")
    results = _grade("im2col", _write(tmp_path, "dtype", src))
    assert results["basic"].passed and not results["float32"].passed
    assert "dtype float64, expected float32" in results["float32"].why


def test_a_learner_exit_or_wrong_signature_fails_one_check_not_the_grader(tmp_path):
    src = ("import sys\nimport numpy as np\n"
           "def bilinear_kernel(k):\n    return np.ones((k, k))\n"
           "def bilinear_weight(in_channels, out_channels, k, dtype=np.float32):\n    sys.exit(3)\n")
    path = tmp_path / "answer.txt"  # any file name, not only *.py
    path.write_text(src)
    results = _grade("bilinear_kernel", path)
    assert "is the signature bilinear_kernel(k, dtype=np.float64)?" in results["dtype"].why
    assert results["weight"].why.startswith("SystemExit: 3  [answer.txt, line 6: sys.exit(3)]")
    assert "has shape" not in results["k4"].why and not results["k4"].passed  # ones: wrong values


def test_a_non_finite_error_always_fails():
    """NaN/inf in a learner's output fail; a NaN error never vanishes in a max over cases."""
    with np.errstate(all="ignore"):  # as in run_check: inf - inf is the point here
        _check_non_finite_errors()


def _check_non_finite_errors():
    want = np.arange(6.0).reshape(2, 3)
    for bad in (np.inf, -np.inf, np.nan):
        got = want.copy()
        got[1, 2] = bad
        with pytest.raises(E.Mismatch, match=r"\[1, 2\] is"):
            E._diff(got, want, "y")
        with pytest.raises(E.Mismatch):
            E._diff(bad, 1.5, "loss")
    both = np.array([np.inf, -np.inf, np.nan, 1.0])  # the same non-finite values where the engine has them
    assert E._diff(both.copy(), both, "y") == 0.0 and E._diff(math.inf, math.inf, "s") == 0.0
    with pytest.raises(E.Mismatch):
        E._diff(-both, both, "y")  # +inf where -inf is expected
    assert E._diff(np.array([1e308, -1e308]), np.array([-1e308, 1e308]), "y") == math.inf  # overflow: not NaN
    assert E._worst([1e-17, math.nan]) == math.inf and E._worst([math.nan, 1e-17]) == math.inf
    assert E._worst([(1e-17, "a"), (math.nan, "b")]) == (math.inf, "b")
    assert E._worst([1e-17, 3e-12]) == 3e-12

    # finite differences: an inf in the SECOND gradient (rel_error NaN) must not pass
    a, b = np.random.default_rng(0).standard_normal((2, 3))

    def backward(g):
        gb = g.copy()
        gb[1] = np.inf
        return {"a": g.copy(), "b": gb}

    err, detail = E._fd(lambda: a + b, backward, {"a": a, "b": b}, 0)
    assert err == math.inf and "b inf" in detail


def test_a_learner_base_exception_or_unprintable_exception_fails_one_check(tmp_path, capsys):
    body = "    return dx, dw_, (dy.sum(axis=(0, 2, 3)) if has_bias else None)\n"
    cases = {
        "base": ("class Boom(BaseException):\n        pass\n    raise Boom('x')\n", "Boom: x  [base.py, line "),
        "nostr": ("class E(Exception):\n        def __str__(self):\n            raise RuntimeError('no str')\n"
                  "    raise E()\n", "E  [nostr.py, line "),
    }
    for name, (raise_it, why) in cases.items():
        path = _write(tmp_path, name, _mutant(CONV, body, "    " + raise_it))
        results = _grade("conv2d_backward", path)
        assert results["forward"].passed, name  # the grader went on after the learner's exception
        assert results["grads"].why.startswith(why), (name, results["grads"].why)
        assert main(["exercise", "check", "conv2d_backward", "--file", str(path)]) == 1
    capsys.readouterr()


def test_ctrl_c_in_the_learner_code_stops_the_grader_with_one_line(tmp_path, capsys):
    path = _write(tmp_path, "kbd", _mutant(RELU, "return dy * cache", "raise KeyboardInterrupt"))
    assert main(["exercise", "check", "relu", "--file", str(path)]) == 130
    err = capsys.readouterr().err
    assert err == "fcn-scratch: interrupted by SIGINT\n"


@pytest.mark.parametrize("case", ["two_tuple", "list", "float32", "matrix", "zeros_for_none"])
def test_a_wrong_structure_prints_a_structural_hint_not_the_maths_hint(case, tmp_path, capsys):
    ret = "    return dx, dw_, (dy.sum(axis=(0, 2, 3)) if has_bias else None)\n"
    new, check, why, hint = {
        "two_tuple": ("    return dx, dw_\n", "grads", "got a tuple of 2", "hint_tuple"),
        "list": ("    return [dx, dw_, dy.sum(axis=(0, 2, 3)) if has_bias else None]\n", "grads", "got list",
                 "hint_tuple"),
        "float32": ("    return dx.astype(np.float32), dw_, (dy.sum(axis=(0, 2, 3)) if has_bias else None)\n", "grads",
                    "dx has dtype float32, expected float64", "hint_dtype"),
        "matrix": ("    return dx, np.asmatrix(dw_.reshape(len(dw_), -1)), (dy.sum(axis=(0, 2, 3)) if has_bias else "
                   "None)\n", "grads", "dweight has shape", "hint_shape"),
        "zeros_for_none": ("    return dx, dw_, dy.sum(axis=(0, 2, 3))\n", "options", "dbias should be None",
                           "hint_none"),
    }[case]
    path = _write(tmp_path, case, _mutant(CONV, ret, new))
    assert main(["exercise", "check", "conv2d_backward", "--file", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    maths = {c.key: c for c in E.get("conv2d_backward").checks()}[check].hint
    i = next(i for i, line in enumerate(out) if line.startswith("  FAIL  ") and why in out[i + 1])
    assert out[i + 2] == E.message("hint", hint=E.message(hint)), out[i:i + 3]
    assert all(maths not in line for line in out[i:i + 3])
    assert not out[i + 3].startswith("        ")  # nothing else under that check


def test_grading_is_reproducible(tmp_path):
    path = _write(tmp_path, "m", MUTANTS["relu_backward_ge"][1])
    first = [(r.check.key, r.passed, r.error) for r in _grade("relu", path).values()]
    assert first == [(r.check.key, r.passed, r.error) for r in _grade("relu", path).values()]


def test_names_numbers_and_stems_all_find_an_exercise():
    for key in ("im2col", "01_im2col", "01_im2col.py", "1", "01"):
        assert E.get(key).name == "im2col"
    assert E.get("12").name == "mean_iou"


def test_loading_writes_no_bytecode_next_to_the_file(tmp_path):
    path = _write(tmp_path, "answer", RELU)
    E.grade("relu", path)
    assert not (tmp_path / "__pycache__").exists()


def test_the_lessons_name_existing_exercises_of_their_own_lesson():
    """``lesson.done(exercises=[...])`` prints `fcn-scratch exercise check NAME`: each NAME must exist and
    belong to that lesson, and every exercise is named by its lesson."""
    import re

    named = {}
    for path in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py")):
        for block in re.findall(r"exercises=\[([^\]]*)\]", path.read_text()):
            for name in re.findall(r"[\"']([^\"']+)[\"']", block):
                named[name] = path.name[:2]
    for name, lesson in named.items():
        assert E.get(name).lesson == lesson, (name, lesson)
    assert set(named) == {ex.name for ex in E.EXERCISES}


def test_exercises_are_not_run_as_lessons():
    """tests/test_lessons.py globs lessons/[0-9][0-9]_*.py at the top level only."""
    lessons = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
    assert lessons and not any(p.parent.name == "exercises" for p in lessons)


# ----------------------------------------------------------------------------- usage errors: exit 2


@pytest.mark.parametrize("case", ["unknown", "missing_file", "syntax", "missing_function", "import_error",
                                  "no_name", "no_folder"])
def test_usage_errors_exit_2_with_one_line(case, tmp_path, capsys, monkeypatch):
    argv = ["exercise", "check", "relu", "--file"]
    expect = {
        "unknown": "unknown exercise 'relux'",
        "missing_file": "no such file",
        "syntax": "line 2: SyntaxError",
        "missing_function": "defines no function relu_backward()",
        "import_error": "failed to import: ModuleNotFoundError",
        "no_name": "the following arguments are required",
        "no_folder": "not next to the installed package",
    }[case]
    if case == "unknown":
        argv = ["exercise", "check", "relux"]
    elif case == "missing_file":
        argv.append(str(tmp_path / "nope.py"))
    elif case == "syntax":
        argv.append(str(_write(tmp_path, "bad", "import numpy as np\ndef relu_forward(x)\n    return x\n")))
    elif case == "missing_function":
        argv.append(str(_write(tmp_path, "half", "def relu_forward(x):\n    return x, None\n")))
    elif case == "import_error":
        argv.append(str(_write(tmp_path, "imp", "import not_a_module_anywhere\n")))
    elif case == "no_name":
        argv = ["exercise", "check"]
    else:
        monkeypatch.setattr(E, "exercises_dir", lambda: tmp_path / "no_lessons_here")
        argv = ["exercise", "check", "relu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fcn-scratch: error: ") and expect in err, err
    assert "Traceback" not in err


def _cli(*args, cwd=None):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "fcn_scratch", "exercise", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def test_cli_subprocess_exit_codes(tmp_path):
    """The real command from another directory: a stub fails (1), the engine passes (0), bad input is 2."""
    proc = _cli("check", "im2col", cwd=tmp_path)
    assert proc.returncode == 1 and "0 of 6 checks passed" in proc.stdout, proc.stderr
    path = _write(tmp_path, "ok", DELEGATE["relu"] + "\n")
    proc = _cli("check", "relu", "--file", str(path), cwd=tmp_path)
    assert proc.returncode == 0 and "well done" in proc.stdout, proc.stderr
    proc = _cli("check", "relu", "--file", str(_write(tmp_path, "syn", "def (\n")), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
