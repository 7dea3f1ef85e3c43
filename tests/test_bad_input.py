"""Bad input is refused up front, with a message that names the argument and what was expected.

Every case runs with the kernels replaced by a tripwire: if a bad input got
as far as a Numba kernel (which does not bounds-check), the test would fail
with "kernel reached" instead of the expected ValueError/TypeError.
"""

import numpy as np
import pytest

from fcn_scratch import functional as F
from fcn_scratch import kernels
from fcn_scratch import layers as L
from fcn_scratch.kernels import numba_kernels, numpy_kernels

KERNELS = ("im2col", "col2im", "maxpool_forward", "maxpool_backward")


@pytest.fixture(autouse=True)
def tripwire(monkeypatch):
    def reached(*args, **kwargs):
        raise AssertionError("kernel reached with a bad input")

    for module in (kernels, numba_kernels, numpy_kernels):
        for name in KERNELS:
            monkeypatch.setattr(module, name, reached)


@pytest.fixture
def real_kernels(monkeypatch):
    """Undo the tripwire, for tests that need a real forward pass (before a bad backward)."""
    monkeypatch.undo()


f32, f64 = np.float32, np.float64


def x4(shape=(2, 3, 8, 8), dtype=f32, fill=None):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    if fill is not None:
        x.flat[len(x.flat) // 2] = fill
    return x


def labels(shape=(2, 8, 8), C=4):
    return np.random.default_rng(1).integers(0, C, shape)


def raises(exc, match, fn):
    with pytest.raises(exc, match=match):
        fn()


# --------------------------------------------------------------------------- wrong rank, channels, type


@pytest.mark.parametrize(
    "make",
    [
        lambda: L.Conv2d(3, 4, 3),
        lambda: L.ConvTranspose2d(3, 4, 3),
        lambda: L.MaxPool2d(2),
        lambda: L.Dropout2d(),
    ],
    ids=["Conv2d", "ConvTranspose2d", "MaxPool2d", "Dropout2d"],
)
@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 2, 3, 8, 8), (8,)], ids=["3d", "5d", "1d"])
def test_wrong_ndim(make, shape):
    raises(ValueError, r"x must have 4 dimensions \(N, C, H, W\), got shape", lambda: make().forward(x4(shape)))


def test_wrong_ndim_logits_and_crop():
    raises(ValueError, r"logits must have 4 dimensions", lambda: L.SoftmaxCrossEntropy().forward(x4((4, 8, 8)), labels()))
    raises(ValueError, r"x must have 4 dimensions", lambda: L.Crop().forward(x4((3, 8, 8)), 2))


@pytest.mark.parametrize("make", [lambda: L.Conv2d(4, 2, 3), lambda: L.ConvTranspose2d(2, 4, 3)], ids=["Conv2d", "ConvTranspose2d"])
def test_wrong_channel_count(make):
    m = make()
    raises(ValueError, rf"x must have {m.in_channels} channels \(axis 1\), got shape \(2, 3, 8, 8\)", lambda: m.forward(x4()))


def test_not_an_array():
    raises(TypeError, "x must be a numpy.ndarray, got list", lambda: L.Conv2d(3, 4, 3).forward(x4().tolist()))
    raises(TypeError, "x must be a numpy.ndarray", lambda: L.ReLU().forward(3.0))
    raises(TypeError, "labels must be a numpy.ndarray", lambda: L.SoftmaxCrossEntropy().forward(x4(), labels().tolist()))


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.longdouble, np.complex128, bool])
@pytest.mark.parametrize("make", [lambda: L.MaxPool2d(2), L.ReLU, L.Dropout2d], ids=["MaxPool2d", "ReLU", "Dropout2d"])
def test_only_float32_and_float64(make, dtype):
    """float16 used to reach the Numba max-pool kernel, which cannot type it."""
    x = np.ones((1, 2, 4, 4), dtype=dtype)
    raises(TypeError, r"x must be a floating-point array \(float32 or float64\)", lambda: make().forward(x))


# --------------------------------------------------------------------------- functional level


