"""Shared fixtures: run kernel-dependent tests on both backends."""

import numpy as np
import pytest

from fcn_scratch import kernels


@pytest.fixture(params=kernels.BACKENDS)
def backend(request):
    """Run the test once with the Numba kernels and once with their NumPy twins."""
    with kernels.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _english_by_default(monkeypatch):
    """The suite expects English unless a test asks for Korean: a learner's exported
    FCN_SCRATCH_LANG=ko (or a font override) must not change what the other tests see."""
    monkeypatch.delenv("FCN_SCRATCH_LANG", raising=False)
    monkeypatch.delenv("FCN_SCRATCH_FONT", raising=False)
