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
    lesson.save_animation(fig, update, 10, "sliding")   # -> <figures>/03_convolution/sliding.gif,
                                                   # update(t) changes the figure for frame t

    # %%
    lesson.done(summary=["im2col + one GEMM is the convolution", ...],   # what the lesson proved
                exercises=["conv2d_forward", "conv2d_backward"])         # what to practise next
                                                   # then the summary line (the test suite reads it)

Every text a learner reads is written beside its Korean translation, and ``--lang ko`` (or
``FCN_SCRATCH_LANG=ko``) shows the Korean one; English is the default::

    lesson = Lesson("04_relu_maxpool", "ReLU and max-pooling", ko="ReLU와 최대 풀링")
    lesson.step("Ceil mode", ko="올림 모드(ceil mode)")
    lesson.say(f"floor mode gives {n}", ko=f"내림 모드에서는 {n}")      # a printed line
    lesson.check(ok, "the shapes match", ko="모양이 같다")             # close() likewise
    ax.set_title(lesson.label("x: all negative", ko="x: 모두 음수"))     # any text in a figure
    print(lesson.tr("x:", ko="입력 x:"), x)                            # a piece of a printed line
    lesson.done(summary=[("ReLU passes ...", "ReLU는 ...")], exercises=[...])

Under ``--lang ko`` a text without its Korean counterpart stops the lesson
(:class:`fcn_scratch.i18n.MissingTranslation`). Figures draw Korean with a Hangul font
(:func:`fcn_scratch.i18n.use_hangul_font`); without one, ``label`` keeps the English and the
lesson prints one note saying so.

Command line: ``--step`` waits for Enter after every step; ``--no-figures``
skips saving; ``--figures DIR`` puts them in ``DIR/<lesson>/`` (default
``./lesson_figures/<lesson>/`` under the working directory, never the source tree);
``--lang en|ko`` picks the language.
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

from fcn_scratch import i18n  # noqa: E402

# The framework's own lines, in both languages.
_TEXTS = {
    "header": ("=== Lesson {name}: {title}", "=== 레슨 {name}: {title}"),
    "step": ("\n--- Step {n}. {title}", "\n--- {n}단계. {title}"),
    "pause": ("    -- press Enter for the next step --", "    -- 다음 단계로 가려면 Enter를 누르세요 --"),
    "failed": ("lesson {name}, step {n}: FAILED: {claim}", "레슨 {name}, {n}단계: 실패: {claim}"),
    "no_check": ("lesson {name}: step {n} ended without a check", "레슨 {name}: {n}단계가 검사 없이 끝났습니다"),
    "figure": ("    figure: {path}", "    그림: {path}"),
    "animation": ("    animation: {path}", "    애니메이션: {path}"),
    "proved": ("\nWhat this lesson proved:", "\n이 레슨에서 증명한 것:"),
    "practise": ("\nPractise it (lessons/exercises/, graded by the engine):",
                 "\n직접 연습해 보세요 (lessons/exercises/, 엔진이 채점합니다):"),
    "exercise": ("  fcn-scratch exercise check {name}", "  fcn-scratch exercise check {name} --lang ko"),
    "no_exercise": ("\nNo exercise goes with this lesson; `fcn-scratch exercise list` shows them all.",
                    "\n이 레슨에 딸린 연습 문제는 없습니다. 전체 목록은 `fcn-scratch exercise list --lang ko`로 볼 수 있습니다."),
    "end": ("\n=== {name}: {steps} steps, {checks} checks passed, {saved} figures saved",
            "\n=== {name}: {steps}단계, 검사 {checks}개 통과, 그림 {saved}개 저장"),
    "no_font": ("", "    참고: 한글 글꼴을 찾지 못해 그림의 글자는 영어로 둡니다 ({why})."),
}


