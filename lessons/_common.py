"""The small framework every lesson imports (``from _common import Lesson``).

A lesson is a script of ``# %%`` cells (jupytext percent format), one step per cell::

    from _common import Lesson
    lesson = Lesson("03_convolution", "Convolution through im2col and GEMM")

    # %%
    lesson.step("The output-size formula")        # prints a header (and pauses first under --step)
    print(...)                                     # what the learner should look at
    lesson.check(y.shape == (1, 4, 5, 5), "the output is 5x5")   # every step ends with a check
    lesson.close(y, y_ref, "im2col + GEMM equals the naive loops")
    lesson.save(fig, "dilation")                   # -> <figures>/03_convolution/dilation.png
                                                   # (draw_matrix(ax, a, title) writes values in cells)

    # %%
    lesson.done(summary=["im2col + one GEMM is the convolution", ...],   # what the lesson proved
                exercises=["conv2d_forward", "conv2d_backward"])         # what to practise next
                                                   # then the summary line (the test suite reads it)

Command line: ``--step`` waits for Enter after every step; ``--no-figures``
skips saving; ``--figures DIR`` puts them in ``DIR/<lesson>/`` (default
``./lesson_figures/<lesson>/`` under the working directory, never the source tree).
Opened as a notebook (under ipykernel) it takes no flags, never pauses, and
shows figures inline without saving them.
Checks use :meth:`Lesson.check` / :meth:`Lesson.close` rather than a bare
``assert`` (which ``python -O`` strips); a step without a check is an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_IN_NOTEBOOK = "ipykernel" in sys.modules
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # run from a fresh clone without `pip install -e .`
    sys.path.insert(0, str(_ROOT))

import matplotlib  # noqa: E402

if not _IN_NOTEBOOK:
    matplotlib.use("Agg")  # headless: figures are files, never windows
import numpy as np  # noqa: E402


class Lesson:
    """Step headers, ``--step`` pauses, checks, and figure saving for one lesson."""

    def __init__(self, name: str, title: str, argv=None):
        p = argparse.ArgumentParser(prog=f"python lessons/{name}.py", description=title)
        p.add_argument("--step", action="store_true", help="pause after every step until Enter")
        p.add_argument("--no-figures", action="store_true", help="do not save figures")
        p.add_argument("--figures", metavar="DIR", default="lesson_figures",
                       help="figure folder (default: ./lesson_figures); files go to DIR/<lesson>/")
        args = p.parse_args([] if argv is None and _IN_NOTEBOOK else argv)
        self.name, self.title = name, title
        # In a notebook there is no command line and no terminal to pause; figures show inline, unsaved.
        self.pause, self.figures = args.step and not _IN_NOTEBOOK, not (args.no_figures or _IN_NOTEBOOK)
        self.figure_dir = Path(args.figures).resolve() / name
        self.steps, self.checks, self.saved, self._step_checks = 0, 0, [], None
        np.set_printoptions(precision=4, suppress=True, linewidth=110)
        print(f"=== Lesson {name}: {title}")

    def _end_step(self):
        if self._step_checks == 0:
            raise RuntimeError(f"lesson {self.name}: step {self.steps} ended without a check")
        if self._step_checks is not None and self.pause:
            try:
                input("    -- press Enter for the next step --")
            except EOFError:  # stdin closed: keep going
                print()

    def step(self, title: str):
        """Start the next step: pause after the previous one (``--step``), print a header."""
        self._end_step()
        self.steps, self._step_checks = self.steps + 1, 0
        print(f"\n--- Step {self.steps}. {title}")

    def check(self, condition, claim: str):
        """Prove ``claim``: raise AssertionError unless ``condition`` is true.

        ``condition`` may be a callable: it is called, and passes if it returns a true
        value or None without raising (``lambda: np.testing.assert_array_equal(a, b)``).
        """
        if callable(condition):
            condition = condition()
            condition = True if condition is None else condition
        if not bool(condition):
            raise AssertionError(f"lesson {self.name}, step {self.steps}: FAILED: {claim}")
        self.checks += 1
        self._step_checks = (self._step_checks or 0) + 1
        print(f"    [ok] {claim}")

    def close(self, actual, desired, claim: str, rtol=1e-10, atol=1e-12):
        """Prove ``claim`` with ``np.testing.assert_allclose(actual, desired, rtol, atol)``."""
        np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, err_msg=claim)
        self.check(True, claim)

    def save(self, fig, name: str):
        """Save ``fig`` as ``<figure_dir>/<name>.png`` and print the path (no-op under --no-figures)."""
        import matplotlib.pyplot as plt

        if self.figures:
            self.figure_dir.mkdir(parents=True, exist_ok=True)
            path = self.figure_dir / f"{name}.png"
            fig.savefig(path, dpi=120, bbox_inches="tight")
            self.saved.append(path)
            print(f"    figure: {path}")
        if not _IN_NOTEBOOK:  # a notebook shows it inline instead
            plt.close(fig)

    def done(self, summary=(), exercises=()):
        """Close the last step, recap, point at the exercises, print the summary line ``tests/test_lessons.py`` reads.

        ``summary``: short sentences, one per claim the lesson proved (printed as a list).
        ``exercises``: names for ``fcn-scratch exercise check NAME`` that practise this lesson
        (``lessons/exercises/``); an empty list says the lesson has none.
        """
        self._end_step()
        self._step_checks = None
        if summary:
            print("\nWhat this lesson proved:")
            for line in summary:
                print(f"  - {line}")
        if exercises:
            print("\nPractise it (lessons/exercises/, graded by the engine):")
            for name in exercises:
                print(f"  fcn-scratch exercise check {name}")
        else:
            print("\nNo exercise goes with this lesson; `fcn-scratch exercise list` shows them all.")
        print(f"\n=== {self.name}: {self.steps} steps, {self.checks} checks passed, "
              f"{len(self.saved)} figures saved")


def draw_matrix(ax, a, title="", fmt="{:g}", cmap="viridis", fontsize=9, **imshow_kw):
    """Show a small 2-D array as coloured cells with each value written in its cell.

    ``fmt`` is a format string or a function ``value -> str`` (return "" to leave a cell blank).
    """
    a = np.asarray(a, dtype=float)
    im = ax.imshow(a, cmap=cmap, **imshow_kw)
    for (i, j), v in np.ndenumerate(a):
        r, g, b, _ = im.cmap(im.norm(v))  # dark text on light cells, light text on dark ones
        ax.text(j, i, fmt(v) if callable(fmt) else fmt.format(v), ha="center", va="center", fontsize=fontsize,
                color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    return im
