"""Every lesson runs unattended, so a lesson that goes stale fails the suite.

Each ``lessons/NN_*.py`` (found by glob, so new lessons are picked up) runs as
a subprocess from an empty working directory with ``--figures`` pointing into
``tmp_path``. It must exit 0, print the framework's summary line, write exactly
the figures it reports into ``<figures>/<lesson name>/`` (at least one if its
source calls ``lesson.save``), and write nothing into the source tree.
The framework itself (``lessons/_common.py``) is tested in-process below.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS_DIR = ROOT / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py"))
SUMMARY = re.compile(r"^=== (\S+): (\d+) steps, (\d+) checks passed, (\d+) figures saved$", re.M)
IMAGE_EXTS = {".png", ".pdf", ".svg", ".jpg", ".jpeg"}

pytestmark = pytest.mark.lesson


def _source_snapshot():
    """What a lesson must not create: files in lessons/ (bytecode aside), images or lesson_figures/ in the repo."""
    found = {p for p in LESSONS_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in {".git", "__pycache__", ".pytest_cache", ".hypothesis"}]
        for name in dirs + files:
            if name == "lesson_figures" or Path(name).suffix.lower() in IMAGE_EXTS:
                found.add(Path(top) / name)
    return found


def _run(path, cwd, *args, stdin="", **env_extra):
    # stdin is closed (or scripted), so a stray input() cannot hang the suite.
    env = dict(os.environ, MPLBACKEND="Agg", **env_extra)
    return subprocess.run([sys.executable, str(path), *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=600)


def _explain(proc):
    return f"exit {proc.returncode}\n--- stdout (tail)\n{proc.stdout[-4000:]}\n--- stderr (tail)\n{proc.stderr[-4000:]}"


def test_lessons_are_found():
    assert LESSONS, f"no lessons/[0-9][0-9]_*.py under {LESSONS_DIR}"
    assert len({p.name[:2] for p in LESSONS}) == len(LESSONS), "two lessons share a number"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_headless(path, tmp_path):
    cwd, figures = tmp_path / "cwd", tmp_path / "figures"
    cwd.mkdir()
    before = _source_snapshot()
    proc = _run(path, cwd, "--figures", str(figures))
    assert proc.returncode == 0, _explain(proc)
    match = SUMMARY.search(proc.stdout)
    assert match, "no summary line: does the lesson end with lesson.done()?\n" + _explain(proc)
    name, steps, checks, n_figures = match.group(1), *map(int, match.groups()[1:])
    assert name == path.stem, f"Lesson name {name!r} must be the file's stem {path.stem!r} (it names the figure folder)"
    assert steps >= 1 and checks >= steps
    written = sorted(p for p in figures.rglob("*") if p.is_file())
    assert len(written) == n_figures, f"lesson reports {n_figures} figures, wrote {[str(p) for p in written]}"
    assert all(p.parent == figures / path.stem and p.suffix == ".png" for p in written), written
    if ".save(" in path.read_text(encoding="utf-8"):
        assert n_figures >= 1, "the lesson saves figures but none were written"
    assert not any(cwd.iterdir()), f"wrote into the working directory despite --figures: {list(cwd.iterdir())}"
    assert _source_snapshot() == before, f"wrote into the source tree: {_source_snapshot() ^ before}"


def test_lesson_under_step_pauses_after_every_step(tmp_path):
    """``--step`` waits for Enter once per step; with ``--no-figures`` nothing is written anywhere.

    Runs on the NumPy kernels (the headless runs above use the default backend), so both are exercised.
    """
    path = LESSONS_DIR / "02_im2col_col2im.py"
    if not path.exists():
        pytest.skip("lesson 02 is not there")
    proc = _run(path, tmp_path, "--step", "--no-figures", stdin="\n" * 200, FCN_SCRATCH_BACKEND="numpy")
    assert proc.returncode == 0, _explain(proc)
    steps = int(SUMMARY.search(proc.stdout).group(2))
    assert proc.stdout.count("press Enter") == steps >= 2
    assert "0 figures saved" in proc.stdout and not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- the framework, in-process


def _import_common():
    spec = importlib.util.spec_from_file_location("_lesson_common_under_test", LESSONS_DIR / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def common(monkeypatch, tmp_path):
    """Import lessons/_common.py fresh, run from tmp_path, and restore NumPy's print options afterwards."""
    monkeypatch.chdir(tmp_path)
    saved = np.get_printoptions()
    yield _import_common()
    np.set_printoptions(**saved)