class Lesson:
    """Step headers, ``--step`` pauses, checks, and figure saving for one lesson."""

    def __init__(self, name: str, title: str, *, ko: str | None = None, argv=None):
        p = argparse.ArgumentParser(prog=f"python lessons/{name}.py", description=title)
        p.add_argument("--step", action="store_true", help="pause after every step until Enter")
        p.add_argument("--no-figures", action="store_true", help="do not save figures")
        p.add_argument("--figures", metavar="DIR", default="lesson_figures",
                       help="figure folder (default: ./lesson_figures); files go to DIR/<lesson>/")
        p.add_argument("--lang", choices=i18n.LANGUAGES, default=None,
                       help=f"language of the texts: en (default) or ko (also ${i18n.LANG_ENV})")
        args = p.parse_args([] if argv is None and _IN_NOTEBOOK else argv)
        try:
            self.lang = i18n.resolve_language(args.lang)
        except ValueError as err:
            p.error(str(err))
        self.name, self.steps = name, 0
        self.title = self.tr(title, ko=ko)
        # In a notebook there is no command line and no terminal to pause; figures show inline, unsaved.
        self.pause, self.figures = args.step and not _IN_NOTEBOOK, not (args.no_figures or _IN_NOTEBOOK)
        self.figure_dir = Path(args.figures).resolve() / name
        self.checks, self.saved, self._step_checks = 0, [], None
        np.set_printoptions(precision=4, suppress=True, linewidth=110)
        print(self._text("header", name=name, title=self.title))
        # Figures speak Korean only if a Hangul font draws it; else they keep English, said once.
        # (Also under --no-figures: a lesson may still draw a figure, and a Korean title without a
        # Hangul font would warn of every missing glyph.)
        self.figure_lang = self.lang
        if self.lang == "ko":
            found, why = i18n.use_hangul_font()
            if not found:
                self.figure_lang = "en"
                if self.figures or _IN_NOTEBOOK:
                    print(self._text("no_font", why=why))

    def _text(self, key, **fields):
        return _TEXTS[key][self.lang == "ko"].format(**fields)

    def tr(self, en: str, ko: str | None = None) -> str:
        """``en`` or its Korean counterpart ``ko``, by ``--lang``; under ko a missing ``ko`` is an error."""
        try:
            return i18n.pick(self.lang, en, ko)
        except i18n.MissingTranslation as err:
            raise i18n.MissingTranslation(f"lesson {self.name}, step {self.steps}: {err}") from None

    def say(self, en: str, ko: str | None = None):
        """Print one narration line (``en``, or ``ko`` under ``--lang ko``)."""
        print(self.tr(en, ko=ko))

    def avoid_interpreted_kernels(self):
        """Under ``NUMBA_DISABLE_JIT=1`` the Numba kernels run as plain Python loops (minutes to hours for
        the lessons that train or run big layers): switch to their NumPy twins, which give the same
        numbers (lesson 10), and say so. Does nothing otherwise."""
        import numba

        from fcn_scratch import kernels

        if numba.config.DISABLE_JIT and kernels.get_backend() == "numba":
            kernels.set_backend("numpy")
            self.say("NUMBA_DISABLE_JIT=1: running on the NumPy twins of the kernels instead (same numbers, lesson 10)",
                     ko="NUMBA_DISABLE_JIT=1: 대신 커널(kernel)의 NumPy 쌍둥이 구현으로 실행합니다 (수치는 같습니다, 레슨 10 참고)")

    def label(self, en: str, ko: str | None = None) -> str:
        """A text drawn in a figure (title, axis label, legend, caption): like :meth:`tr`, but English
        when no Hangul font was found (the Korean text is still required)."""
        text = self.tr(en, ko=ko)
        return text if self.figure_lang == self.lang else en

    def _end_step(self):
        if self._step_checks == 0:
            raise RuntimeError(self._text("no_check", name=self.name, n=self.steps))
        if self._step_checks is not None and self.pause:
            try:
                input(self._text("pause"))
            except EOFError:  # stdin closed: keep going
                print()

    def step(self, title: str, ko: str | None = None):
        """Start the next step: pause after the previous one (``--step``), print a header."""
        self._end_step()
        self.steps, self._step_checks = self.steps + 1, 0
        print(self._text("step", n=self.steps, title=self.tr(title, ko=ko)))

    def check(self, condition, claim: str, ko: str | None = None):
        """Prove ``claim``: raise AssertionError unless ``condition`` is true.

        ``condition`` may be a callable: it is called, and passes if it returns a true
        value or None without raising (``lambda: np.testing.assert_array_equal(a, b)``).
        ``ko`` is the claim in Korean.
        """
        claim = self.tr(claim, ko=ko)
        if callable(condition):
            condition = condition()
            condition = True if condition is None else condition
        if not bool(condition):
            raise AssertionError(self._text("failed", name=self.name, n=self.steps, claim=claim))
        self.checks += 1
        self._step_checks = (self._step_checks or 0) + 1
        print(f"    [ok] {claim}")

    def close(self, actual, desired, claim: str, rtol=1e-10, atol=1e-12, ko: str | None = None):
        """Prove ``claim`` with ``np.testing.assert_allclose(actual, desired, rtol, atol)``."""
        claim = self.tr(claim, ko=ko)
        np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, err_msg=claim)
        self.check(True, claim, ko=claim)

    def save(self, fig, name: str):
        """Save ``fig`` as ``<figure_dir>/<name>.png`` and print the path (no-op under --no-figures)."""
        import matplotlib.pyplot as plt

        if self.figures:
            self.figure_dir.mkdir(parents=True, exist_ok=True)
            path = self.figure_dir / f"{name}.png"
            fig.savefig(path, dpi=120, bbox_inches="tight")
            self.saved.append(path)
            print(self._text("figure", path=path))
        if not _IN_NOTEBOOK:  # a notebook shows it inline instead
            plt.close(fig)

    def save_animation(self, fig, update, frames, name: str, fps: float = 2, hold: int = 3, dpi: int = 90):
        """Save an animation of ``fig`` as ``<figure_dir>/<name>.gif`` and print the path.

        ``update(frame)`` changes the figure for one frame (texts, colours, boxes) and ``frames`` is
        a count or a sequence of values handed to it in turn, as for ``matplotlib.animation.FuncAnimation``;
        the last frame stays ``hold`` times as long. If ``update`` returns the artists it changes (the
        same ones every frame, as FuncAnimation's ``blit``), the rest is drawn once and only those are
        redrawn per frame; if it returns None, every frame is drawn whole. A layout engine
        (``layout="constrained"``, see :func:`animation_panels`) lays out the first frame, then the
        layout is frozen, so frames do not jiggle. A no-op under ``--no-figures`` (``update`` is never
        called); in a notebook a ``FuncAnimation`` player (``to_jshtml``) is shown inline, unsaved.
        Closes ``fig``. Written with Pillow directly: ``FuncAnimation.save`` with ``PillowWriter``
        draws each frame twice, all of it, and quantizes each 10x slower (median cut) to its own palette.
        """
        import matplotlib.pyplot as plt

        frames = list(range(frames)) if isinstance(frames, int) else list(frames)
        if self.figures:
            from PIL import Image

            fig.set_dpi(dpi)
            canvas, background, images = fig.canvas, None, []
            for k, frame in enumerate(frames):
                changed = update(frame)
                if changed is None:
                    canvas.draw()
                else:
                    changed = sorted(changed, key=lambda a: a.get_zorder())
                    if background is None:  # draw the still parts once, and keep them
                        for artist in changed:
                            artist.set_animated(True)  # left out of canvas.draw()
                        canvas.draw()
                        background = canvas.copy_from_bbox(fig.bbox)
                    canvas.restore_region(background)
                    for artist in changed:
                        fig.draw_artist(artist)
                if k == 0:
                    fig.set_layout_engine(None)  # laid out once by that draw; now fixed
                images.append(np.array(canvas.buffer_rgba())[..., :3])
            # A GIF holds 256 colours: one palette for all frames (octree, 10x faster than median cut)
            # keeps colours steady and lets the GIF store only what changed (files about half the size).
            palette = Image.fromarray(np.concatenate(images)).quantize(256, method=Image.Quantize.FASTOCTREE)
            images = [Image.fromarray(a).quantize(palette=palette, dither=Image.Dither.NONE) for a in images]
            durations = [round(1000 / fps)] * len(images)
            durations[-1] *= hold
            self.figure_dir.mkdir(parents=True, exist_ok=True)
            path = self.figure_dir / f"{name}.gif"
            images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
            self.saved.append(path)
            print(self._text("animation", path=path))
        elif _IN_NOTEBOOK:
            from IPython.display import HTML, display
            from matplotlib.animation import FuncAnimation

            display(HTML(FuncAnimation(fig, update, frames=frames, interval=1000 / fps).to_jshtml(fps=fps)))
        plt.close(fig)

    def done(self, summary=(), exercises=()):
        """Close the last step, recap, point at the exercises, print the summary line ``tests/test_lessons.py`` reads.

        ``summary``: ``(english, korean)`` pairs, one short sentence per claim the lesson proved
        (printed as a list).
        ``exercises``: names for ``fcn-scratch exercise check NAME`` that practise this lesson
        (``lessons/exercises/``); an empty list says the lesson has none.
        """
        self._end_step()
        self._step_checks = None
        for pair in summary:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(f"lesson {self.name}: done(summary=...) takes (english, korean) pairs, got {pair!r}")
        if summary:
            print(self._text("proved"))
            for en, ko in summary:
                print(f"  - {self.tr(en, ko=ko)}")
        if exercises:
            print(self._text("practise"))
            for name in exercises:
                print(self._text("exercise", name=name))
        else:
            print(self._text("no_exercise"))
        print(self._text("end", name=self.name, steps=self.steps, checks=self.checks, saved=len(self.saved)))


