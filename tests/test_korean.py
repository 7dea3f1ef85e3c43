"""The Korean edition (issue 13): language choice, Hangul fonts, lessons in Korean, the glossary.

Every lesson runs headless with ``--lang ko``; every text a lesson shows has its Korean beside it
(``tests/i18n_scan.py`` reads the sources: a text without ``ko=`` fails here, it does not quietly
show English); wherever an English text says a glossary term, its Korean says the glossary's Korean
term. The exercises' Korean is tested in ``tests/test_exercises_ko.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import i18n_scan
from fcn_scratch import i18n

ROOT = Path(__file__).resolve().parent.parent
LESSONS_DIR = ROOT / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py"))
SUMMARY_KO = re.compile(r"^=== (\S+): (\d+)단계, 검사 (\d+)개 통과, 그림 (\d+)개 저장$", re.M)
GLYPH_WARNING = "missing from font"  # matplotlib's warning for a character its fonts cannot draw


def _has_font():
    return i18n.hangul_font()[0] is not None


# --------------------------------------------------------------------------- choosing the language


def test_language_flag_beats_variable_and_english_is_default(monkeypatch):
    assert i18n.resolve_language() == "en"
    monkeypatch.setenv("FCN_SCRATCH_LANG", "ko")
    assert i18n.resolve_language() == "ko"
    assert i18n.resolve_language("en") == "en"
    monkeypatch.setenv("FCN_SCRATCH_LANG", " KO ")
    assert i18n.resolve_language() == "ko"
    monkeypatch.setenv("FCN_SCRATCH_LANG", "fr")
    with pytest.raises(ValueError, match="FCN_SCRATCH_LANG must be one of en, ko, got 'fr'"):
        i18n.resolve_language()
    with pytest.raises(ValueError, match="--lang must be one of en, ko, got 'jp'"):
        i18n.resolve_language("jp")


def test_pick_refuses_a_missing_korean_text():
    assert i18n.pick("en", "stride", None) == "stride"
    assert i18n.pick("ko", "stride", "스트라이드") == "스트라이드"
    for missing in (None, ""):
        with pytest.raises(i18n.MissingTranslation, match="no Korean text for: 'stride'"):
            i18n.pick("ko", "stride", missing)


def test_hangul_font_checks_glyphs_not_names(monkeypatch, tmp_path):
    import matplotlib
    from matplotlib import font_manager

    dejavu = font_manager.findfont("DejaVu Sans")
    assert not i18n.covers_hangul(dejavu), "DejaVu Sans has no Hangul: the reason a font is needed"
    not_a_font = tmp_path / "NanumGothic.ttf"  # a Korean name, but no font inside
    not_a_font.write_text("not a font")
    assert not i18n.covers_hangul(not_a_font)
    for value, why in [(str(tmp_path / "absent.ttf"), "no such font file"), (dejavu, "no Hangul glyphs"),
                       (str(not_a_font), "no Hangul glyphs")]:
        monkeypatch.setenv("FCN_SCRATCH_FONT", value)
        family, message = i18n.hangul_font()
        assert family is None and why in message
        saved = list(matplotlib.rcParams["font.family"])
        assert i18n.use_hangul_font()[0] is False and matplotlib.rcParams["font.family"] == saved


def test_hangul_font_found_draws_korean_without_warnings(monkeypatch, recwarn):
    import matplotlib
    import matplotlib.pyplot as plt

    family, where = i18n.hangul_font()
    if family is None:
        pytest.skip(f"no Hangul font on this machine ({where})")
    assert i18n.covers_hangul(where)
    monkeypatch.setenv("FCN_SCRATCH_FONT", where)  # the same font, named by the variable
    assert i18n.hangul_font() == (family, where)
    with matplotlib.rc_context():
        assert i18n.use_hangul_font() == (True, where)
        assert matplotlib.rcParams["font.family"] == ["DejaVu Sans", family]
        fig, ax = plt.subplots()
        ax.set_title("전치 합성곱(transposed convolution) −1")
        fig.canvas.draw()
        plt.close(fig)
    assert not [w for w in recwarn if GLYPH_WARNING in str(w.message)]


# --------------------------------------------------------------------------- the lesson framework


def _demo(lesson):
    lesson.step("One step", ko="한 단계")
    lesson.say("a line", ko="한 줄")
    lesson.check(True, "it holds", ko="성립한다")
    lesson.close(1.0, 1.0, "equal", ko="같다")
    lesson.done(summary=[("proved", "증명했다")], exercises=["relu"])


def test_framework_speaks_korean_under_lang_ko(common, capsys):
    _demo(common.Lesson("99_demo", "Demo", ko="데모", argv=["--lang", "ko", "--no-figures"]))
    out = capsys.readouterr().out
    for line in ["=== 레슨 99_demo: 데모", "--- 1단계. 한 단계", "한 줄", "    [ok] 성립한다", "    [ok] 같다",
                 "이 레슨에서 증명한 것:", "  - 증명했다", "  fcn-scratch exercise check relu --lang ko"]:
        assert line in out.splitlines(), line
    assert SUMMARY_KO.search(out).groups() == ("99_demo", "1", "2", "0")
    for english in ["Lesson", "Step", "One step", "a line", "it holds", "proved", "checks passed"]:
        assert english not in out


def test_framework_english_is_unchanged_by_the_translations(common, capsys, monkeypatch):
    _demo(common.Lesson("99_demo", "Demo", ko="데모", argv=["--no-figures"]))
    out = capsys.readouterr().out
    assert not i18n.has_hangul(out)
    assert out.splitlines()[:5] == ["=== Lesson 99_demo: Demo", "", "--- Step 1. One step", "a line",
                                    "    [ok] it holds"]
    monkeypatch.setenv("FCN_SCRATCH_LANG", "ko")  # the variable works when the flag is absent
    common.Lesson("99_demo", "Demo", ko="데모", argv=["--no-figures"])
    assert "=== 레슨 99_demo: 데모" in capsys.readouterr().out


def test_framework_fails_on_a_missing_korean_text(common):
    lesson = common.Lesson("99_demo", "Demo", ko="데모", argv=["--lang", "ko", "--no-figures"])
    lesson.step("a", ko="가")
    lesson.check(True, "fine", ko="좋다")
    with pytest.raises(i18n.MissingTranslation, match="lesson 99_demo, step 1: no Korean text for: 'untranslated'"):
        lesson.check(True, "untranslated")
    for call in (lambda: lesson.say("plain"), lambda: lesson.tr("plain"), lambda: lesson.label("plain"),
                 lambda: lesson.close(1, 1, "plain"), lambda: lesson.step("plain")):
        with pytest.raises(i18n.MissingTranslation):
            call()
    lesson.check(True, "fine", ko="좋다")
    with pytest.raises(TypeError, match=r"\(english, korean\) pairs"):
        lesson.done(summary=["a sentence without its Korean"])
    with pytest.raises(i18n.MissingTranslation):
        common.Lesson("99_demo", "Demo without Korean", argv=["--lang", "ko", "--no-figures"])
    with pytest.raises(SystemExit):
        common.Lesson("99_demo", "Demo", ko="데모", argv=["--lang", "fr"])


def test_framework_labels_fall_back_to_english_without_a_font(common, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FCN_SCRATCH_FONT", str(tmp_path / "absent.ttf"))
    lesson = common.Lesson("99_demo", "Demo", ko="데모", argv=["--lang", "ko", "--figures", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("한글 글꼴을 찾지 못해") == 1 and "absent.ttf: no such font file" in out
    assert lesson.label("stride 2", ko="스트라이드 2") == "stride 2"  # the figure keeps English
    assert lesson.tr("stride 2", ko="스트라이드 2") == "스트라이드 2"  # the terminal does not
    with pytest.raises(i18n.MissingTranslation):
        lesson.label("no Korean")  # the Korean is still required
    quiet = common.Lesson("99_demo", "Demo", ko="데모", argv=["--lang", "ko", "--no-figures"])
    assert "한글 글꼴" not in capsys.readouterr().out, "no figures saved, no font note"
    assert quiet.label("stride 2", ko="스트라이드 2") == "stride 2", "a figure drawn unsaved would warn of glyphs"


def test_pad_counts_terminal_columns(common):
    assert common.pad("loss", 8) == "loss    " == f"{'loss':8s}"
    assert common.pad("손실", 8) == "손실    " and common.text_width("손실") == 4  # a syllable takes two columns
    assert common.pad("평균 IoU", 10, ">") == "  평균 IoU"
    assert common.pad("too long", 3) == "too long"  # like an f-string, never cut


def test_framework_labels_are_korean_with_a_font(common, capsys, tmp_path):
    if not _has_font():
        pytest.skip("no Hangul font on this machine")
    lesson = common.Lesson("99_demo", "Demo", ko="데모", argv=["--lang", "ko", "--figures", str(tmp_path)])
    assert "한글 글꼴" not in capsys.readouterr().out
    assert lesson.label("stride 2", ko="스트라이드 2") == "스트라이드 2"


def test_framework_texts_exist_in_both_languages(common):
    for key, (en, ko) in common._TEXTS.items():
        assert ko and (i18n.has_hangul(ko) or key == "exercise"), key
        assert key == "no_font" or (en and not i18n.has_hangul(en)), key


# --------------------------------------------------------------------------- the static checker


def test_scan_finds_untranslated_texts_and_accepts_translated_ones():
    source = '''
"""A module docstring is not shown."""
lesson.step("Ceil mode", ko="올림 모드")
print("x:", x, "indices of each winner:", i)
print(lesson.tr("indices of each winner:", ko="승자의 인덱스:"), i)
note = "orange: partial windows" if ceil else lesson.label("red: lost", ko="빨강: 사라짐")
ax.set_title("Input")
ax.set_title(lesson.label("Input", ko="입력"))
lesson.check(ok, "the shapes match")
lesson.check(ok, "the shapes match", ko="the shapes match")
draw_matrix(ax, a, "dy (one per window)", cmap="Oranges", fmt="{:.0f}")
y = np.einsum("nchw,kc->nkhw", a, b); kernels.use_backend("numpy"); d["some key here"] = 1
lesson.save(fig, "ceil_mode"); plt.plot(x, y, color="tab:orange", label=lesson.label("ours", ko="엔진"))
ax.set_title(lesson.tr("Input", ko="입력"))
'''
    found = [(line, problem.split(" ")[0], text) for line, problem, text in i18n_scan.scan(source)]
    assert found == [
        (4, "English", "indices of each winner:"),
        (6, "English", "orange: partial windows"),
        (7, "English", "Input"),
        (9, "English", "the shapes match"),
        (10, "ko=", "the shapes match"),
        (11, "English", "dy (one per window)"),
        (14, "tr()", "set_title"),
    ]


def test_glossary_check_finds_a_missing_term():
    terms = [("transposed convolution", "전치 합성곱", "05"), ("stride", "스트라이드", "03"), ("weight", "가중치", "03")]
    pairs = [(1, "the transposed convolutions upsample", "전치 합성곱으로 업샘플링한다"),
             (2, "stride 2 and MaxPool2d(3, stride=2)", "보폭 2"),
             (3, "`conv.weight` and fc6.weight, weight_decay", "코드 이름만"),
             (4, "the weights", "그 값들")]
    misses = [(line, en) for line, en, *_ in i18n_scan.glossary_misses(pairs, terms)]
    assert misses == [(2, "stride"), (4, "weight")]


# --------------------------------------------------------------------------- the glossary


def test_glossary_has_forty_terms_each_with_a_lesson():
    rows = i18n_scan.glossary()
    assert len(rows) >= 40, len(rows)
    assert len({en.lower() for en, _, _ in rows}) == len(rows), "an English term is listed twice"
    lessons = {p.name[:2]: p for p in LESSONS}
    for en, ko, lesson in rows:
        assert ko and (i18n.has_hangul(ko) or ko == en), (en, ko)
        assert lesson in lessons, f"{en}: lesson {lesson!r} does not exist"
        source = lessons[lesson].read_text(encoding="utf-8")
        korean = " ".join(k for _, _, k in i18n_scan.pairs(source))
        assert i18n_scan.term_pattern(en).search(i18n_scan.without_code(source)) or ko in korean, \
            f"{en} / {ko}: lesson {lesson} never says it in either language"


def test_glossary_lists_the_terms_the_issue_names():
    rows = {en: ko for en, ko, _ in i18n_scan.glossary()}
    for en, ko in [("transposed convolution", "전치 합성곱"), ("receptive field", "수용 영역"),
                   ("dilated convolution", "팽창 합성곱"), ("skip architecture", "스킵 구조"),
                   ("upsampling", "업샘플링"), ("mean IoU", "평균 IoU"), ("fine-tuning", "미세 조정"),
                   ("bilinear interpolation", "쌍선형 보간"), ("convolutionalization", "합성곱화")]:
        assert rows.get(en) == ko, en
    assert "ignore index" in rows and "deconvolution" in rows


# --------------------------------------------------------------------------- every lesson, in Korean


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_has_every_text_in_korean(path):
    source = path.read_text(encoding="utf-8")
    problems = i18n_scan.scan(source, str(path))
    assert not problems, "texts without Korean (python tests/i18n_scan.py shows them):\n" + "\n".join(
        f"  line {line}: {problem}: {text!r}" for line, problem, text in problems)
    misses = i18n_scan.glossary_misses(i18n_scan.pairs(source, str(path)))
    assert not misses, "Korean texts that do not use the glossary's term:\n" + "\n".join(
        f"  line {line}: {en!r} -> {ko!r}: {k!r}" for line, en, ko, _, k in misses)
    cells = re.split(r"^# %%", source, flags=re.M)
    markdown = [c for c in cells if c.startswith(" [markdown]")]
    assert len(markdown) >= 2 and not i18n.has_hangul(markdown[0].replace("초해상도", "")) \
        and len(i18n.HANGUL.findall(markdown[1])) > 100, \
        "the lesson's explanation (its first markdown cell) needs its Korean version in the cell after it"


def _run(path, cwd, *args, **env_extra):
    env = dict(os.environ, MPLBACKEND="Agg", **env_extra)
    return subprocess.run([sys.executable, str(path), *args], cwd=cwd, env=env, input="", capture_output=True,
                          text=True, timeout=900)


@pytest.mark.lesson
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_korean(path, tmp_path):
    """``--lang ko``: exit 0, Korean headers, steps and summary, the same figures, no tofu warnings."""
    figures = tmp_path / "figures"
    proc = _run(path, tmp_path, "--lang", "ko", "--figures", str(figures))
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    match = SUMMARY_KO.search(proc.stdout)
    assert match and match.group(1) == path.stem, proc.stdout[-2000:]
    steps, n_figures = int(match.group(2)), int(match.group(4))
    headers = re.findall(r"^--- (\d+)단계\. (.*)$", proc.stdout, re.M)
    assert len(headers) == steps and all(i18n.has_hangul(title) for _, title in headers), headers
    assert proc.stdout.startswith("=== 레슨 ") and "이 레슨에서 증명한 것:" in proc.stdout
    written = [p for p in figures.rglob("*") if p.is_file()]
    assert len(written) == n_figures
    assert GLYPH_WARNING not in proc.stderr and "findfont" not in proc.stderr, proc.stderr[-2000:]
    font_note = "한글 글꼴을 찾지 못해" in proc.stdout
    assert font_note == (not _has_font() and n_figures > 0) or (font_note and n_figures == 0 and not _has_font())


@pytest.mark.lesson
def test_lesson_without_a_font_keeps_english_figures_with_one_note(tmp_path):
    """No Hangul font: the figures keep English titles, one note says so, and nothing warns of glyphs."""
    path = LESSONS_DIR / "04_relu_maxpool.py"
    proc = _run(path, tmp_path, "--lang", "ko", "--figures", str(tmp_path / "f"),
                FCN_SCRATCH_FONT=str(tmp_path / "absent.ttf"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("한글 글꼴을 찾지 못해") == 1
    assert GLYPH_WARNING not in proc.stderr and "Glyph" not in proc.stderr
    assert SUMMARY_KO.search(proc.stdout) and int(SUMMARY_KO.search(proc.stdout).group(4)) >= 1


@pytest.mark.lesson
def test_lesson_language_from_the_environment(tmp_path):
    """FCN_SCRATCH_LANG=ko; and under --no-figures without a font, figures drawn unsaved (lesson 11
    draws some) must not warn of missing glyphs either."""
    proc = _run(LESSONS_DIR / "11_detection_and_instances.py", tmp_path, "--no-figures", FCN_SCRATCH_LANG="ko",
                FCN_SCRATCH_FONT=str(tmp_path / "absent.ttf"))
    assert proc.returncode == 0 and SUMMARY_KO.search(proc.stdout), proc.stderr[-2000:]
    assert "한글 글꼴" not in proc.stdout and GLYPH_WARNING not in proc.stderr, proc.stderr[-2000:]
    proc = _run(LESSONS_DIR / "02_im2col_col2im.py", tmp_path, "--no-figures", "--lang", "en",
                FCN_SCRATCH_LANG="ko")
    assert proc.returncode == 0 and not i18n.has_hangul(proc.stdout), "--lang en beats the variable"
