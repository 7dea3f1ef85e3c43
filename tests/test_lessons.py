"""Every lesson runs unattended, so a lesson that goes stale fails the suite.

Each ``lessons/NN_*.py`` (found by glob, so new lessons are picked up) runs as
a subprocess from an empty working directory with ``--figures`` pointing into
``tmp_path``. It must exit 0, print the framework's summary line, write exactly
the figures it reports into ``<figures>/<lesson name>/`` (at least one if its
source calls ``lesson.save``), one GIF of at least 8 frames per
``save_animation`` call in its source, and nothing into the source tree.
The framework itself (``lessons/_common.py``) is tested in-process below.
"""

from __future__ import annotations

import ast
import builtins
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import import_lesson_common

ROOT = Path(__file__).resolve().parent.parent
LESSONS_DIR = ROOT / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py"))
SUMMARY = re.compile(r"^=== (\S+): (\d+) steps, (\d+) checks passed, (\d+) figures saved$", re.M)
IMAGE_EXTS = {".png", ".gif", ".pdf", ".svg", ".jpg", ".jpeg"}
MIN_GIF_FRAMES, MIN_GIFS = 8, 5  # issue 14: animations where motion teaches, at least 5 across the lessons

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


def _animation_calls(path):
    """How many ``save_animation(...)`` calls the lesson's source makes (each runs once: one GIF each)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return sum(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr == "save_animation" for node in ast.walk(tree))


def _check_gif(path):
    """A GIF a lesson wrote: enough frames to show motion, all of one sane size, looping."""
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        assert im.format == "GIF", path
        assert im.n_frames >= MIN_GIF_FRAMES, f"{path.name}: {im.n_frames} frames, want >= {MIN_GIF_FRAMES}"
        assert 200 <= im.width <= 1600 and 150 <= im.height <= 1200, f"{path.name}: size {im.size}"
        assert {frame.size for frame in ImageSequence.Iterator(im)} == {im.size}, f"{path.name}: frame sizes differ"
        assert im.info.get("loop") == 0, f"{path.name} does not loop"


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
    assert all(p.parent == figures / path.stem and p.suffix in {".png", ".gif"} for p in written), written
    if ".save(" in path.read_text(encoding="utf-8"):
        assert n_figures >= 1, "the lesson saves figures but none were written"
    gifs = [p for p in written if p.suffix == ".gif"]
    assert len(gifs) == _animation_calls(path), f"one GIF per save_animation call, wrote {[p.name for p in gifs]}"
    for gif in gifs:
        _check_gif(gif)
    assert not any(cwd.iterdir()), f"wrote into the working directory despite --figures: {list(cwd.iterdir())}"
    assert _source_snapshot() == before, f"wrote into the source tree: {_source_snapshot() ^ before}"


def test_lessons_animate_enough():
    """The lessons make at least MIN_GIFS animations (the headless runs check each call writes one GIF)."""
    calls = {p.stem: _animation_calls(p) for p in LESSONS}
    assert sum(calls.values()) >= MIN_GIFS, calls


def test_lesson_under_step_pauses_after_every_step(tmp_path):
    """``--step`` waits for Enter once per step; with ``--no-figures`` nothing is written anywhere.

    Uses a lesson with still figures and animations, so neither a PNG nor a GIF may appear. Runs on
    the NumPy kernels (the headless runs above use the default backend), so both are exercised.
    """
    path = LESSONS_DIR / "03_convolution.py"
    if not path.exists():
        pytest.skip("lesson 03 is not there")
    assert _animation_calls(path) >= 1 and ".save(" in path.read_text(encoding="utf-8")
    proc = _run(path, tmp_path, "--step", "--no-figures", stdin="\n" * 200, FCN_SCRATCH_BACKEND="numpy")
    assert proc.returncode == 0, _explain(proc)
    steps = int(SUMMARY.search(proc.stdout).group(2))
    assert proc.stdout.count("press Enter") == steps >= 2
    assert "0 figures saved" in proc.stdout and not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- the framework, in-process


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


def _animated(seen):
    """A small figure whose one text changes per frame; ``seen`` records the frames it was asked to draw."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    label = ax.text(0.5, 0.5, "", ha="center", fontsize=20)

    def update(k):
        seen.append(k)
        label.set_text(f"frame {k}")

    return fig, update