def test_functional_checks_before_any_kernel():
    w = np.zeros((4, 3, 3, 3), f32)
    raises(ValueError, "x must have 4 dimensions", lambda: F.conv2d_forward(x4((3, 8, 8)), w))
    raises(ValueError, "weight must have 4 dimensions", lambda: F.conv2d_forward(x4(), w[0]))
    raises(ValueError, "x has 3 channels but weight expects 2", lambda: F.conv2d_forward(x4(), w[:, :2]))
    raises(ValueError, "x has 3 channels but weight expects 4", lambda: F.conv_transpose2d_forward(x4(), np.zeros((4, 2, 3, 3), f32)))
    raises(TypeError, "x must be a floating-point array", lambda: F.maxpool2d_forward(x4().astype(np.int64), 2))
    raises(TypeError, "x must be a floating-point array", lambda: F.conv2d_forward(x4().astype(np.float16), w))
    raises(ValueError, "kernel_size .* larger than the padded input", lambda: F.conv2d_forward(x4(), np.zeros((4, 3, 9, 9), f32)))
    raises(ValueError, "stride must be >= 1", lambda: F.conv2d_forward(x4(), w, stride=0))
    raises(ValueError, "padding must be at most half", lambda: F.maxpool2d_forward(x4(), 2, padding=2))
    raises(ValueError, "output_padding must be smaller than max", lambda: F.conv_transpose2d_forward(x4(), w.transpose(1, 0, 2, 3), output_padding=1))
    raises(ValueError, "method must be one of", lambda: F.conv_transpose2d_forward(x4(), w.transpose(1, 0, 2, 3), method="fft"))


# --------------------------------------------------------------------------- kernel larger than the padded input


@pytest.mark.parametrize(
    "k, p, d, hw",
    [(5, 0, 1, (3, 3)), ((3, 9), 0, 1, (8, 8)), (3, 0, 3, (5, 5)), (7, 1, 1, (4, 4)), ((2, 2), (0, 0), (1, 4), (6, 4))],
)
def test_conv_kernel_larger_than_padded_input(k, p, d, hw):
    m = L.Conv2d(1, 1, k, padding=p, dilation=d)
    raises(ValueError, r"kernel_size .* larger than the padded input", lambda: m.forward(x4((1, 1, *hw))))


def test_conv_kernel_exactly_the_padded_input_is_fine(real_kernels):
    """The boundary: a 3x3 input with padding 1 is 5x5; a 5x5 kernel fits once."""
    assert L.Conv2d(1, 1, 5, padding=1).forward(x4((1, 1, 3, 3))).shape == (1, 1, 1, 1)
    assert L.MaxPool2d(3, padding=1).forward(x4((1, 1, 1, 1))).shape == (1, 1, 1, 1)


def test_pool_kernel_larger_than_padded_input():
    raises(ValueError, r"max_pool2d: kernel_size \(4, 4\).*does not fit the padded input \(3, 3\)", lambda: L.MaxPool2d(4).forward(x4((1, 1, 3, 3))))
    raises(ValueError, "does not fit the padded input", lambda: L.MaxPool2d(2, dilation=3).forward(x4((1, 1, 3, 3))))


def test_conv_transpose_padding_too_large():
    m = L.ConvTranspose2d(3, 2, 3, padding=3)
    raises(ValueError, r"padding \(3, 3\) is too large for input \(1, 1\)", lambda: m.forward(x4((1, 3, 1, 1))))


# --------------------------------------------------------------------------- zero / negative sizes and bad hyper-parameters


