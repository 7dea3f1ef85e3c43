"""The learner's language (English or Korean), and a Hangul font for Korean figures.

English is the default. ``--lang ko`` (a lesson, ``fcn-scratch exercise``) or the environment
variable ``FCN_SCRATCH_LANG=ko`` switches to Korean; the flag beats the variable. A text is kept
beside its translation where it is written (``lesson.step("...", ko="...")``), and :func:`pick`
chooses between the two. Under Korean a missing translation is an error
(:class:`MissingTranslation`), never a silent fall back to English, so a test finds it.

Figures need a font with Hangul glyphs (matplotlib's own DejaVu Sans has none: a Korean title
would draw as empty boxes). :func:`hangul_font` looks for one, in this order: the font file named
by ``FCN_SCRATCH_FONT``; fonts matplotlib already knows whose name says Korean or CJK; font files on
the system whose file name does (matplotlib's font list is a cache, so a font installed after it was
built, say ``apt install fonts-nanum``, is found only this way). Each candidate must really map the
Hangul syllables. Without one, figures keep their English titles and the lesson prints one note.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

LANGUAGES = ("en", "ko")
LANG_ENV = "FCN_SCRATCH_LANG"
FONT_ENV = "FCN_SCRATCH_FONT"
HANGUL = re.compile("[\uac00-\ud7a3]")  # the 11,172 precomposed Hangul syllables

# Names (lower case, spaces and dashes dropped) of fonts that carry Hangul: Linux packages
# (fonts-nanum, fonts-noto-cjk, fonts-unfonts-core, fonts-baekmuk), Windows and macOS built-ins.
_KOREAN_NAMES = ("nanum", "notosanscjk", "notoserifcjk", "notosanskr", "notoserifkr", "sourcehansans",
                 "sourcehanserif", "malgun", "applesdgothicneo", "applegothic", "applemyungjo", "undotum",
                 "unbatang", "ungraphic", "baekmuk", "gulim", "dotum", "batang", "d2coding")


class MissingTranslation(LookupError):
    """Korean was asked for and a text has no Korean counterpart."""


def resolve_language(flag: str | None = None) -> str:
    """The language to use: ``flag`` (from ``--lang``) if given, else ``$FCN_SCRATCH_LANG``, else ``"en"``.

    Raises ValueError for anything but ``en`` or ``ko`` (from either source), naming the source.
    """
    source, lang = ("--lang", flag) if flag else (LANG_ENV, os.environ.get(LANG_ENV, "").strip() or "en")
    lang = lang.strip().lower()
    if lang not in LANGUAGES:
        raise ValueError(f"{source} must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    return lang


def pick(lang: str, en: str, ko: str | None) -> str:
    """``en`` under English, ``ko`` under Korean; MissingTranslation if Korean is asked for and ``ko`` is empty."""
    if lang == "ko":
        if not ko:
            raise MissingTranslation(f"no Korean text for: {en!r}")
        return ko
    return en


def has_hangul(text: str) -> bool:
    """True if ``text`` holds a Hangul syllable."""
    return bool(HANGUL.search(text))


def covers_hangul(path) -> bool:
    """True if the font file at ``path`` maps the first and the last Hangul syllable (가, 힣) to glyphs."""
    from matplotlib.ft2font import FT2Font

    try:
        charmap = FT2Font(str(path)).get_charmap()
    except (OSError, RuntimeError, ValueError):  # unreadable, or not a font
        return False
    return 0xAC00 in charmap and 0xD7A3 in charmap


def _korean_name(name: str) -> bool:
    name = name.lower().replace(" ", "").replace("-", "").replace("_", "")
    return any(k in name for k in _KOREAN_NAMES)


def hangul_font() -> tuple[str | None, str]:
    """Find a font with Hangul glyphs and register it with matplotlib.

    Returns ``(family, where)``: the family name to put in ``rcParams["font.family"]`` and the file
    it came from, or ``(None, why)`` when there is none (``why`` says what was tried).
    """
    from matplotlib import font_manager

    manager = font_manager.fontManager
    chosen = os.environ.get(FONT_ENV, "").strip()
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            return None, f"{FONT_ENV}={chosen}: no such font file"
        if not covers_hangul(path):
            return None, f"{FONT_ENV}={chosen}: the font has no Hangul glyphs"
        manager.addfont(str(path))
        return font_manager.FontProperties(fname=str(path)).get_name(), str(path)
    # Regular weights first: a bold or light face as the only one makes every title look odd.
    known = sorted((e for e in manager.ttflist if _korean_name(e.name) or _korean_name(Path(e.fname).name)),
                   key=lambda e: (e.weight != 400, e.style != "normal", "coding" in e.name.lower(), e.name))
    for entry in known:
        if covers_hangul(entry.fname):
            return entry.name, entry.fname
    listed = {e.fname for e in manager.ttflist}
    on_disk = sorted((p for p in font_manager.findSystemFonts() if p not in listed and _korean_name(Path(p).name)),
                     key=lambda p: ("bold" in p.lower() or "light" in p.lower(), "coding" in p.lower(), p))
    for path in on_disk:
        if covers_hangul(path):
            family = font_manager.FontProperties(fname=path).get_name()
            for sibling in on_disk:  # its bold and other faces too, or bold titles fall back with a warning
                if sibling == path or font_manager.FontProperties(fname=sibling).get_name() == family:
                    manager.addfont(sibling)
            return family, path
    return None, "no font with Hangul glyphs found (Linux: apt install fonts-nanum, or fonts-noto-cjk)"


def use_hangul_font() -> tuple[bool, str]:
    """Make matplotlib draw Hangul: DejaVu Sans for Latin letters and digits, the Hangul font for the rest.

    Returns ``(True, file)`` when a font was found and set, ``(False, why)`` when not (nothing changed).
    matplotlib falls back glyph by glyph along ``font.family`` (since 3.6), so mixed text such as
    ``"입력 x (N, C, H, W)"`` takes each character from the first font that has it.
    """
    import matplotlib

    family, where = hangul_font()
    if family is None:
        return False, where
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", family]
    # Korean fonts' bold faces are often weight 600 (NanumGothic's is): matplotlib draws them for
    # "bold" (700) but logs a line each time; that note is about weight, not a missing glyph.
    logger = logging.getLogger("matplotlib.font_manager")
    if not any(isinstance(f, _NearestWeightFilter) for f in logger.filters):
        logger.addFilter(_NearestWeightFilter())
    return True, where


class _NearestWeightFilter(logging.Filter):
    def filter(self, record):
        return not str(record.msg).startswith("findfont: Failed to find font weight")