def text_width(text: str) -> int:
    """The terminal columns ``text`` takes: two for a wide character (a Hangul syllable), one otherwise."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int, align: str = "<") -> str:
    """``text`` aligned (``"<"`` left, ``">"`` right) in ``width`` terminal columns, like ``f"{text:<{width}s}"``
    but counting columns, not characters: Korean table cells then line up with English ones."""
    fill = " " * max(width - text_width(text), 0)
    return text + fill if align == "<" else fill + text


def draw_matrix(ax, a, title="", fmt="{:g}", cmap="viridis", fontsize=9, **imshow_kw):
    """Show a small 2-D array as coloured cells with each value written in its cell.

    ``fmt`` is a format string or a function ``value -> str`` (return "" to leave a cell blank);
    NaN cells are blank. :func:`set_matrix` changes the values later (an animation frame).
    """
    a = np.asarray(a, dtype=float)
    im = ax.imshow(a, cmap=cmap, **imshow_kw)
    im.cell_texts = [ax.text(j, i, "", ha="center", va="center", fontsize=fontsize) for (i, j), _ in np.ndenumerate(a)]
    set_matrix(im, a, fmt)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    return im


def set_matrix(im, a, fmt="{:g}"):
    """Show new values (same shape) in a matrix drawn by :func:`draw_matrix`: colours, texts, text contrast.

    An animation frame changes a drawn matrix with this instead of drawing a new one. NaN cells
    (say, an output not computed yet) are blank whatever ``fmt`` says.
    """
    a = np.asarray(a, dtype=float)
    im.set_data(a)
    for t, v in zip(im.cell_texts, a.flat):
        r, g, b, _ = im.cmap(im.norm(v))  # dark text on light cells, light text on dark ones
        t.set_text("" if np.isnan(v) else fmt(v) if callable(fmt) else fmt.format(v))
        t.set_color("black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")


def cell_box(ax, row, col, rows=1, cols=1, color="tab:red", lw=2.5, inset=0.0, **kw):
    """Outline ``rows x cols`` cells of a drawn matrix, top-left cell (row, col); move it with :func:`place_box`.

    ``inset`` shrinks it on every side (in cells), so it shows inside a box drawn on the same cells.
    It is drawn over the axes' edge too (``clip_on=False``) unless ``clip_on=True`` is given.
    """
    from matplotlib.patches import Rectangle

    box = ax.add_patch(Rectangle((0, 0), cols - 2 * inset, rows - 2 * inset,
                                 **{"fill": False, "ec": color, "lw": lw, "clip_on": False, **kw}))
    box.inset = inset
    place_box(box, row, col)
    return box


def place_box(box, row, col):
    """Move a :func:`cell_box` so that its top-left cell is (row, col)."""
    box.set_xy((col - 0.5 + box.inset, row - 0.5 + box.inset))


def cell_lines(ax, shape, color="0.75"):
    """Thin lines between the cells of a drawn matrix of ``shape`` (so white cells stay visible)."""
    # Two line collections, not grid lines: ticks cost a draw each, in every frame of an animation.
    return (ax.hlines(np.arange(shape[0] + 1) - 0.5, -0.5, shape[1] - 0.5, color=color, lw=0.8),
            ax.vlines(np.arange(shape[1] + 1) - 0.5, -0.5, shape[0] - 0.5, color=color, lw=0.8))


def animation_panels(widths, figsize):
    """A figure for :meth:`Lesson.save_animation`: a row of panels (relative ``widths``) and a caption line.

    Constrained layout keeps the titles and the caption (``fig.supxlabel``) inside the frame, with a
    margin. Returns ``(fig, axes, caption)``; set the caption's text in each frame.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(widths), figsize=figsize, gridspec_kw={"width_ratios": widths},
                             layout="constrained")
    fig.get_layout_engine().set(h_pad=0.1, w_pad=0.1)
    return fig, axes, fig.supxlabel(" ", fontsize=10)  # not empty: the layout must keep room for it


