"""Graded exercises: the learner writes an engine function, the engine grades it.

Each exercise is a file ``lessons/exercises/NN_name.py`` whose functions have
exactly the signature and return convention of the engine function they
mirror (``im2col``, ``conv2d_forward``, ``maxpool2d_backward``, ...). The
grader loads the learner's file from any path, runs a list of checks on it the
way the test suite checks the engine, and prints one line per check::

    fcn-scratch exercise list [--lang ko]
    fcn-scratch exercise check conv2d_forward [--file my_conv.py] [--lang ko]

A check compares the learner's output with the engine's on fixed-seed inputs
(odd sizes, strides, padding, dilation, ceil mode, ties, ignored pixels) with
``rel_error`` (:mod:`fcn_scratch.gradcheck`) at ``TOL_EXACT = 1e-10`` in
float64, so an answer off by 1e-4 fails; a backward pass is also checked by
float64 central differences against a random upstream gradient (``TOL_SMOOTH``
1e-7, ``TOL_KINK`` 1e-6 for ReLU / max-pool with inputs away from kinks and
ties). A failing check prints the hint written for the bug it targets, or,
when the output has the wrong structure (not a tuple, wrong type, shape or
dtype, zeros for None), a hint about that structure. A NaN or inf where the
engine has another value fails, and so does a backward pass that writes into
or returns its incoming gradient ``dy``. An exception in the learner's code
(any BaseException but KeyboardInterrupt: Ctrl-C still stops the grader)
fails that check only, with its type, message and the line of the learner's
file it came from.

Every text a learner reads is written beside its Korean translation, as an
``(english, korean)`` pair: :data:`MESSAGES` for the grader's own, each
exercise's builder (``_im2col_checks``, ...) for its check titles and hints
(``Check(key, (title, title_ko), run, tol, (hint, hint_ko))``), and the
registry :data:`EXERCISES` for each exercise's one-line ask. ``lang="ko"``
(``--lang ko``, or ``FCN_SCRATCH_LANG=ko`` through the CLI) shows the Korean
ones, English is the default; a missing Korean text raises
:class:`fcn_scratch.i18n.MissingTranslation`, never falls back to English.
:func:`text_pairs` lists every pair, for the tests (Hangul, glossary terms).
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import sys
import traceback
import warnings
from dataclasses import dataclass
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np

from . import functional as F
from . import init, kernels, metrics
from .gradcheck import TOL_KINK, TOL_SMOOTH, away_from_kinks, distinct_values, rel_error
from .gradcheck import check as gradient_check
from .i18n import LANGUAGES, pick

TOL_EXACT = 1e-10  # same computation, another summation order: ~1e-16; a real bug: >> 1e-10

# The grader's own messages, each (english, korean); the exercises' titles and hints live in their builders below.
MESSAGES = {
    "unknown": ("unknown exercise {name!r}; `fcn-scratch exercise list` shows the names",
                "{name!r}라는 연습 문제는 없습니다; 이름은 `fcn-scratch exercise list --lang ko`로 볼 수 있습니다"),
    "no_folder": ("the exercise stubs are not next to the installed package (looked for {folder}); "
                  "they ship with the repository's lessons/exercises/: pass --file PATH",
                  "연습 문제 스텁 파일이 설치된 패키지 옆에 없습니다 ({folder}에서 찾았습니다); "
                  "스텁은 저장소의 lessons/exercises/에 들어 있으니 --file PATH로 파일을 지정하세요"),
    "no_file": ("{path}: no such file", "{path}: 파일이 없습니다"),
    "syntax": ("{path}, line {line}: SyntaxError: {msg}", "{path}, {line}행: SyntaxError: {msg}"),
    "import": ("{path} failed to import: {exc}", "{path} 파일을 import하지 못했습니다: {exc}"),
    "missing": ("{path} defines no function {fn}() (exercise {name} asks for {fns})",
                "{path} 파일에 {fn}() 함수가 없습니다 (연습 문제 {name}에 필요한 함수: {fns})"),
    "where_yours": ("{file}, line {line}: {code}", "{file}, {line}행: {code}"),
    "where_line": ("{file}, line {line}", "{file}, {line}행"),
    "where_not_yours": ("raised before your code ran: is the signature {signature}?",
                        "작성한 코드가 실행되기 전에 일어난 예외입니다: 함수 시그니처가 {signature}인가요?"),
    "engine_signature": ("the engine's", "엔진 함수와 같은 것"),  # the {signature} above, when none is known
    "not_tuple": ("{what} should return a tuple of {n} ({names}), got {got}",
                  "{what}: ({names}) {n}개로 된 튜플을 반환해야 합니다. 받은 값: {got}"),
    "tuple_of": ("a tuple of {n}", "원소 {n}개짜리 튜플"),  # the {got} above
    "backward_pass": ("the backward pass", "역전파"),  # a {what}
    "confusion_matrix": ("confusion matrix", "혼동 행렬"),  # a {what}
    "not_array": ("{what} should be a numpy array, got {got}", "{what}: numpy 배열이어야 합니다. 받은 값: {got}"),
    "shape": ("{what} has shape {got}, expected {want}", "{what}의 모양이 {got}입니다. 기대한 모양: {want}"),
    "dtype": ("{what} has dtype {got}, expected {want}", "{what}의 dtype이 {got}입니다. 기대한 dtype: {want}"),
    "none": ("{what} should be None, got {got}", "{what}: None이어야 합니다. 받은 값: {got}"),
    # NaN or inf where the engine has another value
    "nan": ("{what} is {got}, expected {want}", "{what}의 값이 {got}입니다. 기대한 값: {want}"),
    "not_number": ("{what} should be a number, got {got}", "{what}: 숫자여야 합니다. 받은 값: {got}"),
    "no_key": ("{what} has no key {key!r}", "{what}에 {key!r} 키가 없습니다"),
    "aliases": ("{fn}() returned its incoming gradient {arg} (or a view of it): return a new array (dy.copy()); "
                "a caller that adds into one gradient in place would silently change the other",
                "{fn}() 함수가 입력으로 받은 기울기 {arg}(또는 그 뷰)를 그대로 반환했습니다: 새 배열(dy.copy())을 "
                "반환하세요; 호출한 쪽이 한 기울기에 제자리(in place)로 더하면 다른 기울기도 모르는 사이에 바뀝니다"),
    "in_place": ("{fn}() wrote into its argument {arg}: leave the inputs untouched and return new arrays "
                 "(a skip connection hands the same array to two branches)",
                 "{fn}() 함수가 인자 {arg}에 값을 써 넣었습니다: 입력은 건드리지 말고 새 배열을 반환하세요 "
                 "(스킵 연결(skip connection)은 같은 배열을 두 갈래에 넘깁니다)"),
    "header": ("exercise {number:02d} {name} (lesson {lesson}): {path}",
               "연습 문제 {number:02d} {name} (레슨 {lesson}): {path}"),
    "pass_line": ("  pass  {title}  {error}", "  통과  {title}  {error}"),
    "fail_line": ("  FAIL  {title}  {error}", "  실패  {title}  {error}"),
    "error": ("rel error {err:.1e} {op} {tol:.0e}", "상대 오차 {err:.1e} {op} {tol:.0e}"),
    "hint": ("        hint: {hint}", "        힌트: {hint}"),
    # hints for a wrong structure, printed instead of the check's hint (written for a wrong number)
    "hint_tuple": ("return exactly a tuple of the items the stub's docstring lists, in that order: `return a, b` "
                   "builds one (a list or a generator is not a tuple).",
                   "스텁의 독스트링이 나열한 항목을 그 순서대로 담은 튜플을 반환하세요: `return a, b`가 튜플을 "
                   "만듭니다 (리스트나 제너레이터는 튜플이 아닙니다)."),
    "hint_array": ("return a numpy array (np.ndarray) with the shape and dtype the stub's docstring gives.",
                   "스텁의 독스트링에 적힌 모양과 dtype으로 numpy 배열(np.ndarray)을 반환하세요."),
    "hint_shape": ("compare your shape with the stub's docstring: the axis order (N, C, H, W), the output-size "
                   "formula, reshape vs transpose.",
                   "결과의 모양을 스텁의 독스트링과 비교하세요: 축 순서 (N, C, H, W), 출력 크기 공식, "
                   "reshape와 transpose의 차이."),
    "hint_dtype": ("keep the dtype you are given: allocate with the input's dtype (np.zeros(shape, dtype=x.dtype)), "
                   "do not cast to another (.astype) nor mix float64 arrays into float32 maths.",
                   "받은 dtype을 지키세요: 입력의 dtype으로 할당하고(np.zeros(shape, dtype=x.dtype)), 다른 dtype으로 "
                   "바꾸거나(.astype) float32 계산에 float64 배열을 섞지 마세요."),
    "hint_none": ("return None there, not zeros: the stub's docstring says when (e.g. dbias without a bias, dx "
                  "with input_grad=False).",
                  "그 자리에는 0 배열이 아니라 None을 반환하세요: 언제 그런지는 스텁의 독스트링에 있습니다 "
                  "(예: 편향이 없을 때의 dbias, input_grad=False일 때의 dx)."),
    "hint_number": ("return a number (a Python float or a NumPy scalar), not an array, a list or a tuple.",
                    "배열, 리스트, 튜플이 아니라 숫자(Python float 또는 NumPy 스칼라)를 반환하세요."),
    "hint_key": ("return a dict with every key the stub's docstring lists, spelled exactly.",
                 "스텁의 독스트링이 나열한 키를 철자 그대로 모두 담은 dict를 반환하세요."),
    "summary_pass": ("{passed} of {total} checks passed: well done.", "검사 {total}개 중 {passed}개 통과: 잘했습니다."),
    "summary_fail": ("{passed} of {total} checks passed. Fix the first failing check, then run again.",
                     "검사 {total}개 중 {passed}개 통과. 처음 실패한 검사부터 고친 뒤 다시 실행하세요."),
    "list_header": ("{n} exercises (lessons/exercises/; check one with `fcn-scratch exercise check NAME`):",
                    "연습 문제 {n}개 (lessons/exercises/; 채점은 `fcn-scratch exercise check NAME --lang ko`):"),
    "list_row": ("  {number:02d}  {name:<28} lesson {lesson}  {ask}",
                 "  {number:02d}  {name:<28} 레슨 {lesson}  {ask}"),
}

# Layout without words, the same in every language.
LAYOUT = {
    "raised": "{exc}  [{where}]",  # the learner's exception, and where it came from
    "detail": "({detail})",
    "why": "        {why}",
}


def message(key: str, lang: str = "en", **fields) -> str:
    """:data:`MESSAGES` ``[key]`` (or a :data:`LAYOUT`) in ``lang``, filled with ``fields``.

    Raises :class:`fcn_scratch.i18n.MissingTranslation` under Korean if the message has no Korean text.
    """
    template = LAYOUT[key] if key in LAYOUT else pick(_language(lang), *MESSAGES[key])
    return template.format(**fields)


def _language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    return lang


class Message:
    """A message and its fields, kept until it is shown, then written in the reader's language.

    A field may itself be a Message (``what=Message("backward_pass")``), written in the same
    language; ``message + "[1, 2]"`` appends code (an index) that every language shows as is.
    ``str()`` gives the English.
    """

    def __init__(self, key: str, suffix: str = "", /, **fields):
        if key not in MESSAGES and key not in LAYOUT:
            raise KeyError(f"no message {key!r}")
        self.key, self.suffix, self.fields = key, suffix, fields

    def text(self, lang: str = "en") -> str:
        fields = {k: v.text(lang) if isinstance(v, Message) else v for k, v in self.fields.items()}
        return message(self.key, lang, **fields) + self.suffix

    def __add__(self, suffix: str) -> Message:
        return Message(self.key, self.suffix + suffix, **self.fields)

    def __str__(self) -> str:
        return self.text("en")


class ExerciseError(Exception):
    """A usage error (unknown name, missing file, file that does not import): one line, exit 2.

    ``message``: the :class:`Message`, for the reader's language; ``str()`` is the English.
    """

    def __init__(self, message: Message):
        super().__init__(str(message))
        self.message = message


class Mismatch(Exception):
    """The learner's result has the wrong structure (type, shape, dtype, NaNs): the check fails.

    ``message``: a :class:`Message` (``str()`` is the English). ``complete=True``: the message
    says all there is (an input edited in place), so the check's own hint, written for another
    bug, is not printed after it. ``hint``: a :data:`MESSAGES` key, the hint printed instead of
    the check's (a wrong structure, where the check's maths hint would mislead).
    """

    def __init__(self, message: Message, complete=False, hint=None):
        super().__init__(str(message))
        self.message = message
        self.complete = complete
        self.hint = hint


def _pair(owner: str, field: str, value) -> None:
    """TypeError unless ``value`` is an ``(english, korean)`` pair of strings (the Korean may be empty:
    then showing it in Korean raises MissingTranslation)."""
    if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise TypeError(f"{owner}: {field} must be an (english, korean) pair of strings, got {value!r}")


@dataclass(frozen=True)
class Check:
    """One graded comparison: ``run(module)`` returns the error (or ``(error, detail)``); pass if <= ``tol``.

    ``titles``, ``hints``: ``(english, korean)``: the one-line title, and the hint printed when it fails.
    """

    key: str
    titles: tuple[str, str]
    run: Callable
    tol: float
    hints: tuple[str, str]

    def __post_init__(self):
        _pair(f"check {self.key!r}", "titles", self.titles)
        _pair(f"check {self.key!r}", "hints", self.hints)

    @property
    def title(self) -> str:
        """The English title."""
        return self.titles[0]

    @property
    def hint(self) -> str:
        """The English hint."""
        return self.hints[0]

    def title_in(self, lang: str) -> str:
        return pick(_language(lang), *self.titles)

    def hint_in(self, lang: str) -> str:
        return pick(_language(lang), *self.hints)


@dataclass(frozen=True)
class Exercise:
    number: int
    name: str
    lesson: str
    asks: tuple[str, str]  # (english, korean): the one-line task `exercise list` shows
    functions: tuple[str, ...]
    build: Callable[[], list[Check]]

    def __post_init__(self):
        _pair(f"exercise {self.name!r}", "asks", self.asks)

    @property
    def ask(self) -> str:
        """The English one-line task."""
        return self.asks[0]

    def ask_in(self, lang: str) -> str:
        return pick(_language(lang), *self.asks)

    @property
    def filename(self) -> str:
        return f"{self.number:02d}_{self.name}.py"

    def checks(self) -> list[Check]:
        return self.build()


@dataclass
class Result:
    check: Check
    passed: bool
    error: float | None  # None when the check could not compute one (an exception, a wrong shape)
    detail: str = ""
    why: str = ""  # the exception or mismatch, when there is one (in the grading's language)
    show_hint: bool = True  # False when ``why`` already says all (an input edited in place)
    hint: str = ""  # printed instead of the check's hint (a wrong structure; in the grading's language)


# --------------------------------------------------------------------------- comparing


def _call(mod, fn, *args, **kwargs):
    """Call the learner's ``fn``; fail if it wrote into one of its input arrays, or if a backward
    pass handed its incoming gradient ``dy`` back out (the engine's contract: a copy, never dy)."""
    names = list(inspect.signature(ENGINE[fn]).parameters)
    given = list(zip(names, args)) + list(kwargs.items())
    arrays = [(name, a, a.copy()) for name, a in given if isinstance(a, np.ndarray)]
    out = getattr(mod, fn)(*args, **kwargs)
    for name, a, before in arrays:
        if a.shape != before.shape or not np.array_equal(a, before, equal_nan=True):
            raise Mismatch(Message("in_place", fn=fn, arg=name), complete=True)
    if fn.endswith("_backward"):
        dy = dict(given).get("dy")
        for o in out if isinstance(out, tuple) else (out,):
            if isinstance(dy, np.ndarray) and isinstance(o, np.ndarray) and np.shares_memory(o, dy):
                raise Mismatch(Message("aliases", fn=fn, arg="dy"), complete=True)
    return out


def _unpack(out, what, names):
    if not isinstance(out, tuple) or len(out) != len(names):
        got = Message("tuple_of", n=len(out)) if isinstance(out, tuple) else type(out).__name__
        raise Mismatch(Message("not_tuple", what=what, n=len(names), names=", ".join(names), got=got),
                       hint="hint_tuple")
    return out


def _error(e) -> float:
    """An error as a float; NaN (inf - inf, inf / inf) becomes inf: a non-finite error always fails."""
    e = float(e)
    return math.inf if math.isnan(e) else e


def _worst(errors):
    """The largest of ``errors`` (floats or ``(error, detail)`` pairs), NaN counted as inf.

    Python's ``max([1e-17, nan])`` is 1e-17 (every comparison with NaN is False), so a
    plain max would drop a broken case whenever it is not the first one.
    """
    errors = [(_error(e[0]), *e[1:]) if isinstance(e, tuple) else _error(e) for e in errors]
    return max(errors, key=lambda e: e[0] if isinstance(e, tuple) else e)


def _diff(got, want, what) -> float:
    """``rel_error(got, want)`` after checking type, shape, dtype and NaN/inf positions; Mismatch if they differ.

    A wrong structure (type, shape, dtype, None) raises a Mismatch with a structural hint.
    """
    if want is None:
        if got is not None:
            raise Mismatch(Message("none", what=what, got=type(got).__name__), hint="hint_none")
        return 0.0
    if isinstance(want, dict):
        if not isinstance(got, dict):
            raise Mismatch(Message("not_tuple", what=what, n=1, names="dict", got=type(got).__name__),
                           hint="hint_key")
        errs = []
        for key, w in want.items():
            if key not in got:
                raise Mismatch(Message("no_key", what=what, key=key), hint="hint_key")
            errs.append(_diff(got[key], w, what + f"[{key!r}]"))
        return _worst(errs) if errs else 0.0
    if isinstance(want, (float, int)) and not isinstance(want, bool):
        try:
            g = float(got)
        except (TypeError, ValueError):
            raise Mismatch(Message("not_number", what=what, got=type(got).__name__),
                           hint="hint_number") from None
        if not (math.isfinite(want) and math.isfinite(g)):  # NaN, inf: the same non-finite value, or a fail
            if not (g == want or (math.isnan(want) and math.isnan(g))):
                raise Mismatch(Message("nan", what=what, got=g, want=want))
            return 0.0
        return _error(rel_error(g, want))
    want = np.asarray(want)
    if isinstance(got, list):
        got = np.asarray(got, dtype=np.float64)
        want = want.astype(np.float64)
    if not isinstance(got, np.ndarray):
        raise Mismatch(Message("not_array", what=what, got=type(got).__name__), hint="hint_array")
    if got.shape != want.shape:
        raise Mismatch(Message("shape", what=what, got=got.shape, want=want.shape), hint="hint_shape")
    if got.dtype != want.dtype:
        raise Mismatch(Message("dtype", what=what, got=got.dtype, want=want.dtype), hint="hint_dtype")
    if want.dtype.kind == "f":
        # NaN and +-inf must sit where the engine has the same value; left in, rel_error would
        # turn them into a NaN error, which a max over several cases silently drops
        odd = ~np.isfinite(want) | ~np.isfinite(got)
        same = (np.isnan(want) & np.isnan(got)) | (want == got)
        if (odd & ~same).any():
            i = tuple(int(v) for v in np.argwhere(odd & ~same)[0])
            raise Mismatch(Message("nan", what=what + f"[{', '.join(map(str, i))}]", got=got[i], want=want[i]))
        got, want = np.where(odd, 0, got), np.where(odd, 0, want)
    return _error(rel_error(got, want))


def _diffs(pairs: dict):
    """Largest error over named ``(got, want)`` pairs, and a 'name err, ...' detail."""
    errs = {name: _diff(g, w, name) for name, (g, w) in pairs.items()}
    detail = ", ".join(f"{k} {v:.1e}" for k, v in errs.items()) if len(errs) > 1 else ""
    return _worst(errs.values()), detail


def _fd(forward, backward, inputs, seed):
    """Finite differences (float64, random upstream gradient) of the learner's pair; largest error and detail."""
    errs = {k: _error(v) for k, v in gradient_check(forward, backward, inputs, seed=seed).items()}
    return _worst(errs.values()), ", ".join(f"{k} {v:.1e}" for k, v in errs.items())


def _grads(out, names, shapes):
    """Check the learner's backward result is a tuple of arrays with the inputs' shapes; return a dict."""
    out = _unpack(out, Message("backward_pass"), names)
    for name, g, shape in zip(names, out, shapes):
        if not isinstance(g, np.ndarray):
            raise Mismatch(Message("not_array", what=name, got=type(g).__name__), hint="hint_array")
        if g.shape != shape:
            raise Mismatch(Message("shape", what=name, got=g.shape, want=shape), hint="hint_shape")
    return dict(zip(names, out))


def _ints(*values):
    return tuple(int(v) for v in values)


def _conv_geoms(seed, n, *, pool=False, aniso=0, accept=lambda g: True):
    """``n + aniso`` random valid geometries ``(H, W, kh, kw, sh, sw, ph, pw, dh, dw)``: odd sizes, strides, dilation.

    The first ``n`` are free (k = 1, equal h and w values); the ``aniso`` after them are
    anisotropic (kh, kw >= 2 and H != W, sh != sw, ph != pw, dh != dw), so an answer
    that uses an h value along W (dh for dw, ...) fails. ``accept(g)``: the callers'
    extra condition on an anisotropic geometry.
    """
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n + aniso:
        H, W = rng.integers(3, 12, 2)
        kh, kw = rng.integers(1, 4, 2)
        sh, sw = rng.integers(1, 4, 2)
        dh, dw = rng.integers(1, 3, 2)
        ph, pw = (rng.integers(0, kh // 2 + 1), rng.integers(0, kw // 2 + 1)) if pool else rng.integers(0, 3, 2)
        g = _ints(H, W, kh, kw, sh, sw, ph, pw, dh, dw)
        if F.conv_output_size(H, kh, sh, ph, dh) < 1 or F.conv_output_size(W, kw, sw, pw, dw) < 1:
            continue
        if len(out) >= n and not (min(kh, kw) >= 2 and H != W and sh != sw and ph != pw and dh != dw and accept(g)):
            continue
        out.append(g)
    return out


def _rng(seed):
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- 01 im2col, 02 col2im


def _im2col_case(H, W, kh, kw, sh, sw, ph, pw, dh, dw, N=2, C=3, seed=0, dtype=np.float64):
    Ho, Wo = F.conv_output_size(H, kh, sh, ph, dh), F.conv_output_size(W, kw, sw, pw, dw)
    x = _rng(seed).standard_normal((N, C, H, W)).astype(dtype)
    return x, (kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)


def _im2col_checks():
    def case(*geom, **kw):
        def run(mod):
            x, g = _im2col_case(*geom, **kw)
            return _diff(_call(mod, "im2col", x.copy(), *g), kernels.im2col(x, *g), "cols")
        return run

    def random(mod):
        return _worst(case(*g, N=1, C=2, seed=i)(mod) for i, g in enumerate(_conv_geoms(1, 5, aniso=3)))

    order = (("row (c*kh + i)*kw + j of the columns holds tap (i, j) of channel c; column ho*Wo + wo holds "
              "output pixel (ho, wo). Pad with zeros, then read x_pad[n, c, ho*sh + i*dh, wo*sw + j*dw].",
              "열 행렬의 (c*kh + i)*kw + j번째 행에는 채널 c의 탭 (i, j)가, ho*Wo + wo번째 열에는 출력 픽셀 (ho, "
              "wo)가 들어갑니다. 0으로 패딩한 뒤 x_pad[n, c, ho*sh + i*dh, wo*sw + j*dw]를 읽으세요."))
    return [
        Check("basic", ("3x3 kernel, stride 1, padding 1, x (2, 3, 5, 7)",
                        "3x3 커널, 스트라이드 1, 패딩 1, x (2, 3, 5, 7)"), case(5, 7, 3, 3, 1, 1, 1, 1, 1, 1),
              TOL_EXACT, order),
        Check("no_pad", ("2x3 kernel, no padding, odd sizes, x (2, 3, 7, 5)",
                         "2x3 커널, 패딩 없음, 홀수 크기, x (2, 3, 7, 5)"), case(7, 5, 2, 3, 1, 1, 0, 0, 1, 1),
              TOL_EXACT, ("without padding the window must fit: Ho = H - kh + 1, Wo = W - kw + 1 (Ho, Wo are given).",
                          "패딩이 없으면 윈도우가 입력 안에 다 들어가야 합니다: Ho = H - kh + 1, Wo = W - kw + 1 "
                          "(Ho, Wo는 인자로 주어집니다).")),
        Check("stride", ("3x3 kernel, stride (2, 3), padding 1, x (2, 3, 9, 10)",
                         "3x3 커널, 스트라이드 (2, 3), 패딩 1, x (2, 3, 9, 10)"),
              case(9, 10, 3, 3, 2, 3, 1, 1, 1, 1), TOL_EXACT,
              ("output pixel (ho, wo) starts at row ho*sh, column wo*sw of the padded input: each axis has its "
               "own stride.",
               "출력 픽셀 (ho, wo)의 윈도우는 패딩한 입력의 ho*sh행, wo*sw열에서 시작합니다: 축마다 스트라이드가 "
               "따로 있습니다.")),
        Check("dilation", ("3x2 kernel, padding (2, 1), dilation (2, 3), x (2, 3, 9, 11)",
                           "3x2 커널, 패딩 (2, 1), 팽창 (2, 3), x (2, 3, 9, 11)"),
              case(9, 11, 3, 2, 1, 1, 2, 1, 2, 3), TOL_EXACT,
              ("tap (i, j) sits i*dh rows and j*dw columns from the window's corner: the dilation spaces the "
               "TAPS, the stride moves the WINDOW. Check you did not swap dh and dw.",
               "탭 (i, j)는 윈도우의 모서리에서 i*dh행, j*dw열 떨어져 있습니다: 팽창은 '탭' 사이를 벌리고, "
               "스트라이드는 '윈도우'를 옮깁니다. dh와 dw를 바꿔 쓰지 않았는지 확인하세요.")),
        Check("random", ("8 random geometries (seed 1): odd sizes, strides, padding, dilation, 3 with h != w",
                         "무작위 설정 8가지 (seed 1): 홀수 크기, 스트라이드, 패딩, 팽창, 그중 3가지는 h != w"), random,
              TOL_EXACT, order),
        Check("float32", ("float32 input gives float32 columns, x (1, 2, 4, 5)",
                          "float32 입력이면 열 행렬도 float32, x (1, 2, 4, 5)"),
              case(4, 5, 2, 2, 1, 1, 1, 0, 1, 1, N=1, C=2, dtype=np.float32), TOL_EXACT,
              ("allocate the columns with x.dtype: every layer keeps the dtype it is given.",
               "열 행렬을 x.dtype으로 할당하세요: 모든 층은 받은 dtype을 그대로 지킵니다.")),
    ]


def _col2im_checks():
    def case(H, W, kh, kw, sh, sw, ph, pw, dh, dw, N=2, C=3, seed=0):
        def run(mod):
            Ho, Wo = F.conv_output_size(H, kh, sh, ph, dh), F.conv_output_size(W, kw, sw, pw, dw)
            cols = _rng(seed).standard_normal((N, C * kh * kw, Ho * Wo))
            args = (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
            return _diff(_call(mod, "col2im", cols.copy(), *args), kernels.col2im(cols, *args), "x")
        return run

    def adjoint(mod):
        rng = _rng(7)
        N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw = 2, 2, 7, 6, 3, 2, 2, 1, 1, 1, 2, 2
        Ho, Wo = F.conv_output_size(H, kh, sh, ph, dh), F.conv_output_size(W, kw, sw, pw, dw)
        x, c = rng.standard_normal((N, C, H, W)), rng.standard_normal((N, C * kh * kw, Ho * Wo))
        back = _call(mod, "col2im", c.copy(), N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)
        _diff(back, x, "x")  # shape and dtype first
        lhs = float(np.sum(kernels.im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) * c))
        return rel_error(lhs, float(np.sum(x * back)))

    def random(mod):
        return _worst(case(*g, N=1, C=2, seed=i)(mod) for i, g in enumerate(_conv_geoms(2, 5, aniso=3)))

    return [
        Check("no_overlap", ("2x2 kernel, stride 2: every pixel read once, x (2, 3, 6, 8)",
                             "2x2 커널, 스트라이드 2: 모든 픽셀을 한 번씩 읽음, x (2, 3, 6, 8)"),
              case(6, 8, 2, 2, 2, 2, 0, 0, 1, 1), TOL_EXACT,
              ("entry (row (c*kh + i)*kw + j, column ho*Wo + wo) goes back to x[n, c, ho*sh + i*dh - ph, "
               "wo*sw + j*dw - pw].",
               "(행 (c*kh + i)*kw + j, 열 ho*Wo + wo)의 원소는 x[n, c, ho*sh + i*dh - ph, wo*sw + j*dw - pw]로 "
               "돌아갑니다.")),
        Check("overlap", ("3x3 kernel, stride 1: windows overlap, x (2, 3, 5, 7)",
                          "3x3 커널, 스트라이드 1: 윈도우가 겹침, x (2, 3, 5, 7)"),
              case(5, 7, 3, 3, 1, 1, 0, 0, 1, 1), TOL_EXACT,
              ("windows overlap: ADD into x (+= or np.add.at); a pixel read by several taps collects all their "
               "values, plain assignment keeps only the last.",
               "윈도우가 겹칩니다: x에 '더하세요'(+= 또는 np.add.at). 여러 탭이 읽은 픽셀은 그 값을 모두 모아야 "
               "하는데, 그냥 대입하면 마지막 값만 남습니다.")),
        Check("padding", ("3x3 kernel, padding 1: taps in the padding are dropped, x (2, 3, 5, 7)",
                          "3x3 커널, 패딩 1: 패딩 위의 탭은 버림, x (2, 3, 5, 7)"),
              case(5, 7, 3, 3, 1, 1, 1, 1, 1, 1), TOL_EXACT,
              ("taps that read the zero padding have no pixel to go back to: skip them (or scatter into a padded "
               "array, then cut the padding off).",
               "0 패딩을 읽은 탭은 돌아갈 픽셀이 없으니 건너뛰세요 (또는 패딩한 배열에 흩뿌리기(scatter)를 한 뒤 패딩을 "
               "잘라 내세요).")),
        Check("stride_dilation", ("3x2 kernel, stride (2, 1), padding (1, 2), dilation (2, 3), x (2, 3, 9, 8)",
                                  "3x2 커널, 스트라이드 (2, 1), 패딩 (1, 2), 팽창 (2, 3), x (2, 3, 9, 8)"),
              case(9, 8, 3, 2, 2, 1, 1, 2, 2, 3), TOL_EXACT,
              ("use the same geometry as im2col: row ho*sh + i*dh - ph, column wo*sw + j*dw - pw. Each axis has "
               "its own stride, padding and dilation: check you did not use an h value along W.",
               "im2col과 같은 위치 계산을 쓰세요: 행 ho*sh + i*dh - ph, 열 wo*sw + j*dw - pw. 축마다 스트라이드, "
               "패딩, 팽창이 따로 있으니 W 방향에 h 값을 쓰지 않았는지 확인하세요.")),
        Check("adjoint", ("dot-product test <im2col(x), c> == <x, col2im(c)>",
                          "내적 검사 <im2col(x), c> == <x, col2im(c)>"), adjoint, TOL_EXACT,
              ("col2im is the ADJOINT of im2col (it sums what im2col copied), not its inverse.",
               "col2im은 im2col의 역함수가 아니라 '수반'(adjoint)입니다 (im2col이 복사한 값을 더해 돌려놓습니다).")),
        Check("random", ("8 random geometries (seed 2): odd sizes, strides, padding, dilation, 3 with h != w",
                         "무작위 설정 8가지 (seed 2): 홀수 크기, 스트라이드, 패딩, 팽창, 그중 3가지는 h != w"), random,
              TOL_EXACT,
              ("compare with your im2col: col2im must send each entry back where im2col took it from.",
               "직접 작성한 im2col과 비교하세요: col2im은 각 원소를 im2col이 가져온 자리로 돌려보내야 합니다.")),
    ]


# --------------------------------------------------------------------------- 03, 04 conv2d


def _conv_case(x_shape, F_out, k, seed=0, bias=True):
    rng = _rng(seed)
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((F_out, x_shape[1], kh, kw))
    b = rng.standard_normal(F_out) if bias else None
    return x, w, b


def _copy(a):
    return None if a is None else a.copy()


def _conv_forward_run(x_shape, F_out, k, hyper, seed=0, bias=True):
    def run(mod):
        x, w, b = _conv_case(x_shape, F_out, k, seed, bias)
        out = _unpack(_call(mod, "conv2d_forward", x.copy(), w.copy(), _copy(b), **hyper),
                      "conv2d_forward", ("y", "cache"))
        return _diff(out[0], F.conv2d_forward(x, w, b, **hyper)[0], "y")
    return run


def _conv_forward_checks():
    def random(mod):
        errs = []
        for i, (H, W, kh, kw, sh, sw, ph, pw, dh, dw) in enumerate(_conv_geoms(3, 5, aniso=3)):
            hyper = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
            errs.append(_conv_forward_run((1, 2, H, W), 3, (kh, kw), hyper, seed=i)(mod))
        return _worst(errs)

    formula = (("y[n, f, i, j] = b[f] + sum over c, u, v of w[f, c, u, v] * x_pad[n, c, i*sh + u*dh, j*sw + v*dw]: "
                "im2col, then weight.reshape(F, -1) @ cols, then add b[f] to every pixel of channel f.",
                "y[n, f, i, j] = b[f] + (c, u, v에 대한 합) w[f, c, u, v] * x_pad[n, c, i*sh + u*dh, j*sw + v*dw]: "
                "im2col, 다음에 weight.reshape(F, -1) @ cols, 그다음 채널 f의 모든 픽셀에 b[f]를 더합니다."))
    return [
        Check("basic", ("3x3, padding 1, bias, x (2, 3, 7, 9) -> 4 channels",
                        "3x3, 패딩 1, 편향 있음, x (2, 3, 7, 9) -> 채널 4개"),
              _conv_forward_run((2, 3, 7, 9), 4, 3, dict(padding=1)), TOL_EXACT, formula),
        Check("no_bias", ("3x3, no padding, bias=None, x (2, 3, 6, 5)",
                          "3x3, 패딩 없음, bias=None, x (2, 3, 6, 5)"),
              _conv_forward_run((2, 3, 6, 5), 2, 3, {}, bias=False), TOL_EXACT,
              ("bias=None means no bias: skip the addition (do not add None or zeros of the wrong shape).",
               "bias=None은 편향이 없다는 뜻입니다: 덧셈을 건너뛰세요 (None이나 모양이 틀린 0 배열을 더하지 마세요).")),
        Check("stride", ("3x3, stride 2 on odd sizes, x (1, 2, 9, 8)",
                         "3x3, 홀수 크기에서 스트라이드 2, x (1, 2, 9, 8)"),
              _conv_forward_run((1, 2, 9, 8), 3, 3, dict(stride=2)), TOL_EXACT,
              ("Ho = floor((H + 2p - d(k-1) - 1) / s) + 1; '//' floors. Output pixel i starts at row i*s.",
               "Ho = floor((H + 2p - d(k-1) - 1) / s) + 1이고 '//'는 내림입니다. 출력 픽셀 i는 i*s행에서 시작합니다.")),
        Check("pairs", ("3x2 kernel, stride (2, 1), padding (1, 0): ints or (h, w) pairs",
                        "3x2 커널, 스트라이드 (2, 1), 패딩 (1, 0): int 또는 (h, w) 쌍"),
              _conv_forward_run((2, 3, 7, 6), 4, (3, 2), dict(stride=(2, 1), padding=(1, 0))), TOL_EXACT,
              ("stride, padding and dilation may each be an int or a pair (h, w): turn every one into a pair "
               "first, and use the h value along H, the w value along W.",
               "스트라이드, 패딩, 팽창은 각각 int이거나 (h, w) 쌍일 수 있습니다: 먼저 모두 쌍으로 바꾸고, H 방향에는 "
               "h 값을, W 방향에는 w 값을 쓰세요.")),
        Check("dilation", ("3x3, padding (2, 3), dilation (2, 3), x (2, 2, 9, 10)",
                           "3x3, 패딩 (2, 3), 팽창 (2, 3), x (2, 2, 9, 10)"),
              _conv_forward_run((2, 2, 9, 10), 3, 3, dict(padding=(2, 3), dilation=(2, 3))), TOL_EXACT,
              ("a dilated kernel spans d(k-1)+1 pixels: tap (u, v) reads row i*sh + u*dh, column j*sw + v*dw of the "
               "padded input (dh along H, dw along W).",
               "팽창한 커널은 d(k-1)+1 픽셀에 걸칩니다: 탭 (u, v)는 패딩한 입력의 i*sh + u*dh행, j*sw + v*dw열을 "
               "읽습니다 (H 방향은 dh, W 방향은 dw).")),
        Check("random", ("8 random geometries (seed 3): odd sizes, strides, padding, dilation, 3 with h != w",
                         "무작위 설정 8가지 (seed 3): 홀수 크기, 스트라이드, 패딩, 팽창, 그중 3가지는 h != w"), random,
              TOL_EXACT, formula),
    ]


def _conv_backward_grads_run(x_shape, F_out, k, hyper, seed=0, bias=True, input_grad=True):
    def run(mod):
        x, w, b = _conv_case(x_shape, F_out, k, seed, bias)
        y_ref, cache_ref = F.conv2d_forward(x, w, b, **hyper)
        g = _rng(seed + 100).standard_normal(y_ref.shape)
        _, cache = _unpack(_call(mod, "conv2d_forward", x.copy(), w.copy(), _copy(b), **hyper),
                           "conv2d_forward", ("y", "cache"))
        out = _unpack(_call(mod, "conv2d_backward", g.copy(), cache, input_grad=input_grad),
                      "conv2d_backward", ("dx", "dweight", "dbias"))
        want = F.conv2d_backward(g, cache_ref, input_grad=input_grad)
        return _diffs({n: (o, r) for n, o, r in zip(("dx", "dweight", "dbias"), out, want)})
    return run


def _conv_backward_fd_run(x_shape, F_out, k, hyper, seed=0):
    def run(mod):
        x, w, b = _conv_case(x_shape, F_out, k, seed)

        def forward():
            return _unpack(_call(mod, "conv2d_forward", x, w, b, **hyper), "conv2d_forward", ("y", "cache"))[0]

        def backward(g):
            _, cache = _call(mod, "conv2d_forward", x, w, b, **hyper)
            return _grads(_call(mod, "conv2d_backward", g, cache), ("x", "weight", "bias"), (x.shape, w.shape, b.shape))

        return _fd(forward, backward, {"x": x, "weight": w, "bias": b}, seed)
    return run


def _conv_backward_checks():
    def random(mod):
        return _worst(_conv_backward_grads_run((1, 2, H, W), 3, (kh, kw), dict(stride=(sh, sw), padding=(ph, pw),
                                                                                dilation=(dh, dw)), seed=i)(mod)
                      for i, (H, W, kh, kw, sh, sw, ph, pw, dh, dw) in enumerate(_conv_geoms(5, 1, aniso=2)))

    fix_forward = ("the backward is graded through YOUR forward and its cache: make conv2d_forward pass first.",
                   "역전파는 '여러분이 작성한' 순전파와 그 캐시를 거쳐 채점됩니다: conv2d_forward부터 통과시키세요.")
    return [
        Check("forward", ("your conv2d_forward: stride 2, padding 1, x (2, 3, 9, 8)",
                          "직접 작성한 conv2d_forward: 스트라이드 2, 패딩 1, x (2, 3, 9, 8)"),
              _conv_forward_run((2, 3, 9, 8), 4, 3, dict(stride=2, padding=1)), TOL_EXACT, fix_forward),
        Check("grads", ("dx, dweight, dbias: 3x3, padding 1, x (2, 3, 7, 9) -> 4",
                        "dx, dweight, dbias: 3x3, 패딩 1, x (2, 3, 7, 9) -> 4"),
              _conv_backward_grads_run((2, 3, 7, 9), 4, 3, dict(padding=1)), TOL_EXACT,
              ("dweight[f] = sum over n and pixels of dy[n, f, pixel] * cols[n, :, pixel]; dbias = dy summed over "
               "n, h, w; dx = col2im(weight.reshape(F, -1).T @ dy). If you wrote dx as a 'full' convolution, "
               "did you flip the kernel in both spatial axes and swap its in/out channels?",
               "dweight[f] = (n과 픽셀에 대한 합) dy[n, f, 픽셀] * cols[n, :, 픽셀], dbias = dy를 n, h, w에 대해 "
               "합한 값, dx = col2im(weight.reshape(F, -1).T @ dy)입니다. dx를 'full' 합성곱으로 썼다면 커널을 두 "
               "공간 축 모두에서 뒤집고 입력/출력 채널을 맞바꿨나요?")),
        Check("grads_stride", ("dx, dweight, dbias: stride (2, 3), padding (1, 0) on odd sizes, x (2, 2, 9, 8) -> 3",
                               "dx, dweight, dbias: 홀수 크기에서 스트라이드 (2, 3), 패딩 (1, 0), x (2, 2, 9, 8) -> 3"),
              _conv_backward_grads_run((2, 2, 9, 8), 3, 3, dict(stride=(2, 3), padding=(1, 0))), TOL_EXACT,
              ("with a stride, dx must scatter with that stride (col2im with the forward's geometry); the pixels "
               "no window read get 0.",
               "스트라이드가 있으면 dx도 그 스트라이드로 흩뿌리기(scatter)를 해야 합니다 (순전파의 설정값으로 col2im). 어느 윈도우도 "
               "읽지 않은 픽셀은 0입니다.")),
        Check("grads_dilation", ("dx, dweight, dbias: 3x2 kernel, padding (2, 1), dilation (2, 1), x (1, 3, 8, 7)",
                                 "dx, dweight, dbias: 3x2 커널, 패딩 (2, 1), 팽창 (2, 1), x (1, 3, 8, 7)"),
              _conv_backward_grads_run((1, 3, 8, 7), 2, (3, 2), dict(padding=(2, 1), dilation=(2, 1))), TOL_EXACT,
              ("keep the forward's whole geometry (kernel, stride, padding, dilation, Ho, Wo) in the cache and "
               "col2im with it.",
               "순전파의 설정값 전체(커널, 스트라이드, 패딩, 팽창, Ho, Wo)를 캐시에 두고 그 값으로 col2im 하세요.")),
        Check("options", ("bias=None gives dbias None; input_grad=False gives dx None",
                          "bias=None이면 dbias는 None, input_grad=False면 dx는 None"),
              lambda mod: _worst([
                  _conv_backward_grads_run((1, 2, 5, 6), 3, 3, dict(padding=1), bias=False)(mod)[0],
                  _conv_backward_grads_run((1, 2, 5, 6), 3, 3, dict(padding=1), input_grad=False)(mod)[0]]),
              TOL_EXACT,
              ("without bias return dbias=None; with input_grad=False return dx=None (a first layer needs no dx).",
               "편향이 없으면 dbias=None을, input_grad=False면 dx=None을 반환하세요 (첫 층에는 dx가 필요 없습니다).")),
        Check("fd", ("finite differences (float64, random upstream): stride 2, padding 1, dilation (2, 1), "
               "x (2, 2, 8, 9)",
                     "유한 차분 (float64, 무작위 상류 기울기): 스트라이드 2, 패딩 1, 팽창 (2, 1), x (2, 2, 8, 9)"),
              _conv_backward_fd_run((2, 2, 8, 9), 3, 3, dict(stride=2, padding=1, dilation=(2, 1))), TOL_SMOOTH,
              ("your backward is not the derivative of your forward: compare each tensor (the detail in brackets "
               "says which one is off).",
               "작성한 역전파가 순전파의 도함수가 아닙니다: 텐서마다 비교하세요 (괄호 안의 세부 값이 어느 텐서가 "
               "틀렸는지 알려 줍니다).")),
        Check("fd_pairs", ("finite differences: 2x3 kernel, stride (1, 2), padding (1, 0), x (2, 3, 6, 7)",
                           "유한 차분: 2x3 커널, 스트라이드 (1, 2), 패딩 (1, 0), x (2, 3, 6, 7)"),
              _conv_backward_fd_run((2, 3, 6, 7), 2, (2, 3), dict(stride=(1, 2), padding=(1, 0))), TOL_SMOOTH,
              ("check you use the h value of each pair along H and the w value along W, in forward and backward.",
               "순전파와 역전파 모두에서 각 쌍의 h 값을 H 방향에, w 값을 W 방향에 쓰는지 확인하세요.")),
        Check("random", ("dx, dweight, dbias on 3 random geometries (seed 5), 2 with h != w in every pair",
                         "무작위 설정 3가지의 dx, dweight, dbias (seed 5), 그중 2가지는 모든 쌍에서 h != w"), random,
              TOL_EXACT, ("compare the failing geometry with the checks above: each of stride, padding and dilation "
               "has an h value (along H) and a w value (along W).",
                          "실패한 설정을 위의 검사들과 비교하세요: 스트라이드, 패딩, 팽창에는 각각 h 값(H 방향)과 w "
                          "값(W 방향)이 있습니다.")),
    ]


# --------------------------------------------------------------------------- 05 relu


def _relu_checks():
    def x_with_zeros(seed, dtype=np.float64):
        x = _rng(seed).standard_normal((2, 3, 5, 7))
        x.reshape(-1)[::5] = 0.0  # exact zeros: the kink, where the subgradient is a choice
        return x.astype(dtype)

    def forward(mod):
        x = x_with_zeros(0)
        y, _ = _unpack(_call(mod, "relu_forward", x.copy()), "relu_forward", ("y", "cache"))
        return _diff(y, F.relu_forward(x)[0], "y")

    def backward(mod, dtype=np.float64):
        x = x_with_zeros(1, dtype)
        g = _rng(2).standard_normal(x.shape).astype(dtype)
        _, cache = _unpack(_call(mod, "relu_forward", x.copy()), "relu_forward", ("y", "cache"))
        return _diff(_call(mod, "relu_backward", g.copy(), cache), F.relu_backward(g, F.relu_forward(x)[1]), "dx")

    def fd(mod):
        x = away_from_kinks((2, 3, 5, 7), _rng(3))
        return _fd(lambda: _unpack(_call(mod, "relu_forward", x), "relu_forward", ("y", "cache"))[0],
                   lambda g: {"x": _call(mod, "relu_backward", g, _call(mod, "relu_forward", x)[1])}, {"x": x}, 3)

    def float32(mod):
        x = x_with_zeros(4, np.float32)
        y, _ = _unpack(_call(mod, "relu_forward", x.copy()), "relu_forward", ("y", "cache"))
        return _worst([_diff(y, F.relu_forward(x)[0], "y"), backward(mod, np.float32)])

    return [
        Check("forward", ("y = max(x, 0) on x (2, 3, 5, 7) with exact zeros",
                          "정확히 0인 원소가 있는 x (2, 3, 5, 7)에서 y = max(x, 0)"), forward, TOL_EXACT,
              ("y = np.maximum(x, 0): negative entries become 0, the others pass unchanged.",
               "y = np.maximum(x, 0): 음수 원소는 0이 되고 나머지는 그대로 통과합니다.")),
        Check("backward", ("dx on x with exact zeros (the kink)",
                           "정확히 0인 원소(꺾이는 점)가 있는 x에서 dx"), backward, TOL_EXACT,
              ("dx = dy where x > 0, else 0. At exactly x = 0 the gradient is 0 (PyTorch's choice): use x > 0, "
               "not x >= 0.",
               "x > 0인 곳에서는 dx = dy, 나머지는 0입니다. 정확히 x = 0에서는 기울기가 0입니다 (PyTorch의 선택): x "
               ">= 0이 아니라 x > 0을 쓰세요.")),
        Check("fd", ("finite differences, inputs away from the kink",
                     "유한 차분, 꺾이는 점에서 떨어진 입력"), fd, TOL_KINK,
              ("your backward is not the derivative of your forward: dx = dy * (x > 0).",
               "작성한 역전파가 순전파의 도함수가 아닙니다: dx = dy * (x > 0).")),
        Check("float32", ("float32 in, float32 out (forward and backward)",
                          "float32 입력, float32 출력 (순전파와 역전파)"), float32, TOL_EXACT,
              ("keep the dtype: np.maximum(x, 0) keeps it; multiply dy by a boolean mask, not by a float64 array.",
               "dtype을 지키세요: np.maximum(x, 0)은 dtype을 지킵니다. dy에는 float64 배열이 아니라 불리언 마스크를 "
               "곱하세요.")),
    ]


# --------------------------------------------------------------------------- 06, 07 max-pool


def _pool_x(shape, seed, kind):
    rng = _rng(seed)
    if kind == "distinct":
        return distinct_values(shape, rng)
    if kind == "negative":
        return -0.5 - np.abs(rng.standard_normal(shape))
    if kind == "ties":
        return rng.integers(0, 3, shape).astype(np.float64)  # values 0, 1, 2: most windows tie
    return rng.standard_normal(shape)


def _pool_forward_run(shape, pool, seed=0, kind="normal"):
    def run(mod):
        x = _pool_x(shape, seed, kind)
        out = _unpack(_call(mod, "maxpool2d_forward", x.copy(), **pool), "maxpool2d_forward", ("y", "cache"))
        return _diff(out[0], F.maxpool2d_forward(x, **pool)[0], "y")
    return run


def _pool_random(seed, n, aniso=3):
    """``n + aniso`` random pooling cases ``(x shape, pool kwargs, seed)``.

    The first ``n``: free geometries, every other one in ceil mode. The ``aniso`` after them:
    anisotropic (h != w in every pair) and in ceil mode, each keeping a last, partial window on
    a padded, strided axis (p > 0, s > 1), where PyTorch's rule ``(Ho-1)*s >= H + p`` needs its ``+ p``.
    """
    def partial(size, k, s, p, d):
        return p > 0 and s > 1 and F.pool_output_size(size, k, s, p, d, True) > F.pool_output_size(size, k, s, p, d)

    def accept(g):
        H, W, kh, kw, sh, sw, ph, pw, dh, dw = g
        return partial(H, kh, sh, ph, dh) or partial(W, kw, sw, pw, dw)

    cases = []
    for i, (H, W, kh, kw, sh, sw, ph, pw, dh, dw) in enumerate(_conv_geoms(seed, n, pool=True, aniso=aniso,
                                                                          accept=accept)):
        ceil = i >= n or bool(i % 2)
        if F.pool_output_size(H, kh, sh, ph, dh, ceil) >= 1 and F.pool_output_size(W, kw, sw, pw, dw, ceil) >= 1:
            cases.append(((1, 2, H, W), dict(kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                                             dilation=(dh, dw), ceil_mode=ceil), i))
    return cases


def _pool_forward_checks():
    def random(mod):
        return _worst(_pool_forward_run(shape, pool, seed)(mod) for shape, pool, seed in _pool_random(4, 6))

    return [
        Check("basic", ("2x2, stride 2, x (2, 3, 6, 8)", "2x2, 스트라이드 2, x (2, 3, 6, 8)"),
              _pool_forward_run((2, 3, 6, 8), dict(kernel_size=2, stride=2)), TOL_EXACT,
              ("y[n, c, i, j] = max over u < kh, v < kw of x_pad[n, c, i*sh + u*dh, j*sw + v*dw].",
               "y[n, c, i, j] = (u < kh, v < kw에 대한 최댓값) x_pad[n, c, i*sh + u*dh, j*sw + v*dw].")),
        Check("default_stride", ("3x3 with stride=None (= kernel_size), x (2, 2, 9, 7)",
                                 "stride=None (= kernel_size)인 3x3, x (2, 2, 9, 7)"),
              _pool_forward_run((2, 2, 9, 7), dict(kernel_size=3)), TOL_EXACT,
              ("stride=None means stride = kernel_size (PyTorch's default), not 1.",
               "stride=None이면 스트라이드는 1이 아니라 kernel_size입니다 (PyTorch의 기본값).")),
        Check("neg_inf_padding", ("3x3, stride 2, padding 1 on all-negative x (2, 2, 7, 8)",
                                  "3x3, 스트라이드 2, 패딩 1, 모두 음수인 x (2, 2, 7, 8)"),
              _pool_forward_run((2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1), kind="negative"), TOL_EXACT,
              ("pad with -inf, not 0: a zero pad beats every negative value in the border windows.",
               "0이 아니라 -inf로 패딩하세요: 0 패딩은 가장자리 윈도우의 모든 음수 값보다 큽니다.")),
        Check("ceil", ("2x2, stride 2, ceil_mode=True on odd sizes, x (1, 2, 7, 9) (FCN's pooling)",
                       "2x2, 스트라이드 2, 홀수 크기에서 ceil_mode=True, x (1, 2, 7, 9) (FCN의 풀링)"),
              _pool_forward_run((1, 2, 7, 9), dict(kernel_size=2, stride=2, ceil_mode=True)), TOL_EXACT,
              ("ceil mode: Ho = ceil((H + 2p - d(k-1) - 1) / s) + 1; the last, partial window is kept and its "
               "missing pixels count as -inf.",
               "올림 모드: Ho = ceil((H + 2p - d(k-1) - 1) / s) + 1. 마지막의 일부만 걸친 윈도우도 남기고, 그 안에 "
               "없는 픽셀은 -inf로 칩니다.")),
        Check("ceil_last_window", ("2x2, stride 2, padding 1, ceil_mode=True, x (1, 2, 7, 5): PyTorch's rule",
                                   "2x2, 스트라이드 2, 패딩 1, ceil_mode=True, x (1, 2, 7, 5): PyTorch의 규칙"),
              _pool_forward_run((1, 2, 7, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)), TOL_EXACT,
              ("in ceil mode the last window must start inside the input or the left padding: if (Ho-1)*s >= H + p, "
               "drop it (Ho -= 1). Here H = 7 gives Ho = 4, not 5.",
               "올림 모드에서 마지막 윈도우는 입력 안이나 왼쪽 패딩에서 시작해야 합니다: (Ho-1)*s >= H + p이면 그 "
               "윈도우를 버리세요 (Ho -= 1). 여기서는 H = 7이므로 Ho는 5가 아니라 4입니다.")),
        Check("ceil_padding", ("3x3, stride 2, padding 1, ceil_mode=True, x (1, 2, 6, 8): a last window the rule keeps",
                               "3x3, 스트라이드 2, 패딩 1, ceil_mode=True, x (1, 2, 6, 8): 규칙상 남는 마지막 윈도우"),
              _pool_forward_run((1, 2, 6, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)), TOL_EXACT,
              ("the rule compares with H + p, not H: drop the last window only if (Ho-1)*s >= H + p (it would start "
               "in the right/bottom padding). Here H = 6: (4-1)*2 = 6 < 7, so Ho = 4, and W = 8 gives Wo = 5.",
               "규칙은 H가 아니라 H + p와 비교합니다: (Ho-1)*s >= H + p일 때만(윈도우가 오른쪽/아래 패딩에서 시작할 "
               "때만) 마지막 윈도우를 버리세요. 여기서는 H = 6: (4-1)*2 = 6 < 7이므로 Ho = 4이고, W = 8이면 Wo = "
               "5입니다.")),
        Check("dilation", ("3x2 kernel, stride (2, 1), padding (1, 0), dilation (2, 1), x (2, 2, 9, 6)",
                           "3x2 커널, 스트라이드 (2, 1), 패딩 (1, 0), 팽창 (2, 1), x (2, 2, 9, 6)"),
              _pool_forward_run((2, 2, 9, 6), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0),
                                                   dilation=(2, 1))), TOL_EXACT,
              ("tap u of window i reads row i*sh + u*dh - ph; kernel_size, stride, padding and dilation may each be "
               "an int or an (h, w) pair.",
               "윈도우 i의 탭 u는 i*sh + u*dh - ph행을 읽습니다. kernel_size, 스트라이드, 패딩, 팽창은 각각 "
               "int이거나 (h, w) 쌍일 수 있습니다.")),
        Check("random", ("9 random geometries (seed 4), floor and ceil mode; 3 with h != w, ceil mode, padding",
                         "무작위 설정 9가지 (seed 4), 내림 모드와 올림 모드, 그중 3가지는 h != w, 올림 모드, 패딩 "
                         "있음"),
              random, TOL_EXACT,
              ("compare the failing geometry with the rules above: output size, -inf padding, stride, dilation.",
               "실패한 설정을 위의 규칙들과 비교하세요: 출력 크기, -inf 패딩, 스트라이드, 팽창.")),
    ]


def _pool_backward_run(shape, pool, seed=0, kind="distinct"):
    def run(mod):
        x = _pool_x(shape, seed, kind)
        y_ref, cache_ref = F.maxpool2d_forward(x, **pool)
        g = _rng(seed + 100).standard_normal(y_ref.shape)
        _, cache = _unpack(_call(mod, "maxpool2d_forward", x.copy(), **pool), "maxpool2d_forward", ("y", "cache"))
        return _diff(_call(mod, "maxpool2d_backward", g.copy(), cache), F.maxpool2d_backward(g, cache_ref), "dx")
    return run


def _pool_backward_checks():
    def fd(mod):
        x = distinct_values((2, 2, 7, 9), _rng(5))
        pool = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
        return _fd(lambda: _unpack(_call(mod, "maxpool2d_forward", x, **pool), "maxpool2d_forward", ("y", "c"))[0],
                   lambda g: {"x": _call(mod, "maxpool2d_backward", g, _call(mod, "maxpool2d_forward", x, **pool)[1])},
                   {"x": x}, 5)

    def random(mod):
        return _worst(_pool_backward_run(shape, pool, seed, kind="ties" if seed % 2 else "distinct")(mod)
                   for shape, pool, seed in _pool_random(6, 6))

    return [
        Check("forward", ("your maxpool2d_forward: 3x3, stride 2, padding 1, ceil mode, x (2, 2, 8, 7)",
                          "직접 작성한 maxpool2d_forward: 3x3, 스트라이드 2, 패딩 1, 올림 모드, x (2, 2, 8, 7)"),
              _pool_forward_run((2, 2, 8, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)), TOL_EXACT,
              ("the backward is graded through YOUR forward and its cache: make maxpool2d_forward pass first "
               "(exercise 06).",
               "역전파는 '여러분이 작성한' 순전파와 그 캐시를 거쳐 채점됩니다: maxpool2d_forward부터 통과시키세요 "
               "(연습 문제 06).")),
        Check("route", ("2x2, stride 2, distinct values: dy goes to each window's maximum",
                        "2x2, 스트라이드 2, 서로 다른 값: dy는 각 윈도우의 최댓값으로 간다"),
              _pool_backward_run((2, 3, 6, 8), dict(kernel_size=2, stride=2)), TOL_EXACT,
              ("each dy[n, c, i, j] goes to the ONE input pixel that won window (i, j); every other pixel gets 0. "
               "Keep the winner's position (argmax) in the cache.",
               "각 dy[n, c, i, j]는 윈도우 (i, j)에서 이긴 '단 하나의' 입력 픽셀로 갑니다. 다른 픽셀은 모두 0입니다. "
               "이긴 픽셀의 위치(argmax)를 캐시에 두세요.")),
        Check("ties", ("2x2 and 3x3 windows full of ties (values 0, 1, 2): the FIRST maximum wins",
                       "동점이 가득한 2x2, 3x3 윈도우 (값 0, 1, 2): '첫 번째' 최댓값이 이긴다"),
              lambda mod: _worst([_pool_backward_run((2, 2, 6, 8), dict(kernel_size=2, stride=2), 1, "ties")(mod),
                                  _pool_backward_run((2, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1), 2,
                                                     "ties")(mod)]),
              TOL_EXACT,
              ("on a tie the FIRST maximum in row-major window order wins (PyTorch's choice): np.argmax returns the "
               "first; when scanning, replace the winner only on a strictly greater value (>, not >=).",
               "동점이면 윈도우를 행 우선 순서로 훑을 때 '첫 번째' 최댓값이 이깁니다 (PyTorch의 선택): np.argmax는 "
               "첫 번째를 돌려줍니다. 직접 훑을 때는 엄밀히 더 큰 값에서만 승자를 바꾸세요 (>=가 아니라 >).")),
        Check("overlap", ("3x3, stride 1: overlapping windows, one pixel wins several",
                          "3x3, 스트라이드 1: 겹치는 윈도우, 한 픽셀이 여러 윈도우에서 이김"),
              _pool_backward_run((2, 2, 6, 7), dict(kernel_size=3, stride=1)), TOL_EXACT,
              ("a pixel that wins several windows collects the SUM of their gradients: use += in a loop or "
               "np.add.at; dx[idx] = dy with repeated idx keeps only one of them.",
               "여러 윈도우에서 이긴 픽셀은 그 기울기들의 '합'을 받습니다: 반복문의 +=나 np.add.at을 쓰세요. idx가 "
               "반복되면 dx[idx] = dy는 그중 하나만 남깁니다.")),
        Check("ceil_pad", ("2x2, stride 2, padding 1, ceil mode on odd sizes, x (2, 2, 7, 9)",
                           "2x2, 스트라이드 2, 패딩 1, 홀수 크기에서 올림 모드, x (2, 2, 7, 9)"),
              _pool_backward_run((2, 2, 7, 9), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)), TOL_EXACT,
              ("border windows hang over the padding, but padding is -inf, so the winner is always a real pixel: "
               "store its index in the unpadded input.",
               "가장자리 윈도우는 패딩에 걸치지만 패딩은 -inf이므로 이기는 것은 늘 실제 픽셀입니다: 그 인덱스를 "
               "패딩하지 않은 입력 기준으로 저장하세요.")),
        Check("random", ("9 random geometries (seed 6), odd ones with ties; 3 with h != w, ceil mode, padding",
                         "무작위 설정 9가지 (seed 6), seed가 홀수면 동점 포함, 그중 3가지는 h != w, 올림 모드, 패딩 "
                         "있음"), random,
              TOL_EXACT,
              ("compare the failing geometry with the rules above: argmax routing, first maximum, sums.",
               "실패한 설정을 위의 규칙들과 비교하세요: argmax로 보내기, 첫 번째 최댓값, 합.")),
        Check("fd", ("finite differences (values 0.01 apart, no near-ties): 3x3, stride 2, padding 1, ceil mode",
                     "유한 차분 (값 간격 0.01, 동점에 가까운 값 없음): 3x3, 스트라이드 2, 패딩 1, 올림 모드"),
              fd, TOL_KINK, ("your backward is not the derivative of your forward: dx is dy routed to the argmax.",
                             "작성한 역전파가 순전파의 도함수가 아닙니다: dx는 dy를 argmax로 보낸 것입니다.")),
    ]