@pytest.mark.parametrize(
    "make, match, exc",
    [
        (lambda: L.Conv2d(0, 4, 3), "in_channels must be >= 1, got 0", ValueError),
        (lambda: L.Conv2d(3, -1, 3), "out_channels must be >= 1, got -1", ValueError),
        (lambda: L.Conv2d(3, 4, 0), r"kernel_size must be >= 1 in both dimensions, got \(0, 0\)", ValueError),
        (lambda: L.Conv2d(3, 4, (3, -1)), r"kernel_size must be >= 1 .* got \(3, -1\)", ValueError),
        (lambda: L.Conv2d(3, 4, 3, stride=0), "stride must be >= 1", ValueError),
        (lambda: L.Conv2d(3, 4, 3, stride=(1, -2)), "stride must be >= 1", ValueError),
        (lambda: L.Conv2d(3, 4, 3, padding=-1), "padding must be >= 0", ValueError),
        (lambda: L.Conv2d(3, 4, 3, dilation=0), "dilation must be >= 1", ValueError),
        (lambda: L.Conv2d(3, 4, 2.5), "kernel_size must be an int or a pair of ints", TypeError),
        (lambda: L.Conv2d(3, 4, (3,)), "kernel_size must be an int or a pair of ints", TypeError),
        (lambda: L.Conv2d(3, 4, (3, 3, 3)), "kernel_size must be an int or a pair of ints", TypeError),
        (lambda: L.Conv2d(3, 4, True), "kernel_size must be an int or a pair of ints", TypeError),
        (lambda: L.Conv2d(3.0, 4, 3), "in_channels must be an int", TypeError),
        (lambda: L.Conv2d(3, 4, 3, dtype=np.int32), "dtype must be float32 or float64", TypeError),
        (lambda: L.Conv2d(3, 4, 3, dtype=np.float16), "dtype must be float32 or float64", TypeError),
        (lambda: L.Conv2d(3, 4, 3, rng=42), "rng must be a numpy.random.Generator", TypeError),
        (lambda: L.ConvTranspose2d(0, 4, 3), "in_channels must be >= 1", ValueError),
        (lambda: L.ConvTranspose2d(3, 4, -2), "kernel_size must be >= 1", ValueError),
        (lambda: L.ConvTranspose2d(3, 4, 3, stride=0), "stride must be >= 1", ValueError),
        (lambda: L.ConvTranspose2d(3, 4, 3, output_padding=-1), "output_padding must be >= 0", ValueError),
        (lambda: L.ConvTranspose2d(3, 4, 3, method="fft"), r"method must be one of \('col2im', 'zero_insert'\)", ValueError),
        (lambda: L.MaxPool2d(0), "kernel_size must be >= 1", ValueError),
        (lambda: L.MaxPool2d(2, stride=0), "stride must be >= 1", ValueError),
        (lambda: L.MaxPool2d(2, padding=-1), "padding must be >= 0", ValueError),
        (lambda: L.MaxPool2d(2, dilation=0), "dilation must be >= 1", ValueError),
        (lambda: L.Dropout2d(-0.1), r"p \(drop probability\) must be a number in \[0, 1\]", ValueError),
        (lambda: L.Dropout2d(1.5), r"p \(drop probability\) must be a number in \[0, 1\]", ValueError),
        (lambda: L.Dropout2d("0.5"), r"p \(drop probability\)", ValueError),
        (lambda: L.Dropout2d(True), r"p \(drop probability\)", ValueError),
        (lambda: L.SoftmaxCrossEntropy(ignore_index=2.5), "ignore_index must be an int", TypeError),
        (lambda: L.SoftmaxCrossEntropy(ignore_index="255"), "ignore_index must be an int", TypeError),
        (lambda: L.Crop(offset=(-1, 0)), "offset must be >= 0", ValueError),
    ],
)
def test_bad_constructor_arguments(make, match, exc):
    raises(exc, match, make)


@pytest.mark.parametrize(
    "k, p, d",
    # PyTorch's rule p <= k // 2 on the undilated kernel: (3, 2, 2) is refused although 2*2 <= 2*(3-1)+1
    [(2, 2, 1), (3, 2, 1), (1, 1, 1), ((3, 3), (1, 2), 1), (2, 2, 2), (3, 2, 2)],
)
def test_pool_padding_over_half_the_kernel(k, p, d):
    raises(ValueError, r"padding must be at most half the kernel size", lambda: L.MaxPool2d(k, padding=p, dilation=d))
    raises(ValueError, r"padding must be at most half the kernel size", lambda: F.maxpool2d_forward(x4(), k, padding=p, dilation=d))


@pytest.mark.parametrize(
    "s, d, op, axis",
    [(2, 1, 2, "h"), (1, 1, 1, "h"), (3, 1, 5, "h"), (1, 2, 2, "h"), ((1, 2), 1, (0, 2), "w"), (2, (3, 1), (1, 2), "w")],
)
def test_output_padding_not_below_max_stride_dilation(s, d, op, axis):
    raises(ValueError, rf"output_padding must be smaller than max\(stride, dilation\) = \d along {axis}",
           lambda: L.ConvTranspose2d(1, 1, 3, stride=s, dilation=d, output_padding=op))