def sliding_window_animation(grid, kernel, output, stride=1, dilation=1, real=None, out_name="y",
                             titles=("input", "kernel", "output"), final="", cell=0.42,
                             left_out="   (0·w terms left out)"):
    """The frames of a convolution sliding over ``grid``, in the style of Dumoulin & Visin's animations.

    ``grid`` (H, W) is the input as the convolution sees it (padding included), ``kernel`` (kh, kw)
    the weights as applied, ``output`` (Ho, Wo) the engine's result: frame t shows output cell
    ``(i, j) = divmod(t, Wo)``: its taps ``grid[i*s + u*d, j*s + v*d]`` outlined, each weight written
    small in its tap's corner, the sum of the products in the caption (those with a zero input left
    out), and ``output[i, j]`` (named ``out_name``) written into the output panel. The value written
    is the engine's; the caption's sum is checked against it here (ValueError if they differ), so a
    picture never shows a false equation. The last frame shows the whole output with the caption
    ``final``. ``real`` (H, W) bool marks the true input pixels; the others (padding, inserted zeros)
    are white with grey zeros. Returns ``(fig, update, frames)`` for :meth:`Lesson.save_animation`;
    ``update`` returns the artists it changes, so only those are redrawn per frame.
    """
    grid, kernel, output = (np.asarray(a, dtype=float) for a in (grid, kernel, output))
    real = np.ones(grid.shape, bool) if real is None else np.asarray(real, bool)
    (kh, kw), (Ho, Wo), s, d = kernel.shape, output.shape, stride, dilation
    fmt = "{:g}".format
    terms = []  # per output cell: the taps and the caption
    for i, j in np.ndindex(Ho, Wo):
        taps = [(i * s + u * d, j * s + v * d, kernel[u, v]) for u in range(kh) for v in range(kw)]
        total = sum(grid[r, c] * wt for r, c, wt in taps)
        if not np.isclose(total, output[i, j], rtol=1e-9, atol=1e-9):
            raise ValueError(f"output[{i}, {j}] = {output[i, j]} but its window sums to {total}")
        products = " + ".join(f"{fmt(grid[r, c])}·{fmt(wt)}" for r, c, wt in taps if grid[r, c] != 0) or "0"
        note = left_out if any(grid[r, c] == 0 for r, c, _ in taps) else ""
        terms.append((taps, f"{out_name}[{i},{j}] = {products} = {fmt(output[i, j])}{note}"))

    H, W = grid.shape
    fig, axes, caption = animation_panels([W, kw, Wo], (cell * (W + kw + Wo) + 1.6, cell * max(H, 4) + 1.3))
    draw_matrix(axes[0], np.where(real, grid, np.nan), titles[0], fmt=fmt, cmap="Blues",
                vmin=min(grid.min(), 0) - 0.3 * np.ptp(grid) - 1, vmax=grid.max() * 1.6 + 1)
    for (r, c), v in np.ndenumerate(grid):
        if not real[r, c]:
            axes[0].text(c, r, fmt(v), ha="center", va="center", fontsize=9, color="0.6")
    draw_matrix(axes[1], kernel, titles[1], fmt=fmt, cmap="Greens", vmin=min(kernel.min(), 0) - 1,
                vmax=kernel.max() * 1.8 + 1)
    out_im = draw_matrix(axes[2], np.full(output.shape, np.nan), titles[2], fmt=fmt, cmap="Oranges",
                         vmin=min(output.min(), 0) - 1, vmax=output.max() * 1.3 + 1)
    out_lines = [cell_lines(ax, a.shape) for ax, a in zip(axes, (grid, kernel, output))][2]
    span = cell_box(axes[0], 0, 0, d * (kh - 1) + 1, d * (kw - 1) + 1, lw=2.5)
    tap_boxes = [cell_box(axes[0], 0, 0, color="tab:red", lw=1.2, fill=True, fc=(0.84, 0.15, 0.16, 0.22))
                 for _ in range(kh * kw)]
    tap_texts = [axes[0].text(0, 0, "", ha="right", va="bottom", fontsize=7, color="darkred", fontweight="bold")
                 for _ in range(kh * kw)]
    out_box = cell_box(axes[2], 0, 0)

    # What a frame changes (drawn again over the still rest, in zorder): the output panel, boxes, texts.
    changing = [out_im, *out_im.cell_texts, *out_lines, *axes[2].spines.values(), span, out_box, *tap_boxes,
                *tap_texts, caption]

    def update(t):
        done = t >= len(terms)
        shown = output.copy() if done else np.where(np.arange(output.size).reshape(output.shape) <= t, output, np.nan)
        set_matrix(out_im, shown, fmt)
        for artist in [span, out_box, *tap_boxes, *tap_texts]:
            artist.set_visible(not done)
        if done:
            caption.set_text(final)
            return changing
        i, j = divmod(t, Wo)
        taps, text = terms[t]
        place_box(span, i * s, j * s)
        for box, label, (r, c, wt) in zip(tap_boxes, tap_texts, taps):
            place_box(box, r, c)
            label.set_position((c + 0.47, r + 0.47))
            label.set_text(f"×{fmt(wt)}")
        place_box(out_box, i, j)
        caption.set_text(text)
        return changing

    return fig, update, len(terms) + 1