# --------------------------------------------------------------------------- 08 transposed convolution


def _convt_case(x_shape, Cout, k, seed=0, bias=True):
    rng = _rng(seed)
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((x_shape[1], Cout, kh, kw))
    return x, w, (rng.standard_normal(Cout) if bias else None)


def _convt_forward_run(x_shape, Cout, k, hyper, seed=0, bias=True):
    def run(mod):
        x, w, b = _convt_case(x_shape, Cout, k, seed, bias)
        out = _unpack(_call(mod, "conv_transpose2d_forward", x.copy(), w.copy(), _copy(b), **hyper,
                            method="zero_insert"), "conv_transpose2d_forward", ("y", "cache"))
        return _diff(out[0], F.conv_transpose2d_forward(x, w, b, **hyper)[0], "y")
    return run


def _convt_grads_run(x_shape, Cout, k, hyper, seed=0, bias=True):
    def run(mod):
        x, w, b = _convt_case(x_shape, Cout, k, seed, bias)
        y_ref, cache_ref = F.conv_transpose2d_forward(x, w, b, **hyper)
        g = _rng(seed + 100).standard_normal(y_ref.shape)
        _, cache = _unpack(_call(mod, "conv_transpose2d_forward", x.copy(), w.copy(), _copy(b), **hyper,
                                 method="zero_insert"), "conv_transpose2d_forward", ("y", "cache"))
        out = _unpack(_call(mod, "conv_transpose2d_backward", g.copy(), cache), "conv_transpose2d_backward",
                      ("dx", "dweight", "dbias"))
        want = F.conv_transpose2d_backward(g, cache_ref)
        return _diffs({n: (o, r) for n, o, r in zip(("dx", "dweight", "dbias"), out, want)})
    return run


