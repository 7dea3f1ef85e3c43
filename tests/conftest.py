"""Shared fixtures: run kernel-dependent tests on both backends; the lessons' framework, imported fresh."""

import importlib.util
from pathlib import Path

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


LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"


def import_lesson_common():
    """``lessons/_common.py`` imported afresh (it is not a package module: lessons import it by path)."""
    spec = importlib.util.spec_from_file_location("_lesson_common_under_test", LESSONS_DIR / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def common(monkeypatch, tmp_path):
    """The lessons' framework, run from tmp_path; NumPy's print options and matplotlib's settings (a
    Korean lesson sets a Hangul font) restored afterwards."""
    import matplotlib

    monkeypatch.chdir(tmp_path)
    saved = np.get_printoptions()
    with matplotlib.rc_context():
        yield import_lesson_common()
    np.set_printoptions(**saved)