def test_framework_save_animation_writes_a_looping_gif(common, tmp_path, capsys):
    import matplotlib.pyplot as plt
    from PIL import Image, ImageChops, ImageSequence

    seen = []
    lesson = common.Lesson("99_demo", "demo", argv=["--figures", str(tmp_path / "out")])
    fig, update = _animated(seen)
    lesson.save_animation(fig, update, 8, "counting", fps=4, hold=3, dpi=80)
    path = tmp_path / "out" / "99_demo" / "counting.gif"
    assert seen == list(range(8)) and lesson.saved == [path] and not plt.fignum_exists(fig.number)
    assert f"animation: {path}" in capsys.readouterr().out
    with Image.open(path) as im:
        assert im.n_frames == 8 and im.size == (240, 160) and im.info["loop"] == 0
        frames = [(f.convert("RGB"), f.info["duration"]) for f in ImageSequence.Iterator(im)]
    assert [d for _, d in frames] == [250] * 7 + [750], "fps=4 and the last frame held 3 times as long"
    assert all(ImageChops.difference(a, b).getbbox() for (a, _), (b, _) in zip(frames, frames[1:])), \
        "every frame shows its own update"
    lesson.save_animation(*_animated([]), ["a", "b"], "from_a_sequence")
    assert len(lesson.saved) == 2 and Image.open(lesson.saved[1]).n_frames == 2


def test_framework_save_animation_is_a_no_op_without_figures(common, tmp_path):
    import matplotlib.pyplot as plt

    seen = []
    quiet = common.Lesson("99_demo", "demo", argv=["--no-figures"])
    fig, update = _animated(seen)
    quiet.save_animation(fig, update, 8, "counting")
    assert seen == [] and quiet.saved == [] and not any(tmp_path.iterdir()) and not plt.fignum_exists(fig.number)


def test_sliding_window_animation_shows_the_engine_output(common):
    """One frame per output cell plus the result; an output its windows do not sum to is refused."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from fcn_scratch.functional import conv2d_forward

    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.array([[1.0, 0.0], [2.0, -1.0]]).reshape(1, 1, 2, 2)
    y, _ = conv2d_forward(x, w, stride=2)
    fig, update, frames = common.sliding_window_animation(x[0, 0], w[0, 0], y[0, 0], stride=2, final="done")
    assert frames == y.size + 1

    def texts():
        return {t.get_text() for t in fig.findobj(Text)}

    update(2)  # output cell (1, 0): x[2:4, 0:2] . w = 8*1 + 9*0 + 12*2 + 13*(-1) = 19
    assert y[0, 0, 1, 0] == 19 and "y[1,0] = 8·1 + 9·0 + 12·2 + 13·-1 = 19" in texts()
    update(frames - 1)
    assert "done" in texts() and {f"{v:g}" for v in y.ravel()} <= texts()
    plt.close(fig)
    wrong = y[0, 0].copy()
    wrong[1, 0] += 1
    with pytest.raises(ValueError, match=r"output\[1, 0\]"):
        common.sliding_window_animation(x[0, 0], w[0, 0], wrong, stride=2)
    plt.close("all")


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
        common = import_lesson_common()
        lesson = common.Lesson("99_demo", "demo")
        assert not lesson.pause and not lesson.figures
        fig = _figure()
        lesson.save(fig, "inline")
        assert not any(tmp_path.iterdir())
        display = pytest.importorskip("IPython.display")
        shown = []
        monkeypatch.setattr(display, "display", shown.append)
        seen = []
        lesson.save_animation(*_animated(seen), 8, "inline")  # an inline player, unsaved
        assert len(shown) == 1 and "<script" in shown[0].data and seen and not any(tmp_path.iterdir())
    finally:
        np.set_printoptions(**saved)
        import matplotlib.pyplot as plt

        plt.close("all")


def test_framework_avoids_interpreted_kernels_only_without_jit(common, monkeypatch, capsys):
    import numba

    from fcn_scratch import kernels

    lesson = common.Lesson("99_demo", "demo", argv=["--no-figures"])
    with kernels.use_backend("numba"):
        monkeypatch.setattr(numba.config, "DISABLE_JIT", False)
        lesson.avoid_interpreted_kernels()
        assert kernels.get_backend() == "numba" and "NUMBA_DISABLE_JIT" not in capsys.readouterr().out
        monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
        lesson.avoid_interpreted_kernels()
        assert kernels.get_backend() == "numpy" and "NumPy twins" in capsys.readouterr().out