def _convt_checks():
    fcn = dict(stride=2, padding=1)
    odd = dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 0), dilation=2)

    def adjoint(mod):
        rng = _rng(9)
        x, w = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((2, 3, 3, 3))  # conv weight (F=2, C=3)
        y = F.conv2d_forward(x, w, None, stride=2, padding=1)[0]  # (2, 2, 5, 4)
        g = rng.standard_normal(y.shape)
        # conv_transpose with the conv's weight (read as (C_in=2, C_out=3)) is the conv's adjoint;
        # output_padding (0, 1) recovers W = 8, which the stride-2 conv maps to the same 4 columns as W = 7
        out = _unpack(_call(mod, "conv_transpose2d_forward", g.copy(), w.copy(), None, stride=2, padding=1,
                            output_padding=(0, 1), dilation=1, method="zero_insert"), "conv_transpose2d_forward",
                      ("y", "cache"))[0]
        _diff(out, x, "y")
        return rel_error(float(np.sum(y * g)), float(np.sum(x * out)))

    def fd(mod):
        x, w, b = _convt_case((2, 2, 3, 4), 3, (3, 2), seed=11)

        def forward():
            return _unpack(_call(mod, "conv_transpose2d_forward", x, w, b, **odd, method="zero_insert"),
                           "conv_transpose2d_forward", ("y", "cache"))[0]

        def backward(g):
            _, cache = _call(mod, "conv_transpose2d_forward", x, w, b, **odd, method="zero_insert")
            return _grads(_call(mod, "conv_transpose2d_backward", g, cache), ("x", "weight", "bias"),
                          (x.shape, w.shape, b.shape))

        return _fd(forward, backward, {"x": x, "weight": w, "bias": b}, 11)

    flip = (("insert s-1 zeros between pixels, pad d(k-1)-p top/left (d(k-1)-p+op bottom/right), then a stride-1 "
             "convolution with np.flip(weight, (2, 3)).transpose(1, 0, 2, 3): did you flip the kernel in both "
             "spatial axes and swap its in/out channels?",
             "픽셀 사이에 0을 s-1개씩 넣고, 위/왼쪽에 d(k-1)-p(아래/오른쪽에 d(k-1)-p+op)만큼 패딩한 뒤, 가중치 "
             "np.flip(weight, (2, 3)).transpose(1, 0, 2, 3)로 스트라이드 1 합성곱을 합니다: 커널을 두 공간 축 "
             "모두에서 뒤집고 입력/출력 채널을 맞바꿨나요?"))
    return [
        Check("fcn_upsampler", ("FCN's x2 upsampler: k4, stride 2, padding 1, bias, x (2, 3, 4, 5) -> 2 channels",
                                "FCN의 x2 업샘플링 층: k4, 스트라이드 2, 패딩 1, 편향 있음, x (2, 3, 4, 5) -> 채널 "
                                "2개"),
              _convt_forward_run((2, 3, 4, 5), 2, 4, fcn), TOL_EXACT, flip),
        Check("stride1", ("k3, stride 1, padding 0 (the 'full' convolution), no bias, x (2, 2, 5, 4)",
                          "k3, 스트라이드 1, 패딩 0 ('full' 합성곱), 편향 없음, x (2, 2, 5, 4)"),
              _convt_forward_run((2, 2, 5, 4), 3, 3, {}, bias=False), TOL_EXACT,
              ("with stride 1 no zeros are inserted: pad k-1 on every side; the kernel must still be flipped.",
               "스트라이드 1이면 0을 넣지 않습니다: 모든 변에 k-1만큼 패딩하세요. 그래도 커널은 뒤집어야 합니다.")),
        Check("output_padding", ("k3, stride 3, padding 1, output_padding 2, x (2, 2, 3, 4)",
                                 "k3, 스트라이드 3, 패딩 1, output_padding 2, x (2, 2, 3, 4)"),
              _convt_forward_run((2, 2, 3, 4), 3, 3, dict(stride=3, padding=1, output_padding=2)), TOL_EXACT,
              ("output_padding adds op rows/columns at the bottom/right only: pad d(k-1)-p top/left and "
               "d(k-1)-p+op bottom/right. Ho = (H-1)s - 2p + d(k-1) + op + 1.",
               "output_padding은 아래/오른쪽에만 op개의 행/열을 더합니다: 위/왼쪽에는 d(k-1)-p, 아래/오른쪽에는 "
               "d(k-1)-p+op만큼 패딩하세요. Ho = (H-1)s - 2p + d(k-1) + op + 1.")),
        Check("crop", ("k3, stride 3, padding 3: d(k-1)-p < 0 crops, x (1, 2, 4, 5)",
                       "k3, 스트라이드 3, 패딩 3: d(k-1)-p < 0이면 크롭, x (1, 2, 4, 5)"),
              _convt_forward_run((1, 2, 4, 5), 2, 3, dict(stride=3, padding=3)), TOL_EXACT,
              ("when p > d(k-1) the pad d(k-1)-p is negative: cut that many rows/columns off instead of padding.",
               "p > d(k-1)이면 패딩량 d(k-1)-p가 음수입니다: 패딩하는 대신 그만큼 행/열을 잘라 내세요.")),
        Check("dilation_pairs", ("3x2 kernel, stride (2, 3), padding (0, 1), output_padding (1, 0), dilation 2",
                                 "3x2 커널, 스트라이드 (2, 3), 패딩 (0, 1), output_padding (1, 0), 팽창 2"),
              _convt_forward_run((2, 2, 3, 4), 3, (3, 2), odd), TOL_EXACT,
              ("with dilation d: pad d(k-1)-p, and run the stride-1 convolution with dilation d; each of stride, "
               "padding, output_padding, dilation may be an int or an (h, w) pair.",
               "팽창이 d이면 d(k-1)-p만큼 패딩하고, 스트라이드 1 합성곱을 팽창 d로 실행하세요. 스트라이드, 패딩, "
               "output_padding, 팽창은 각각 int이거나 (h, w) 쌍일 수 있습니다.")),
        Check("adjoint", ("dot-product test <conv(x), g> == <conv_transpose(g), x>",
                          "내적 검사 <conv(x), g> == <conv_transpose(g), x>"), adjoint, TOL_EXACT,
              ("the transposed convolution is the adjoint of the convolution with the same weight: " + flip[0],
               "전치 합성곱은 같은 가중치를 쓰는 합성곱의 수반입니다: " + flip[1])),
        Check("grads", ("dx, dweight, dbias of FCN's upsampler (k4, s2, p1) and of the dilated case",
                        "FCN 업샘플링 층(k4, s2, p1)과 팽창한 경우의 dx, dweight, dbias"),
              lambda mod: _worst([_convt_grads_run((2, 3, 4, 5), 2, 4, fcn)(mod),
                                  _convt_grads_run((2, 2, 3, 4), 3, (3, 2), odd, seed=1)(mod)]),
              TOL_EXACT,
              ("go back through the stride-1 convolution (conv2d_backward), the padding (cut it off; zeros where "
               "it cropped) and the zero insertion (keep every s-th pixel). Flip dweight back and swap its "
               "channels back: (C_in, C_out, kh, kw).",
               "스트라이드 1 합성곱(conv2d_backward), 패딩(잘라 내고, 크롭했던 곳은 0), 0 삽입(s번째 픽셀마다 "
               "남기기)을 거꾸로 거쳐 가세요. dweight는 다시 뒤집고 채널도 원래대로 바꿔 (C_in, C_out, kh, kw)로 "
               "만드세요.")),
        Check("no_bias_grads", ("dx, dweight, dbias with bias=None (k3, stride 2, no padding): dbias is None",
                                "bias=None일 때 dx, dweight, dbias (k3, 스트라이드 2, 패딩 없음): dbias는 None"),
              _convt_grads_run((1, 2, 3, 4), 3, 3, dict(stride=2), seed=2, bias=False), TOL_EXACT,
              ("without a bias (bias=None) the backward returns dbias=None; dx and dweight as with a bias.",
               "편향이 없으면(bias=None) 역전파는 dbias=None을 반환합니다. dx와 dweight는 편향이 있을 때와 같습니다.")),
        Check("fd", ("finite differences (float64, random upstream): the dilated case",
                     "유한 차분 (float64, 무작위 상류 기울기): 팽창한 경우"), fd, TOL_SMOOTH,
              ("your backward is not the derivative of your forward: the detail in brackets says which tensor.",
               "작성한 역전파가 순전파의 도함수가 아닙니다: 괄호 안의 세부 값이 어느 텐서인지 알려 줍니다.")),
    ]