def test_output_padding_just_below_the_limit_is_fine():
    L.ConvTranspose2d(1, 1, 3, stride=2, output_padding=1)
    L.ConvTranspose2d(1, 1, 3, stride=1, dilation=3, output_padding=2)  # op may reach the stride when dilation is larger


@pytest.mark.parametrize("size", [0, (0, 3), (3, -1)])
def test_crop_zero_or_negative_size(size):
    raises(ValueError, "size must be >= 1", lambda: L.Crop().forward(x4(), size))


def test_crop_larger_than_input():
    raises(ValueError, r"crop of size \(8, 8\) at offset \(1, 1\) does not fit inside the input \(8, 8\)",
           lambda: L.Crop((1, 1)).forward(x4(), (8, 8)))


# --------------------------------------------------------------------------- labels


def test_labels_outside_the_class_range():
    ce = L.SoftmaxCrossEntropy()
    for value in (4, -1, 254, 1000):
        lab = labels()
        lab[1, 2, 3] = value
        raises(ValueError, rf"labels contains {value}, outside \[0, 4\) and not ignore_index=255", lambda: ce.forward(x4((2, 4, 8, 8)), lab))
    lab = labels()
    lab[0, 0, 0] = 255  # ignore_index itself is fine
    ce.forward(x4((2, 4, 8, 8)), lab)
    other = L.SoftmaxCrossEntropy(ignore_index=-1)
    raises(ValueError, r"labels contains 255, outside \[0, 4\) and not ignore_index=-1", lambda: other.forward(x4((2, 4, 8, 8)), np.where(lab == 255, 255, lab)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, bool, object])
def test_labels_must_be_integers(dtype):
    raises(TypeError, "labels must hold integer class ids", lambda: L.SoftmaxCrossEntropy().forward(x4((2, 4, 8, 8)), labels().astype(dtype)))


@pytest.mark.parametrize("shape", [(2, 8, 7), (1, 8, 8), (2, 1, 8, 8), (8, 8), (2, 8, 8, 1)])
def test_label_shape_mismatch(shape):
    raises(ValueError, r"labels must have shape \(N, H, W\) = \(2, 8, 8\) to match the logits",
           lambda: L.SoftmaxCrossEntropy().forward(x4((2, 4, 8, 8)), np.zeros(shape, dtype=np.int64)))


# --------------------------------------------------------------------------- backward: before forward, wrong gradient


def _layers_with_input():
    x = x4((2, 3, 6, 6))
    return [
        ("Conv2d", L.Conv2d(3, 4, 3), (x,)),
        ("ConvTranspose2d", L.ConvTranspose2d(3, 4, 3, stride=2), (x,)),
        ("ConvTranspose2d-zero_insert", L.ConvTranspose2d(3, 4, 3, stride=2, method="zero_insert"), (x,)),
        ("MaxPool2d", L.MaxPool2d(2), (x,)),
        ("ReLU", L.ReLU(), (x,)),
        ("Dropout2d", L.Dropout2d(), (x,)),
        ("Crop", L.Crop(), (x, 4)),
        ("Add", L.Add(), (x, x)),
    ]


NAMES = [n for n, _, _ in _layers_with_input()]


def _get(name):
    return next((m, a) for n, m, a in _layers_with_input() if n == name)


@pytest.mark.parametrize("name", NAMES + ["SoftmaxCrossEntropy"])
def test_backward_before_forward(name):
    if name == "SoftmaxCrossEntropy":
        raises(ValueError, r"SoftmaxCrossEntropy.backward\(\) called before forward\(\)", L.SoftmaxCrossEntropy().backward)
        return
    m, _ = _get(name)
    raises(ValueError, rf"{type(m).__name__}.backward\(\) called before forward\(\)", lambda: m.backward(x4((2, 4, 4, 4))))


@pytest.mark.parametrize("name", NAMES)
def test_backward_with_wrongly_shaped_gradient(name, real_kernels):
    m, args = _get(name)
    y = m.forward(*args)
    for bad in (y[:1], y[..., :-1], y[0], np.concatenate([y, y])):
        raises(ValueError, rf"dy must have the forward output's shape \({', '.join(map(str, y.shape))}\)", lambda: m.backward(bad))


