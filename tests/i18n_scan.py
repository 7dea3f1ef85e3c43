"""Find the English texts in a lesson that have no Korean counterpart beside them.

A lesson keeps every text a learner reads next to its translation::

    lesson.step("Ceil mode", ko="올림 모드(ceil mode)")
    lesson.say(f"floor mode gives {n}", ko=f"내림 모드에서는 {n}")
    ax.set_title(lesson.label("x: all negative", ko="x: 모두 음수"))

This module reads a lesson's source (never runs it) and lists every string literal that reads
as English prose but sits outside such a call, and every ``ko=`` text without Hangul. Run it on
a file to see what is left to translate::

    python tests/i18n_scan.py lessons/04_relu_maxpool.py

What counts as prose: after dropping `backticked code`, calls such as ``maxpool(x)`` and names
with ``_`` or digits, a word of three or more lower-case letters (``"rel error"``), or, where
the text is shown (a ``print`` argument, a figure title or label), any word of three or more
letters. Docstrings, dictionary keys, subscripts, comparisons and keyword arguments that style
rather than say something (``cmap=``, ``color=``) are code, not text.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

TRANSLATING = {"tr", "say", "label", "step", "check", "close", "Lesson"}  # take the English and ko=
PAIRS = {"done"}  # done(summary=[(en, ko), ...]): pairs, checked when the lesson runs
DISPLAY_CALLS = {"print": None, "set_title": 0, "suptitle": 0, "set_xlabel": 0, "set_ylabel": 0, "supxlabel": 0,
                 "supylabel": 0, "text": 2, "annotate": 0, "set_text": 0, "legend": None, "draw_matrix": 2,
                 "figtext": 2}  # positional index of the text (None: every argument)
FIGURE_CALLS = (set(DISPLAY_CALLS) - {"print"}) | {"sliding_window_animation", "animation_panels"}
DISPLAY_KEYWORDS = {"label", "title", "titles", "final", "xlabel", "ylabel", "caption", "note", "left_out", "s",
                    "text", "claim", "summary", "header"}
CODE_CALLS = {"einsum", "save", "save_animation", "use_backend", "getattr", "setattr", "hasattr", "startswith",
              "endswith", "replace", "split", "strip", "format", "join", "importorskip", "get", "open",
              "compile", "match", "search", "findall", "sub", "fullmatch", "environ", "subplot_mosaic"}
HANGUL = re.compile("[\uac00-\ud7a3]")
_CODE = [re.compile(r"`[^`]*`"),  # `code`
         re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\("),  # a call: maxpool2d_forward(
         re.compile(r"\b[A-Za-z]*[_0-9][A-Za-z0-9_]*\b")]  # a name with _ or digits: conv1_1, x7, im2col


def _text(node) -> str:
    """The literal text of a str constant or an f-string (each {...} as "{}")."""
    if isinstance(node, ast.Constant):
        return node.value
    return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def is_prose(text: str, shown: bool) -> bool:
    """True if ``text`` reads as English a learner should get in Korean too."""
    for pattern in _CODE:
        text = pattern.sub(" ", text)
    words = re.findall(r"[A-Za-z]+", text)
    if shown:
        return any(len(w) >= 3 for w in words)
    return " " in text.strip() and any(len(w) >= 3 and w.islower() for w in words)


def _parents(tree):
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


def _docstrings(tree):
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                found.add(first.value)
    return found


def _name(func) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _has_ko(call) -> bool:
    return any(k.arg == "ko" for k in call.keywords)


def scan(source: str, filename: str = "<lesson>"):
    """``[(line, problem, text), ...]`` for the texts without a Korean counterpart, in source order."""
    tree = ast.parse(source, filename)
    parents, docstrings, problems = _parents(tree), _docstrings(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in ("tr", "say"):
            # In a figure the text must fall back to English without a Hangul font: label() does, tr() not.
            parent = parents.get(node)
            while parent is not None and not isinstance(parent, ast.stmt):
                if isinstance(parent, ast.Call) and _name(parent.func) in FIGURE_CALLS:
                    problems.append((node.lineno, "tr() in a figure: use lesson.label()", _name(parent.func)))
                    break
                parent = parents.get(parent)
        if isinstance(node, ast.Call) and _name(node.func) in TRANSLATING:
            for kw in node.keywords:
                if kw.arg == "ko" and isinstance(kw.value, (ast.Constant, ast.JoinedStr)) \
                        and not HANGUL.search(_text(kw.value)):
                    problems.append((kw.value.lineno, "ko= text without Hangul", _text(kw.value)))
        if not (isinstance(node, ast.JoinedStr) or isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if node in docstrings:
            continue
        shown, code, child, parent = False, False, node, parents.get(node)
        decided = False  # the nearest call decides shown/code; outer calls only matter for translation
        while parent is not None and not isinstance(parent, ast.stmt):
            if isinstance(parent, ast.JoinedStr) or isinstance(parent, ast.FormattedValue):
                code = True  # a piece of an f-string: the f-string as a whole is judged
            elif isinstance(parent, ast.Subscript) and child is parent.slice or isinstance(parent, ast.Compare):
                code = True
            elif isinstance(parent, ast.Dict) and child in parent.keys:
                code = True
            elif isinstance(parent, ast.keyword) and not decided:
                decided = True
                shown = parent.arg in DISPLAY_KEYWORDS
                code = code or not shown and parent.arg is not None
            elif isinstance(parent, ast.Call):
                name = _name(parent.func)
                if name in TRANSLATING and _has_ko(parent) or name in PAIRS:
                    code = True  # translated here
                    break
                if not decided and child in parent.args:
                    decided = True
                    index = DISPLAY_CALLS.get(name, -1)
                    shown = name in DISPLAY_CALLS and (index is None or parent.args.index(child) == index)
                    code = code or name in CODE_CALLS
            child, parent = parent, parents.get(parent)
        if code:
            continue
        text = _text(node)
        if is_prose(text, shown):
            problems.append((node.lineno, "English without ko=", text))
    return sorted(problems)


_EN_POSITION = {"tr": 0, "say": 0, "label": 0, "step": 0, "check": 1, "close": 2, "Lesson": 1}


def pairs(source: str, filename: str = "<lesson>"):
    """``[(line, english, korean), ...]``: every literal text written beside its ``ko=`` translation
    (``{...}`` fields shown as ``{}``), and the ``(english, korean)`` summary pairs of ``done()``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name in _EN_POSITION and _has_ko(node) and len(node.args) > _EN_POSITION[name]:
            en, ko = node.args[_EN_POSITION[name]], next(k.value for k in node.keywords if k.arg == "ko")
            if all(isinstance(v, (ast.Constant, ast.JoinedStr)) for v in (en, ko)):
                found.append((node.lineno, _text(en), _text(ko)))
        elif name in PAIRS:
            for kw in node.keywords:
                if kw.arg == "summary" and isinstance(kw.value, (ast.List, ast.Tuple)):
                    for item in kw.value.elts:
                        if isinstance(item, ast.Tuple) and len(item.elts) == 2 and all(
                                isinstance(v, (ast.Constant, ast.JoinedStr)) for v in item.elts):
                            found.append((item.lineno, _text(item.elts[0]), _text(item.elts[1])))
    return found