# --------------------------------------------------------------------------- 09 bilinear kernel


def _bilinear_checks():
    def kernel(*ks, dtype=None):
        def run(mod):
            errs = []
            for k in ks:
                got = _call(mod, "bilinear_kernel", k) if dtype is None else _call(mod, "bilinear_kernel", k, dtype)
                want = init.bilinear_kernel(k) if dtype is None else init.bilinear_kernel(k, dtype)
                errs.append(_diff(got, want, f"bilinear_kernel({k})"))
            return _worst(errs)
        return run

    def weight(mod):
        errs = [_diff(_call(mod, "bilinear_weight", 3, 3, 4), init.bilinear_weight(3, 3, 4),
                      "bilinear_weight(3, 3, 4)"),
                _diff(_call(mod, "bilinear_weight", 2, 3, (4, 3), np.float64),
                      init.bilinear_weight(2, 3, (4, 3), np.float64), "bilinear_weight(2, 3, (4, 3), float64)")]
        return _worst(errs)

    return [
        Check("k4", ("k = 4: taps 1/4, 3/4, 3/4, 1/4 (FCN's x2 upsampler)",
                     "k = 4: 탭 1/4, 3/4, 3/4, 1/4 (FCN의 x2 업샘플링 층)"), kernel(4), TOL_EXACT,
              ("f = ceil(k/2), c = f - 0.5 for even k; taps t[i] = 1 - |i - c| / f; kernel = np.outer(t, t).",
               "f = ceil(k/2), 짝수 k이면 c = f - 0.5, 탭 t[i] = 1 - |i - c| / f, 커널 = np.outer(t, t).")),
        Check("k3_odd", ("k = 3 and 5: odd k, a tap sits on the centre",
                         "k = 3, 5: 홀수 k, 탭 하나가 중심에 놓임"), kernel(3, 5), TOL_EXACT,
              ("for odd k the centre is c = f - 1 (a tap sits exactly on it, weight 1): k = 3 gives 1/2, 1, 1/2.",
               "홀수 k의 중심은 c = f - 1입니다 (탭 하나가 정확히 그 위에 놓이고 가중치는 1): k = 3이면 1/2, 1, "
               "1/2입니다.")),
        Check("sizes", ("k = 1, 2, 16 (FCN-8s's x8), 64 (FCN-32s's x32)",
                        "k = 1, 2, 16 (FCN-8s의 x8), 64 (FCN-32s의 x32)"), kernel(1, 2, 16, 64), TOL_EXACT,
              ("the same formula for every k: f = ceil(k/2); k = 1 is the single tap 1.",
               "모든 k에 같은 공식입니다: f = ceil(k/2). k = 1은 값이 1인 탭 하나입니다.")),
        Check("dtype", ("dtype=np.float32 gives float32 (default float64)",
                        "dtype=np.float32이면 float32 (기본값 float64)"), kernel(4, 3, dtype=np.float32),
              TOL_EXACT, ("build the taps in float64, then return .astype(dtype).",
                          "탭을 float64로 만든 뒤 .astype(dtype)으로 반환하세요.")),
        Check("weight", ("bilinear_weight: (C_in, C_out, kh, kw), kernel on the channel diagonal only",
                         "bilinear_weight: (C_in, C_out, kh, kw), 커널은 채널 대각선에만"), weight,
              TOL_EXACT,
              ("np.zeros((in_channels, out_channels, kh, kw), dtype) with w[c, c] = the kernel for c < min(C_in, "
               "C_out); k may be an int or a pair (kh, kw) (then the outer product of two different taps); "
               "default dtype float32.",
               "np.zeros((in_channels, out_channels, kh, kw), dtype)에서 c < min(C_in, C_out)인 c마다 w[c, c] = "
               "커널. k는 int이거나 쌍 (kh, kw)일 수 있습니다 (그때는 서로 다른 두 탭의 외적). 기본 dtype은 "
               "float32입니다.")),
    ]