@pytest.mark.parametrize("name", NAMES)
def test_backward_with_wrong_gradient_dtype_or_type(name, real_kernels):
    m, args = _get(name)
    y = m.forward(*args)
    raises(TypeError, "dy has dtype float64, expected float32", lambda: m.backward(y.astype(np.float64)))
    raises(TypeError, r"dy must be a floating-point array", lambda: m.backward(y.astype(np.int32)))
    raises(TypeError, "dy must be a numpy.ndarray", lambda: m.backward(y.tolist()))


def test_loss_backward_with_a_bad_dloss(real_kernels):
    m = L.SoftmaxCrossEntropy()
    m.forward(x4((2, 4, 8, 8)), labels())
    raises(ValueError, r"dloss must be a scalar .* shape \(3,\)", lambda: m.backward(np.ones(3)))
    raises(ValueError, "dloss must be a scalar", lambda: m.backward(np.ones((2, 4, 8, 8))))
    raises(TypeError, "dloss must be a real number, got str", lambda: m.backward("1"))
    raises(ValueError, "dloss must be finite, got nan", lambda: m.backward(float("nan")))
    raises(ValueError, "dloss must be finite, got inf", lambda: m.backward(np.inf))
    m.backward(np.float32(2.0))  # numpy scalars and 0-d arrays are fine
    m.backward(np.array(2.0))


# --------------------------------------------------------------------------- values, dtype mismatch, empty batch


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "make",
    [lambda: L.Conv2d(3, 4, 3), lambda: L.ConvTranspose2d(3, 4, 3), lambda: L.MaxPool2d(2), L.ReLU, L.Dropout2d],
    ids=["Conv2d", "ConvTranspose2d", "MaxPool2d", "ReLU", "Dropout2d"],
)
def test_nan_and_inf_inputs(make, bad):
    raises(ValueError, "x contains NaN or inf", lambda: make().forward(x4(fill=bad)))


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_nan_logits(bad):
    raises(ValueError, "logits contains NaN or inf", lambda: L.SoftmaxCrossEntropy().forward(x4((2, 4, 8, 8), fill=bad), labels()))


@pytest.mark.parametrize(
    "make, xdtype",
    [(lambda: L.Conv2d(3, 4, 3), f64), (lambda: L.Conv2d(3, 4, 3, dtype=f64), f32),
     (lambda: L.ConvTranspose2d(3, 4, 3), f64), (lambda: L.ConvTranspose2d(3, 4, 3, dtype=f64), f32)],
    ids=["Conv2d-f32-given-f64", "Conv2d-f64-given-f32", "ConvT-f32-given-f64", "ConvT-f64-given-f32"],
)
def test_dtype_mismatch(make, xdtype):
    m = make()
    held = np.dtype(m.dtype).name
    raises(TypeError, rf"x has dtype {np.dtype(xdtype).name} but this layer holds {held}; convert with x.astype\(np.{held}\)",
           lambda: m.forward(x4(dtype=xdtype)))


def test_add_dtype_and_shape_mismatch():
    raises(TypeError, "b has dtype float64 but this layer holds float32", lambda: L.Add().forward(x4(), x4(dtype=f64)))
    raises(ValueError, r"add: shapes differ, \(2, 3, 8, 8\) vs \(2, 2, 8, 8\)", lambda: L.Add().forward(x4(), x4((2, 2, 8, 8))))


@pytest.mark.parametrize("shape", [(0, 3, 8, 8), (2, 3, 0, 8), (2, 3, 8, 0)], ids=["N=0", "H=0", "W=0"])
@pytest.mark.parametrize(
    "make",
    [lambda: L.Conv2d(3, 4, 1), lambda: L.ConvTranspose2d(3, 4, 1), lambda: L.MaxPool2d(1), L.ReLU, L.Dropout2d],
    ids=["Conv2d", "ConvTranspose2d", "MaxPool2d", "ReLU", "Dropout2d"],
)
def test_empty_batch(make, shape):
    raises(ValueError, r"x is empty \(shape \(.*\)\); expected at least one element", lambda: make().forward(x4(shape)))


def test_empty_batch_loss():
    raises(ValueError, "logits is empty", lambda: L.SoftmaxCrossEntropy().forward(x4((0, 4, 8, 8)), labels((0, 8, 8))))
