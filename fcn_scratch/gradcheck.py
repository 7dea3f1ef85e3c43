"""Gradient checking by central finite differences, as a feature.

The recipe (CS231n's, made stricter):

1. run ``y = f(x)`` in float64 and draw a **random** upstream gradient ``g``
   shaped like ``y`` (all-ones would hide sign and permutation bugs);
2. the analytic gradient is ``backward(g)``;
3. the numerical gradient of ``L(x) = sum(f(x) * g)`` is
   ``(L(x + h e_i) - L(x - h e_i)) / 2h`` for each entry ``i`` (``h = 1e-6``);
4. compare with ``rel_error(a, b) = max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|))``.

Expected errors in float64: smooth layers < 1e-7; ReLU and max-pool, with
inputs kept away from kinks and ties, < 1e-6; whole tiny FCNs < 1e-5.

``python -m fcn_scratch gradcheck`` prints a table over every layer (:func:`report`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOL_SMOOTH = 1e-7
TOL_KINK = 1e-6
TOL_MODEL = 1e-5


def rel_error(a, b) -> float:
    """``max|a - b| / max(1e-8, max(|a| + |b|))``: the worst entry's error relative to the gradient's scale."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def numerical_gradient(loss, x: np.ndarray, h: float = 1e-6, indices=None) -> np.ndarray:
    """Central differences of the scalar ``loss()`` w.r.t. the array ``x``, which ``loss`` reads.

    ``x`` is perturbed in place and restored. ``indices``: flat positions to
    probe (all when None); other entries of the result are 0.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient needs a contiguous x (it perturbs x in place)")
    for i in range(x.size) if indices is None else indices:
        old = flat_x[i]
        flat_x[i] = old + h
        plus = loss()
        flat_x[i] = old - h
        minus = loss()
        flat_x[i] = old
        flat_g[i] = (plus - minus) / (2 * h)
    return grad


def check(forward, backward, inputs: dict, *, seed: int = 0, h: float = 1e-6, samples: int | None = None) -> dict:
    """Compare analytic and numerical gradients of ``forward`` for every array in ``inputs``.

    ``forward()`` computes the output from the (live) arrays in ``inputs``;
    ``backward(g)`` returns ``{name: gradient}`` for the same names. With
    ``samples``, only that many random entries per array are probed (whole
    models). Returns ``{name: rel_error}``.
    """
    rng = np.random.default_rng(seed)
    y = forward()
    g = rng.standard_normal(np.shape(y))
    analytic = {k: np.array(v, dtype=np.float64) for k, v in backward(g).items()}

    def loss():
        return float(np.sum(np.asarray(forward(), dtype=np.float64) * g))

    errors = {}
    for name, x in inputs.items():
        idx = None
        if samples is not None and x.size > samples:
            idx = rng.choice(x.size, size=samples, replace=False)
        num = numerical_gradient(loss, x, h, idx)
        ana = analytic[name]
        if idx is not None:
            num, ana = num.reshape(-1)[idx], ana.reshape(-1)[idx]
        errors[name] = rel_error(ana, num)
    return errors


def check_module(module, *xs, seed: int = 0, h: float = 1e-6, samples: int | None = None) -> dict:
    """Gradient-check a layer or model with the standard API on inputs ``xs``.

    Checks the input(s) (``"x"``, or ``"x0"``, ``"x1"``... for several) and every
    parameter (``"weight"``, ``"conv1_1.bias"``, ...). Returns ``{name: rel_error}``.
    """
    names = ["x"] if len(xs) == 1 else [f"x{i}" for i in range(len(xs))]
    inputs = dict(zip(names, xs))
    inputs.update({name: p for name, p, _ in module.named_parameters()})

    def backward(g):
        dxs = module.backward(g)
        dxs = dxs if isinstance(dxs, tuple) else (dxs,)
        out = dict(zip(names, dxs))
        out.update({name: grad for name, _, grad in module.named_parameters()})
        return out

    return check(lambda: module.forward(*xs), backward, inputs, seed=seed, h=h, samples=samples)


def away_from_kinks(shape, rng, margin: float = 0.1) -> np.ndarray:
    """float64 values with ``|v| >= margin``, so ``x +- h`` never crosses ReLU's kink at 0."""
    mag = margin + np.abs(rng.standard_normal(shape))
    return np.where(rng.random(shape) < 0.5, -mag, mag)