# --------------------------------------------------------------------------- 10 softmax cross-entropy


def _ce_case(seed, ignore=0.0, scale=3.0, ignore_index=255, shape=(2, 4, 5, 6)):
    rng = _rng(seed)
    logits = rng.standard_normal(shape) * scale
    labels = rng.integers(0, shape[1], (shape[0], *shape[2:]))
    labels[rng.random(labels.shape) < ignore] = ignore_index
    return logits, labels


def _ce_checks():
    def loss(seed, **kw):
        ignore_index = kw.get("ignore_index", 255)

        def run(mod):
            logits, labels = _ce_case(seed, **kw)
            out = _unpack(_call(mod, "softmax_cross_entropy_forward", logits.copy(), labels.copy(), ignore_index),
                          "softmax_cross_entropy_forward", ("loss", "cache"))
            return _diff(out[0], F.softmax_cross_entropy_forward(logits, labels, ignore_index)[0], "loss")
        return run

    def grad(seed, dloss, **kw):
        def run(mod):
            logits, labels = _ce_case(seed, **kw)
            _, cache = _unpack(_call(mod, "softmax_cross_entropy_forward", logits.copy(), labels.copy()),
                               "softmax_cross_entropy_forward", ("loss", "cache"))
            got = _call(mod, "softmax_cross_entropy_backward", cache, dloss)
            want = F.softmax_cross_entropy_backward(F.softmax_cross_entropy_forward(logits, labels)[1], dloss)
            return _diff(got, want, "dlogits")
        return run

    def all_ignored(mod):
        return _worst([loss(12, ignore=1.0)(mod), grad(12, 1.0, ignore=1.0)(mod)])

    def fd(mod):
        logits, labels = _ce_case(13, ignore=0.3)

        def forward():
            return _unpack(_call(mod, "softmax_cross_entropy_forward", logits, labels),
                           "softmax_cross_entropy_forward", ("loss", "cache"))[0]

        def backward(g):
            _, cache = _call(mod, "softmax_cross_entropy_forward", logits, labels)
            return {"logits": _call(mod, "softmax_cross_entropy_backward", cache, float(g))}

        return _fd(forward, backward, {"logits": logits}, 13)

    return [
        Check("loss", ("loss on logits (2, 4, 5, 6), every pixel labelled",
                       "로짓 (2, 4, 5, 6)의 손실, 모든 픽셀에 레이블 있음"), loss(10), TOL_EXACT,
              ("loss = mean over pixels of log(sum_c exp(z_c)) - z_label; pick the label's logit with "
               "np.take_along_axis(z, labels[:, None], axis=1).",
               "손실 = 픽셀에 대한 평균 [log(sum_c exp(z_c)) - z_label]. 레이블의 로짓은 np.take_along_axis(z, "
               "labels[:, None], axis=1)로 고르세요.")),
        Check("ignore", ("30% of the pixels labelled 255 (ignore_index)",
                         "픽셀의 30%가 레이블 255 (ignore_index)"), loss(11, ignore=0.3), TOL_EXACT,
              ("ignored pixels give no loss: sum over the valid pixels only and divide by the number of NON-ignored "
               "pixels, not by N*H*W.",
               "무시한 픽셀은 손실에 들어가지 않습니다: 유효한 픽셀만 더하고, N*H*W가 아니라 무시하지 '않은' 픽셀 "
               "수로 나누세요.")),
        Check("stable", ("logits scaled to about +-3000",
                         "약 +-3000까지 키운 로짓"), loss(14, scale=1000.0), TOL_EXACT,
              ("subtract each pixel's max logit before exp (log-sum-exp is unchanged): exp(1000) overflows to inf.",
               "exp 전에 픽셀마다 가장 큰 로짓을 빼세요 (log-sum-exp는 변하지 않습니다): exp(1000)은 "
               "넘쳐서(overflow) inf가 됩니다.")),
        Check("all_ignored", ("every pixel ignored: loss 0 and a zero gradient",
                              "모든 픽셀 무시: 손실 0, 기울기 0"), all_ignored, TOL_EXACT,
              ("no valid pixel (V = 0): return loss 0.0 and dlogits of zeros, not 0/0 = NaN.",
               "유효한 픽셀이 없으면(V = 0) 0/0 = NaN이 아니라 손실 0.0과 0으로 채운 dlogits를 반환하세요.")),
        Check("ignore_index", ("ignore_index=-1 instead of 255",
                               "255 대신 ignore_index=-1"), loss(15, ignore=0.3, ignore_index=-1), TOL_EXACT,
              ("use the ignore_index argument, not a hard-coded 255.",
               "코드에 박아 넣은 255가 아니라 ignore_index 인자를 쓰세요.")),
        Check("grad", ("dlogits with ignored pixels and dloss = 2.5",
                       "무시한 픽셀이 있고 dloss = 2.5일 때의 dlogits"), grad(16, 2.5, ignore=0.3), TOL_EXACT,
              ("dlogits = dloss * (softmax(z) - onehot(label)) / V on valid pixels, 0 on ignored ones "
               "(V = the number of valid pixels).",
               "유효한 픽셀에서는 dlogits = dloss * (softmax(z) - onehot(label)) / V, 무시한 픽셀에서는 0입니다 "
               "(onehot(label)은 레이블의 원-핫 벡터, V는 유효한 픽셀 수).")),
        Check("fd", ("finite differences (float64, random upstream scalar), 30% ignored",
                     "유한 차분 (float64, 무작위 상류 스칼라), 30% 무시"), fd, TOL_SMOOTH,
              ("your backward is not the derivative of your loss: check the 1/V factor and dloss.",
               "작성한 역전파가 손실의 도함수가 아닙니다: 1/V 인자와 dloss를 확인하세요.")),
    ]


