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
