"""Every configuration of the ``fcn-scratch gradcheck`` report, as a test, on both backends."""

import numpy as np
import pytest

from fcn_scratch import gradcheck

CASES = gradcheck._layer_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{n}:{c}" for n, c, _ in CASES])
def test_report_case(case, backend):
    name, config, build = case
    module, xs, tol = build()
    errors = gradcheck.check_module(module, *xs)
    assert set(errors) >= {"x"} or set(errors) >= {"x0", "x1"}
    for tensor, err in errors.items():
        assert err < tol, f"{name} {config}: {tensor} rel error {err:.2e} >= {tol:.0e}"


def test_rel_error_definition():
    a = np.array([1.0, -2.0, 3.0])
    b = np.array([1.0, -2.0, 3.3])
    # max|a-b| = 0.3, max(|a|+|b|) = 6.3
    assert gradcheck.rel_error(a, b) == pytest.approx(0.3 / 6.3)
    assert gradcheck.rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_check_catches_a_wrong_gradient():
    """A deliberately wrong backward must be flagged: the check can fail."""
    x = np.random.default_rng(0).standard_normal(5)
    errors = gradcheck.check(lambda: x**2, lambda g: {"x": g * x}, {"x": x})  # true gradient is 2*g*x
    assert errors["x"] > 0.3


def test_cli_report_passes(capsys):
    from fcn_scratch.cli import main

    assert main(["gradcheck", "--layers-only"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "Conv2d" in out