# --------------------------------------------------------------------------- 11 FCN-8s skip fusion


def _fusion_checks():
    def forward(up_shape, skip_shape, seed=0):
        def run(mod):
            rng = _rng(seed)
            up, skip = rng.standard_normal(up_shape), rng.standard_normal(skip_shape)
            out = _unpack(_call(mod, "crop_add_forward", up.copy(), skip.copy()), "crop_add_forward", ("y", "cache"))
            return _diff(out[0], F.crop_add_forward(up, skip)[0], "y")
        return run

    def backward(mod):
        errs = []
        for seed, (up_shape, skip_shape) in enumerate((((2, 3, 6, 8), (2, 3, 5, 7)), ((1, 2, 10, 12), (1, 2, 7, 9)),
                                                        ((2, 3, 4, 6), (2, 3, 4, 6)))):
            rng = _rng(20 + seed)
            up, skip = rng.standard_normal(up_shape), rng.standard_normal(skip_shape)
            g = rng.standard_normal(skip_shape)
            _, cache = _unpack(_call(mod, "crop_add_forward", up.copy(), skip.copy()), "crop_add_forward",
                               ("y", "cache"))
            out = _unpack(_call(mod, "crop_add_backward", g.copy(), cache), "crop_add_backward", ("d_up", "d_skip"))
            want = F.crop_add_backward(g, F.crop_add_forward(up, skip)[1])
            errs.append(_diffs({n: (o, r) for n, o, r in zip(("d_up", "d_skip"), out, want)}))
        return _worst(errs)

    def fd(mod):
        rng = _rng(22)
        up, skip = rng.standard_normal((2, 3, 6, 8)), rng.standard_normal((2, 3, 5, 7))

        def fwd():
            return _unpack(_call(mod, "crop_add_forward", up, skip), "crop_add_forward", ("y", "cache"))[0]

        def bwd(g):
            return _grads(_call(mod, "crop_add_backward", g, _call(mod, "crop_add_forward", up, skip)[1]),
                          ("up", "skip"), (up.shape, skip.shape))

        return _fd(fwd, bwd, {"up": up, "skip": skip}, 22)

    def fcn8s(mod):
        from .models import FCN8s

        rng = _rng(23)
        model = FCN8s(3, widths=(2, 3, 4, 5, 6), convs_per_block=(1, 1, 1, 1, 1), fc_channels=8,
                      dtype=np.float64, rng=rng).eval()
        for layer in (model.score_fr, model.score_pool4_fr, model.score_pool3_fr):  # zero-initialised: make them count
            layer.params["weight"][...] = rng.standard_normal(layer.weight.shape)
        x = rng.standard_normal((1, 3, 37, 45))
        want = model.forward(x)
        h = x
        for b in range(1, 6):  # the model's own layers, only the two fusions are yours
            h = model._block_forward(b, h)
            if b == 3:
                score_pool3 = model.score_pool3_fr.forward(h)
            if b == 4:
                score_pool4 = model.score_pool4_fr.forward(h)
        score = model._head_forward(h)
        h = _unpack(_call(mod, "crop_add_forward", model.upscore2.forward(score), score_pool4),
                    "crop_add_forward", ("y", "cache"))[0]
        h = _unpack(_call(mod, "crop_add_forward", model.upscore2_pool4.forward(h), score_pool3),
                    "crop_add_forward", ("y", "cache"))[0]
        got = model.crop_out.forward(model.upscore8.forward(h), x.shape[2:])
        return _diff(got, want, "logits")

    top_left = (("keep the TOP-LEFT corner (offset 0), not the centre: up[:, :, :h, :w]. The surplus rows/columns "
                 "come from ceil-mode pooling's last, partial window, at the bottom/right.",
                 "가운데가 아니라 '왼쪽 위' 모서리(오프셋 0)를 남기세요: up[:, :, :h, :w]. 남는 행/열은 올림 모드 "
                 "풀링의 마지막, 일부만 걸친 윈도우에서 생기며 아래/오른쪽에 있습니다."))
    return [
        Check("same_size", ("up and skip of the same size (H, W multiples of 32): y = up + skip",
                            "크기가 같은 up과 skip (H, W가 32의 배수): y = up + skip"),
              forward((2, 3, 4, 6), (2, 3, 4, 6)), TOL_EXACT,
              ("y = up[:, :, :h, :w] + skip with (h, w) = skip.shape[2:]; with equal sizes nothing is cut.",
               "(h, w) = skip.shape[2:]일 때 y = up[:, :, :h, :w] + skip입니다. 크기가 같으면 아무것도 잘리지 "
               "않습니다.")),
        Check("odd", ("up (2, 3, 6, 8) onto skip (2, 3, 5, 7): one surplus row and column (a 37x45 input's pool4)",
                      "up (2, 3, 6, 8)을 skip (2, 3, 5, 7)에 더하기: 행과 열이 하나씩 남음 (37x45 입력의 pool4)"),
              forward((2, 3, 6, 8), (2, 3, 5, 7), 1), TOL_EXACT, top_left),
        Check("bigger", ("up (1, 2, 10, 12) onto skip (1, 2, 7, 9): several surplus rows and columns",
                         "up (1, 2, 10, 12)를 skip (1, 2, 7, 9)에 더하기: 행과 열이 여럿 남음"),
              forward((1, 2, 10, 12), (1, 2, 7, 9), 2), TOL_EXACT, top_left),
        Check("backward", ("d_up, d_skip for the three cases above: new arrays, never dy itself",
                           "위 세 경우의 d_up, d_skip: dy 자체가 아닌 새 배열"), backward, TOL_EXACT,
              ("d_skip = dy (a copy); d_up has up's shape: dy in the kept top-left window, 0 in the cropped-off "
               "rows and columns.",
               "d_skip = dy (복사본). d_up은 up의 모양이고, 남긴 왼쪽 위 윈도우에는 dy가, 크롭으로 잘린 행과 열에는 "
               "0이 들어갑니다.")),
        Check("fd", ("finite differences (float64, random upstream)",
                     "유한 차분 (float64, 무작위 상류 기울기)"), fd, TOL_SMOOTH,
              ("your backward is not the derivative of your forward: the detail in brackets says which tensor.",
               "작성한 역전파가 순전파의 도함수가 아닙니다: 괄호 안의 세부 값이 어느 텐서인지 알려 줍니다.")),
        Check("fcn8s", ("a tiny FCN-8s on a 37x45 input, both fusions yours: the model's logits",
                        "37x45 입력의 작은 FCN-8s, 두 융합 모두 직접 작성한 것: 모델의 로짓"), fcn8s, TOL_EXACT,
              top_left),
    ]