def distinct_values(shape, rng, spacing: float = 0.01) -> np.ndarray:
    """float64 values all ``spacing`` apart (shuffled), so no max-pool window has a near-tie."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * spacing - n * spacing / 2).reshape(shape).astype(np.float64)


# --------------------------------------------------------------------------- the report


@dataclass
class Row:
    layer: str
    config: str
    error: float
    tol: float

    @property
    def passed(self) -> bool:
        return self.error < self.tol


def _layer_cases():
    """(layer name, configuration text, builder) for the report; builders return (module, inputs, tol)."""
    from . import layers as L

    def conv(cin, cout, k, s, p, d, bias, hw, seed):
        def build():
            rng = np.random.default_rng(seed)
            m = L.Conv2d(cin, cout, k, s, p, d, bias, dtype=np.float64, rng=rng)
            return m, (rng.standard_normal((2, cin, *hw)),), TOL_SMOOTH
        return "Conv2d", f"{cin}->{cout} k={k} s={s} p={p} d={d} bias={bias} in={hw}", build

    def convt(cin, cout, k, s, p, op, d, method, hw, seed):
        def build():
            rng = np.random.default_rng(seed)
            m = L.ConvTranspose2d(cin, cout, k, s, p, op, d, method=method, dtype=np.float64, rng=rng)
            return m, (rng.standard_normal((2, cin, *hw)),), TOL_SMOOTH
        return "ConvTranspose2d", f"{method} {cin}->{cout} k={k} s={s} p={p} op={op} d={d} in={hw}", build

    def pool(k, s, p, ceil, hw, seed):
        def build():
            rng = np.random.default_rng(seed)
            m = L.MaxPool2d(k, s, p, ceil_mode=ceil)
            return m, (distinct_values((2, 3, *hw), rng),), TOL_KINK
        return "MaxPool2d", f"k={k} s={s} p={p} ceil_mode={ceil} in={hw}", build

    def relu(seed):
        def build():
            return L.ReLU(), (away_from_kinks((2, 3, 5, 7), np.random.default_rng(seed)),), TOL_KINK
        return "ReLU", "in=(2, 3, 5, 7)", build

    def crop(seed):
        def build():
            m = _Bound(L.Crop(offset=(1, 2)), size=(4, 3))
            return m, (np.random.default_rng(seed).standard_normal((2, 3, 6, 7)),), TOL_SMOOTH
        return "Crop", "(6, 7) -> (4, 3) at offset (1, 2)", build

    def add(seed):
        def build():
            rng = np.random.default_rng(seed)
            return L.Add(), (rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))), TOL_SMOOTH
        return "Add", "(2, 3, 4, 5) + (2, 3, 4, 5)", build

    def dropout(p, seed):
        def build():
            rng = np.random.default_rng(seed)
            return _FixedDropout(p, seed), (rng.standard_normal((4, 6, 3, 3)),), TOL_SMOOTH
        return "Dropout2d", f"p={p}, train mode, fixed mask", build

    def loss(ignore, seed):
        def build():
            rng = np.random.default_rng(seed)
            logits = rng.standard_normal((2, 4, 5, 6)) * 3
            labels = rng.integers(0, 4, (2, 5, 6))
            if ignore:
                labels[rng.random(labels.shape) < 0.3] = 255
            return _BoundLoss(L.SoftmaxCrossEntropy(255), labels), (logits,), TOL_SMOOTH
        return "SoftmaxCrossEntropy", f"C=4 in=(2, 5, 6){' with ignore_index pixels' if ignore else ''}", build

    return [
        conv(3, 4, 3, 1, 1, 1, True, (7, 9), 1),
        conv(2, 3, (3, 2), (2, 3), (1, 0), 1, True, (9, 8), 2),
        conv(2, 3, 3, 2, 2, 2, False, (11, 10), 3),
        conv(4, 5, 1, 1, 0, 1, True, (5, 6), 4),
        conv(4, 3, 3, 1, 1, 1, True, (7, 9), 19),  # F <= C, stride 1: dx by the flipped-kernel conv
        conv(3, 3, (3, 2), 1, (2, 1), 2, True, (9, 8), 20),
        conv(4, 2, 3, 1, 0, 1, False, (6, 5), 21),
        convt(3, 2, 4, 2, 1, 0, 1, "col2im", (4, 5), 5),
        convt(3, 2, 4, 2, 1, 0, 1, "zero_insert", (4, 5), 5),
        convt(2, 3, 3, 3, 1, 2, 1, "col2im", (3, 4), 6),
        convt(2, 3, (3, 2), (2, 3), (0, 1), (1, 0), 2, "zero_insert", (3, 4), 7),
        convt(2, 2, 16, 8, 4, 0, 1, "col2im", (2, 3), 8),
        pool(2, 2, 0, True, (7, 9), 9),
        pool(3, 2, 1, False, (8, 7), 10),
        pool(3, 3, 1, True, (10, 11), 11),
        relu(12),
        dropout(0.5, 13),
        loss(False, 14),
        loss(True, 15),
        crop(16),
        add(17),
    ]


class _Bound:
    """Adapter: a Crop with its output size fixed, so it has the one-input layer API."""

    def __init__(self, layer, size):
        self.layer, self.size = layer, size

    def forward(self, x):
        return self.layer.forward(x, self.size)

    def backward(self, g):
        return self.layer.backward(g)

    def named_parameters(self):
        return iter(())


class _BoundLoss(_Bound):
    """Adapter: a loss with its labels fixed; the upstream 'gradient' is a random scalar."""

    def forward(self, logits):
        return self.layer.forward(logits, self.size)

    def backward(self, g):
        return self.layer.backward(float(g))


class _FixedDropout(_Bound):
    """Adapter: Dropout2d redrawing the *same* mask on every call (finite differences need one function)."""

    def __init__(self, p, seed):
        from .layers import Dropout2d

        super().__init__(Dropout2d(p), None)
        self.seed = seed

    def forward(self, x):
        self.layer.rng = np.random.default_rng(self.seed)
        return self.layer.forward(x)


def report(include_models: bool = True, print_fn=print) -> list[Row]:
    """Check every layer (and the tiny FCNs) in float64 and print a table; returns the rows."""
    rows = []
    for layer_name, config, build in _layer_cases():
        module, xs, tol = build()
        errors = check_module(module, *xs)
        rows.append(Row(layer_name, config + "  [" + ", ".join(errors) + "]", max(errors.values()), tol))
    if include_models:
        rows.extend(_model_rows())
    width = max(len(r.layer) for r in rows)
    print_fn(f"{'layer':<{width}}  {'max rel error':>13}  {'tol':>6}  result  configuration [tensors]")
    for r in rows:
        print_fn(f"{r.layer:<{width}}  {r.error:13.2e}  {r.tol:6.0e}  {'pass' if r.passed else 'FAIL':<6}  {r.config}")
    n_fail = sum(not r.passed for r in rows)
    print_fn(f"{len(rows) - n_fail} passed, {n_fail} failed")
    return rows


def _model_rows(samples: int = 4) -> list[Row]:
    """Whole tiny FCNs in float64, a random sample of entries of every parameter tensor.

    FCN-32s/16s/8s with widths (2, 3, 4, 5, 6), one conv per block, fc 8,
    3 classes, batch 2, at 32x32 (no crop) and 37x45 (every crop active), in
    eval mode (dropout off). Every parameter is redrawn at random first: at the
    paper's initialisation the zero score layers would make every backbone
    gradient exactly zero, and zero-vs-zero checks nothing. ``samples`` entries
    of the input and of each parameter tensor are probed; tolerance TOL_MODEL.
    """
    from .models import FCN8s, FCN16s, FCN32s

    rows = []
    for k, cls in enumerate((FCN32s, FCN16s, FCN8s)):
        for hw in ((32, 32), (37, 45)):
            rng = np.random.default_rng(100 + k)
            model = cls(3, widths=(2, 3, 4, 5, 6), convs_per_block=(1, 1, 1, 1, 1), fc_channels=8,
                        dtype=np.float64, rng=rng).eval()
            for _, p, _ in model.named_parameters():
                if p.ndim == 4:  # std sqrt(2 / (entries feeding one output slice)), He-like
                    p[...] = rng.standard_normal(p.shape) * np.sqrt(2.0 / p[0].size)
                else:  # biases off zero, so no ReLU input sits at its kink
                    p[...] = 0.1 * rng.standard_normal(p.shape)
            x = rng.standard_normal((2, 3, *hw))
            errors = check_module(model, x, seed=k, samples=samples)
            config = (f"tiny widths (2, 3, 4, 5, 6), fc 8, 3 classes, in=(2, 3, {hw[0]}, {hw[1]}) "
                      f"[x + {len(errors) - 1} parameter tensors, {samples} entries each]")
            rows.append(Row(cls.__name__, config, max(errors.values()), TOL_MODEL))
    return rows