GLOSSARY = Path(__file__).resolve().parent.parent / "lessons" / "GLOSSARY.md"


def glossary(path=GLOSSARY):
    """``[(english, korean, lesson), ...]`` from the glossary's table."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[0] not in ("English", "---"):
            rows.append((cells[0], cells[1], cells[3]))
    return rows


def term_pattern(english: str):
    """The English term as a regex: whole words, any case, ``-`` or space or nothing between its
    words ("max-pooling", "max pooling"), an optional plural ending (not "-ed": "frequency-weighted"
    is not about weights)."""
    words = re.split(r"[- ]", english)
    return re.compile(r"\b" + r"[- ]?".join(map(re.escape, words)) + r"(s|es)?\b", re.I)


def without_code(text: str) -> str:
    """``text`` with `code`, calls and subscripts (with their arguments), dotted names, keyword
    arguments and names with ``_`` or digits blanked out: the English term must be prose, not code."""
    for pattern in (re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+"),
                    re.compile(r"\b[A-Za-z_]\w*[(\[][^()\[\]]*[)\]]"),  # a call or subscript with its
                    *_CODE, re.compile(r"\b[A-Za-z_]+=")):  # arguments: onehot(label), p[label]
        text = pattern.sub(" ", text)
    return text


def glossary_misses(text_pairs, terms=None):
    """``[(line, english term, korean term, english, korean), ...]``: pairs whose English says a
    glossary term and whose Korean lacks that term's Korean."""
    terms = glossary() if terms is None else terms
    compiled = [(term_pattern(en), en, ko) for en, ko, _ in terms]
    misses = []
    for line, en, ko in text_pairs:
        plain = without_code(en)
        for pattern, term_en, term_ko in compiled:
            if pattern.search(plain) and term_ko.lower() not in ko.lower():
                misses.append((line, term_en, term_ko, en, ko))
    return misses


def main(argv):
    total = 0
    for path in argv or sorted(Path(__file__).resolve().parent.parent.glob("lessons/[0-9][0-9]_*.py")):
        source = Path(path).read_text(encoding="utf-8")
        problems = scan(source, str(path))
        total += len(problems)
        for line, problem, text in problems:
            print(f"{path}:{line}: {problem}: {text!r}")
        misses = glossary_misses(pairs(source, str(path)))
        total += len(misses)
        for line, term_en, term_ko, en, ko in misses:
            print(f"{path}:{line}: glossary: English says {term_en!r}, Korean lacks {term_ko!r}: {ko!r}")
    print(f"{total} problems (texts without Korean, glossary terms missing)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