# --------------------------------------------------------------------------- 12 mean IoU


def _iou_case(seed, K=4, shape=(2, 5, 6), ignore=0.0, absent=None, ignore_index=255):
    rng = _rng(seed)
    truth = rng.integers(0, K, shape)
    pred = np.where(rng.random(shape) < 0.6, truth, rng.integers(0, K, shape))  # mostly right
    if absent is not None:  # a class nobody has: neither truth nor prediction
        truth[truth == absent] = (absent + 1) % K
        pred[pred == absent] = (absent + 1) % K
    truth[rng.random(shape) < ignore] = ignore_index
    return truth, pred


def _iou_checks():
    def cm(seed, **kw):
        ignore_index = kw.get("ignore_index", 255)

        def run(mod):
            truth, pred = _iou_case(seed, **kw)
            K = kw.get("K", 4)
            got = _call(mod, "confusion_matrix", truth.copy(), pred.copy(), K, ignore_index)
            return _diff(got, metrics.confusion_matrix(truth, pred, K, ignore_index), Message("confusion_matrix"))
        return run

    def scores(keys, matrices):
        def run(mod):
            errs = []
            for m in matrices:
                m = np.asarray(m, dtype=np.int64)
                want = metrics.scores(m)
                errs.append(_diff(_call(mod, "scores", m.copy()), {k: want[k] for k in keys}, "scores(cm)"))
            return _worst(errs)
        return run

    rng = _rng(30)
    dense = [metrics.confusion_matrix(*_iou_case(31 + i, K=k), k) for i, k in enumerate((3, 4, 6))]
    absent = [metrics.confusion_matrix(*_iou_case(34, K=5, absent=2), 5),
              np.array([[5, 1, 0], [2, 0, 0], [0, 0, 0]])]  # class 1 only wrong, class 2 absent
    lopsided = [rng.integers(0, 50, (4, 4)) * np.array([1, 5, 20, 1])[:, None]]
    return [
        Check("cm", ("confusion matrix of (2, 5, 6) label maps, 4 classes",
                     "(2, 5, 6) 레이블 맵의 혼동 행렬, 클래스 4개"), cm(40), TOL_EXACT,
              ("cm[t, p] counts pixels of true class t predicted as p (rows = truth), int64: "
               "np.bincount(K * truth + pred, minlength=K*K).reshape(K, K).",
               "cm[t, p]는 정답 클래스가 t인데 p로 예측된 픽셀 수입니다 (행 = 정답), int64: np.bincount(K * truth + "
               "pred, minlength=K*K).reshape(K, K).")),
        Check("cm_ignore", ("30% of the truth is 255 (ignore_index)",
                            "정답의 30%가 255 (ignore_index)"), cm(41, ignore=0.3), TOL_EXACT,
              ("drop the pixels whose TRUTH is ignore_index before counting (whatever the prediction there).",
               "세기 전에 '정답'이 ignore_index인 픽셀을 빼세요 (그 자리의 예측이 무엇이든).")),
        Check("cm_ignore_index", ("ignore_index=-1 instead of 255",
                                  "255 대신 ignore_index=-1"), cm(42, ignore=0.3, ignore_index=-1), TOL_EXACT,
              ("use the ignore_index argument, not a hard-coded 255.",
               "코드에 박아 넣은 255가 아니라 ignore_index 인자를 쓰세요.")),
        Check("pixel_accuracy", ("pixel_accuracy = sum(diag) / sum(cm), 3 matrices",
                                 "pixel_accuracy = sum(diag) / sum(cm), 행렬 3개"), scores(["pixel_accuracy"], dense),
              TOL_EXACT, ("pixel accuracy is the trace over the total: np.diag(cm).sum() / cm.sum().",
                          "픽셀 정확도는 대각합을 전체 합으로 나눈 값입니다: np.diag(cm).sum() / cm.sum().")),
        Check("mean_iou", ("mean_iou and per_class_iou, every class present",
                           "mean_iou와 per_class_iou, 모든 클래스가 있음"), scores(["mean_iou", "per_class_iou"],
                                                                                  dense), TOL_EXACT,
              ("IoU_i = n_ii / (t_i + p_i - n_ii) with t = row sums (truth) and p = column sums (prediction); "
               "mean IoU is their mean.",
               "IoU_i = n_ii / (t_i + p_i - n_ii), 여기서 t는 행 합(정답), p는 열 합(예측)입니다. 평균 IoU는 이들의 "
               "평균입니다.")),
        Check("absent_class", ("mean_iou with a class absent from truth and prediction (NaN IoU)",
                               "정답과 예측 모두에 없는 클래스가 있을 때의 mean_iou (IoU가 NaN)"),
              scores(["mean_iou", "per_class_iou"], absent), TOL_EXACT,
              ("a class absent from both truth and prediction has IoU 0/0 = NaN: leave it out of the mean "
               "(np.nanmean), do not count it as 0.",
               "정답과 예측 어디에도 없는 클래스의 IoU는 0/0 = NaN입니다: 0으로 치지 말고 평균에서 빼세요 "
               "(np.nanmean).")),
        Check("accuracy", ("mean_accuracy and per_class_accuracy (NaN for a class absent from the truth)",
                           "mean_accuracy와 per_class_accuracy (정답에 없는 클래스는 NaN)"),
              scores(["mean_accuracy", "per_class_accuracy"], dense + absent), TOL_EXACT,
              ("per-class accuracy n_ii / t_i (NaN when t_i = 0); mean accuracy is its nanmean.",
               "클래스별 정확도는 n_ii / t_i (t_i = 0이면 NaN)이고, 평균 정확도는 그 nanmean입니다.")),
        Check("fw_iou", ("fw_iou on unbalanced classes",
                         "불균형한 클래스에서의 fw_iou"), scores(["fw_iou"], lopsided + absent), TOL_EXACT,
              ("frequency-weighted IoU = sum_i (t_i / total) * IoU_i over the classes present in the truth.",
               "빈도 가중치를 준 IoU = 정답에 있는 클래스들에 대한 sum_i (t_i / total) * IoU_i.")),
        Check("empty", ("an all-zero matrix: every score NaN",
                        "모두 0인 행렬: 모든 점수가 NaN"),
              scores(["pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"], [np.zeros((3, 3))]), TOL_EXACT,
              ("no pixel at all: every score is NaN (0/0), none is 0.",
               "픽셀이 하나도 없으면 모든 점수는 0이 아니라 NaN(0/0)입니다.")),
    ]