def _figure():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def test_framework_defaults_save_under_cwd_and_print_summary(common, tmp_path, capsys):
    lesson = common.Lesson("99_demo", "demo", argv=[])
    lesson.step("one")
    lesson.check(1 + 1 == 2, "arithmetic")
    lesson.close([1.0, 2.0], [1.0, 2.0 + 1e-13], "close enough")
    lesson.save(_figure(), "line")
    lesson.done()
    assert (tmp_path / "lesson_figures" / "99_demo" / "line.png").is_file()
    match = SUMMARY.search(capsys.readouterr().out)
    assert match and match.groups() == ("99_demo", "1", "2", "1")


def test_framework_figures_dir_and_no_figures(common, tmp_path):
    lesson = common.Lesson("99_demo", "demo", argv=["--figures", str(tmp_path / "out")])
    lesson.save(_figure(), "a")
    assert (tmp_path / "out" / "99_demo" / "a.png").is_file()
    quiet = common.Lesson("99_demo", "demo", argv=["--no-figures"])
    quiet.save(_figure(), "b")
    assert quiet.saved == [] and not (tmp_path / "lesson_figures").exists()


def test_framework_step_pauses_once_per_step(common, monkeypatch):
    prompts = []
    monkeypatch.setattr(builtins, "input", lambda msg="": prompts.append(msg) or "")
    lesson = common.Lesson("99_demo", "demo", argv=["--step"])
    for k in range(3):
        lesson.step(f"step {k}")
        lesson.check(True, "fine")
    lesson.done()
    assert len(prompts) == 3

    def closed(msg=""):
        raise EOFError

    monkeypatch.setattr(builtins, "input", closed)  # stdin closed: --step must not crash
    lesson = common.Lesson("99_demo", "demo", argv=["--step"])
    lesson.step("a")
    lesson.check(True, "fine")
    lesson.done()


def test_framework_rejects_failed_and_missing_checks(common):
    lesson = common.Lesson("99_demo", "demo", argv=[])
    lesson.step("a")
    with pytest.raises(AssertionError, match="the claim"):
        lesson.check(False, "the claim")
    with pytest.raises(AssertionError, match="not close"):
        lesson.close(1.0, 1.1, "not close")
    lesson.check(lambda: np.testing.assert_array_equal([1, 2], [1, 2]), "a callable that does not raise passes")
    with pytest.raises(AssertionError):
        lesson.check(lambda: np.testing.assert_array_equal([1, 2], [1, 3]), "a callable that raises fails")
    with pytest.raises(AssertionError, match="returns False"):
        lesson.check(lambda: False, "a callable that returns False")
    lesson = common.Lesson("99_demo", "demo", argv=[])
    lesson.step("a step that proves nothing")
    with pytest.raises(RuntimeError, match="without a check"):
        lesson.step("b")
    with pytest.raises(SystemExit):
        common.Lesson("99_demo", "demo", argv=["--no-such-flag"])


def test_framework_in_a_notebook_takes_no_flags_and_saves_nothing(monkeypatch, tmp_path):
    """Under ipykernel, sys.argv holds the kernel's own arguments: they must not be parsed."""
    import types

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel-1.json"])
    saved = np.get_printoptions()
    try:
        common = _import_common()
        lesson = common.Lesson("99_demo", "demo")
        assert not lesson.pause and not lesson.figures
        fig = _figure()
        lesson.save(fig, "inline")
        assert not any(tmp_path.iterdir())
    finally:
        np.set_printoptions(**saved)
        import matplotlib.pyplot as plt

        plt.close("all")