# --------------------------------------------------------------------------- the registry

EXERCISES = (
    Exercise(1, "im2col", "02", ("unfold every kernel window into a column: (N, C, H, W) -> (N, C*kh*kw, Ho*Wo)",
                                 "커널 윈도우를 하나씩 열로 펼치기: (N, C, H, W) -> (N, C*kh*kw, Ho*Wo)"),
             ("im2col",), _im2col_checks),
    Exercise(2, "col2im", "02", ("the adjoint of im2col: sum the columns back into (N, C, H, W)",
                                 "im2col의 수반: 열들을 더해 (N, C, H, W)로 되돌리기"),
             ("col2im",), _col2im_checks),
    Exercise(3, "conv2d_forward", "03", ("convolution forward by im2col + one GEMM (stride, padding, dilation)",
                                         "im2col + GEMM 한 번으로 하는 합성곱 순전파 (스트라이드, 패딩, 팽창)"),
             ("conv2d_forward",), _conv_forward_checks),
    Exercise(4, "conv2d_backward", "03", ("convolution backward: dx, dweight, dbias",
                                          "합성곱 역전파: dx, dweight, dbias"),
             ("conv2d_forward", "conv2d_backward"), _conv_backward_checks),
    Exercise(5, "relu", "04", ("ReLU forward and backward (the kink at 0)",
                               "ReLU 순전파와 역전파 (0에서 꺾이는 점)"), ("relu_forward", "relu_backward"),
             _relu_checks),
    Exercise(6, "maxpool_forward", "04", ("max-pool forward: -inf padding, ceil mode with PyTorch's rule",
                                          "최대 풀링 순전파: -inf 패딩, PyTorch 규칙을 따르는 올림 모드"),
             ("maxpool2d_forward",), _pool_forward_checks),
    Exercise(7, "maxpool_backward", "04", ("max-pool backward: route dy to the argmax, ties to the first, sum repeats",
                                           "최대 풀링 역전파: dy를 argmax로 보내기, 동점은 첫 번째에, 겹치면 합"),
             ("maxpool2d_forward", "maxpool2d_backward"), _pool_backward_checks),
    Exercise(8, "conv_transpose_zero_insert", "05",
             ("transposed convolution by zero insertion + flipped-kernel conv, and its backward",
              "0 삽입 + 뒤집은 커널의 합성곱으로 하는 전치 합성곱과 그 역전파"),
             ("conv_transpose2d_forward", "conv_transpose2d_backward"), _convt_checks),
    Exercise(9, "bilinear_kernel", "06", ("the bilinear upsampling kernel and FCN's upscore weight",
                                          "쌍선형 업샘플링 커널과 FCN의 upscore 가중치"),
             ("bilinear_kernel", "bilinear_weight"), _bilinear_checks),
    Exercise(10, "softmax_cross_entropy", "07", ("per-pixel softmax cross-entropy with ignore_index, and its gradient",
                                                 "ignore_index가 있는 픽셀별 소프트맥스 교차 엔트로피와 그 기울기"),
             ("softmax_cross_entropy_forward", "softmax_cross_entropy_backward"), _ce_checks),
    Exercise(11, "fcn8s_skip_fusion", "08", ("FCN-8s skip fusion: crop the upsampled scores at the top-left, add",
                                             "FCN-8s 스킵 융합: 업샘플링한 점수를 왼쪽 위 기준으로 크롭해 더하기"),
             ("crop_add_forward", "crop_add_backward"), _fusion_checks),
    Exercise(12, "mean_iou", "09", ("the confusion matrix and the scores from it (mean IoU)",
                                    "혼동 행렬과 그로부터 얻는 점수 (평균 IoU)"),
             ("confusion_matrix", "scores"), _iou_checks),
)

# The engine function each learner function mirrors (its signature is the one to write).
ENGINE = {
    "im2col": kernels.im2col, "col2im": kernels.col2im,
    "conv2d_forward": F.conv2d_forward, "conv2d_backward": F.conv2d_backward,
    "relu_forward": F.relu_forward, "relu_backward": F.relu_backward,
    "maxpool2d_forward": F.maxpool2d_forward, "maxpool2d_backward": F.maxpool2d_backward,
    "conv_transpose2d_forward": F.conv_transpose2d_forward, "conv_transpose2d_backward": F.conv_transpose2d_backward,
    "bilinear_kernel": init.bilinear_kernel, "bilinear_weight": init.bilinear_weight,
    "softmax_cross_entropy_forward": F.softmax_cross_entropy_forward,
    "softmax_cross_entropy_backward": F.softmax_cross_entropy_backward,
    "crop_add_forward": F.crop_add_forward, "crop_add_backward": F.crop_add_backward,
    "confusion_matrix": metrics.confusion_matrix, "scores": metrics.scores,
}


def get(name: str) -> Exercise:
    """An exercise by name (``im2col``), file stem (``01_im2col``), file name or number (``1``, ``01``)."""
    key = str(name).strip()
    key = key[:-3] if key.endswith(".py") else key
    for ex in EXERCISES:
        if key in (ex.name, ex.filename[:-3], str(ex.number), f"{ex.number:02d}"):
            return ex
    raise ExerciseError(Message("unknown", name=name))


def exercises_dir() -> Path:
    """``lessons/exercises/`` of the repository this package sits in."""
    return Path(__file__).resolve().parent.parent / "lessons" / "exercises"


def default_file(ex: Exercise) -> Path:
    folder = exercises_dir()
    if not folder.is_dir():
        raise ExerciseError(Message("no_folder", folder=folder))
    return folder / ex.filename


def load(ex: Exercise, path) -> ModuleType:
    """Import the learner's file from ``path``; ExerciseError if it is missing, broken, or lacks a function."""
    path = Path(path)
    if not path.is_file():
        raise ExerciseError(Message("no_file", path=path))
    module_name = f"_fcn_scratch_exercise_{ex.number:02d}"
    # an explicit source loader, so any file name works (spec_from_file_location wants a .py suffix)
    spec = importlib.util.spec_from_file_location(module_name, path, loader=SourceFileLoader(module_name, str(path)))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = mod  # dataclasses and pickling look modules up here
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ next to the learner's file
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # so the file may import a helper module of its own beside it
    try:
        spec.loader.exec_module(mod)
    except SyntaxError as exc:
        raise ExerciseError(Message("syntax", path=path, line=exc.lineno, msg=exc.msg)) from None
    except KeyboardInterrupt:  # Ctrl-C stops the grader (the CLI prints one line, exit 130)
        raise
    except BaseException as exc:  # anything the learner's module does at import time (sys.exit() too)
        where = _where(exc, path)
        raise ExerciseError(Message("import", path=path,
                                    exc=Message("raised", exc=_exc_text(exc), where=where))) from None
    finally:
        sys.dont_write_bytecode = dont_write
        if folder in sys.path:
            sys.path.remove(folder)
    for fn in ex.functions:
        if not callable(getattr(mod, fn, None)):
            raise ExerciseError(Message("missing", path=path, fn=fn, name=ex.name,
                                                           fns=", ".join(f + "()" for f in ex.functions)))
    return mod


def _exc_str(exc) -> str:
    """``str(exc)``, or "" when the learner's exception cannot say what it is (its __str__ raises)."""
    try:
        return str(exc)
    except KeyboardInterrupt:
        raise
    except BaseException:
        return ""


def _exc_text(exc) -> str:
    msg = _exc_str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__


def _where(exc, path: Path, signature: str = "") -> str:
    """The last line of the learner's file in the traceback of ``exc``."""
    target = path.resolve()
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == target]
    if frames:
        f = frames[-1]
        code = (f.line or "").strip()
        if isinstance(exc, NotImplementedError) or not code:  # the message already says it all
            return Message("where_line", file=path.name, line=f.lineno)
        return Message("where_yours", file=path.name, line=f.lineno, code=code)
    return Message("where_not_yours", signature=signature or Message("engine_signature"))


def _signature(fn_name):
    """``name(a, b=1, dtype=np.float64)``: the engine function's parameters, without annotations."""
    def param(p):
        if p.default is inspect.Parameter.empty:
            return p.name
        d = p.default
        return f"{p.name}={'np.' + d.__name__ if isinstance(d, type) else repr(d)}"

    return f"{fn_name}({', '.join(param(p) for p in inspect.signature(ENGINE[fn_name]).parameters.values())})"


def run_check(check: Check, mod: ModuleType, path: Path, ex: Exercise, lang: str = "en") -> Result:
    """Run one check; the learner's exceptions and wrong structures fail it, never the grader.

    ``lang``: the language of the result's ``why`` and ``hint`` (``"en"`` or ``"ko"``).
    """
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = check.run(mod)
    except Mismatch as exc:
        return Result(check, False, None, why=exc.message.text(lang), show_hint=not exc.complete,
                      hint=message(exc.hint, lang) if exc.hint else "")
    except KeyboardInterrupt:  # Ctrl-C stops the grader (the CLI prints one line, exit 130)
        raise
    except BaseException as exc:  # sys.exit(), a BaseException subclass: fail this check, not the grading
        named = [f for f in ex.functions if f"{f}(" in _exc_str(exc)] or list(ex.functions)  # TypeError names it
        sig = "; ".join(_signature(f) for f in named)
        why = Message("raised", exc=_exc_text(exc), where=_where(exc, path, sig))
        return Result(check, False, None, why=why.text(lang))
    err, detail = out if isinstance(out, tuple) else (out, "")
    err = _error(err)  # a NaN error fails, and prints as "rel error inf > 1e-10"
    return Result(check, bool(err <= check.tol), err, detail)


def grade(name: str, path=None, lang: str = "en") -> tuple[Exercise, Path, list[Result]]:
    """Load and check an exercise; returns the exercise, the file graded and one Result per check.

    ``lang``: the language of the results' ``why`` and ``hint``; an ExerciseError's ``message`` is
    shown in the reader's language by whoever catches it (``exc.message.text(lang)``).
    """
    lang = _language(lang)
    ex = get(name)
    path = Path(path) if path is not None else default_file(ex)
    mod = load(ex, path)
    return ex, path, [run_check(c, mod, path, ex, lang) for c in ex.checks()]


def format_result(r: Result, lang: str = "en") -> list[str]:
    c = r.check
    if r.error is None:
        err = ""
    else:
        err = message("error", lang, err=r.error, op="<=" if r.passed else ">", tol=c.tol)
        if r.detail:
            err += " " + message("detail", lang, detail=r.detail)
    lines = [message("pass_line" if r.passed else "fail_line", lang, title=c.title_in(lang), error=err).rstrip()]
    if not r.passed:
        if r.why:
            lines.append(message("why", lang, why=r.why))
        if r.show_hint:
            lines.append(message("hint", lang, hint=r.hint or c.hint_in(lang)))
    return lines


def check_command(name: str, path=None, print_fn=print, lang: str = "en") -> int:
    """``fcn-scratch exercise check NAME [--file PATH] [--lang ko]``: print the grade; 0 if every check passes,
    else 1."""
    ex, path, results = grade(name, path, lang)
    print_fn(message("header", lang, number=ex.number, name=ex.name, lesson=ex.lesson, path=path))
    for r in results:
        for line in format_result(r, lang):
            print_fn(line)
    passed = sum(r.passed for r in results)
    key = "summary_pass" if passed == len(results) else "summary_fail"
    print_fn(message(key, lang, passed=passed, total=len(results)))
    return 0 if passed == len(results) else 1


def list_command(print_fn=print, lang: str = "en") -> int:
    """``fcn-scratch exercise list [--lang ko]``: the exercises in lesson order."""
    print_fn(message("list_header", lang, n=len(EXERCISES)))
    for ex in EXERCISES:
        print_fn(message("list_row", lang, number=ex.number, name=ex.name, lesson=ex.lesson, ask=ex.ask_in(lang)))
    return 0


def text_pairs() -> list[tuple[str, str]]:
    """Every ``(english, korean)`` text the grader can print, each once: the messages, and each
    exercise's one-line ask and its checks' titles and hints (the tests check each has its Korean,
    with the glossary's terms)."""
    pairs = list(MESSAGES.values())
    for ex in EXERCISES:
        pairs.append(ex.asks)
        for c in ex.checks():
            pairs += [c.titles, c.hints]
    return list(dict.fromkeys(pairs))


__all__ = ["EXERCISES", "Exercise", "Check", "Result", "ExerciseError", "Message", "MESSAGES", "TOL_EXACT", "get",
           "load", "grade", "check_command", "list_command", "exercises_dir", "message", "text_pairs"]
