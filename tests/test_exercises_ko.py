"""The Korean edition of the exercises and their grader (`fcn-scratch exercise ... --lang ko`).

* `exercise list` and `exercise check` speak Korean under ``--lang ko`` or ``FCN_SCRATCH_LANG=ko``
  (the flag beats the variable): task statements, check titles, hints, messages, summaries;
* a text without its Korean raises MissingTranslation, never shows English (the tests plant one);
* every (english, korean) pair the grader can print has Hangul and the glossary's terms;
* every stub's docstrings carry the task in Korean beside the English;
* the English output is exactly what it was before the Korean edition (tests/data/exercises_en/,
  captured from the grader before it was translated).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from i18n_scan import glossary_misses
from test_exercises import CONV, HONEST, MUTANTS, _mutant

from fcn_scratch import exercises as E
from fcn_scratch.cli import main
from fcn_scratch.i18n import MissingTranslation, has_hangul

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "lessons" / "exercises"
GOLDEN = Path(__file__).resolve().parent / "data" / "exercises_en"
TWO_TUPLE = _mutant(CONV, "    return dx, dw_, (dy.sum(axis=(0, 2, 3)) if has_bias else None)\n",
                    "    return dx, dw_\n")  # a wrong structure: two gradients instead of three


def _write(tmp_path, name, source):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return path


def _run(capsys, *argv):
    code = main(["exercise", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _rows(out):
    return [line for line in out.splitlines() if line.startswith("  ")]


# ----------------------------------------------------------------------------- exercise list


def test_list_in_korean_by_flag_and_by_variable(capsys, monkeypatch):
    code, out, _ = _run(capsys, "list", "--lang", "ko")
    assert code == 0
    lines = out.splitlines()
    assert has_hangul(lines[0]) and "연습 문제 12개" in lines[0]
    rows = _rows(out)
    assert len(rows) == len(E.EXERCISES) == 12
    for row, ex in zip(rows, E.EXERCISES):
        ask = ex.asks[1]
        assert has_hangul(ask) and row.endswith(ask) and f"레슨 {ex.lesson}" in row and ex.name in row, row
        assert ex.ask not in row
    monkeypatch.setenv("FCN_SCRATCH_LANG", "ko")
    assert _run(capsys, "list")[1] == out  # the variable does what the flag does
    assert _run(capsys, "list", "--lang", "en")[1] == (GOLDEN / "list.txt").read_text()  # the flag wins


def test_list_in_english_is_unchanged(capsys, monkeypatch):
    golden = (GOLDEN / "list.txt").read_text()
    assert _run(capsys, "list") == (0, golden, "")
    monkeypatch.setenv("FCN_SCRATCH_LANG", "en")
    assert _run(capsys, "list")[1] == golden


# ----------------------------------------------------------------------------- exercise check


@pytest.mark.parametrize("ex", E.EXERCISES, ids=lambda ex: ex.name)
def test_a_stub_fails_in_korean(ex, capsys):
    code, out, _ = _run(capsys, "check", ex.name, "--lang", "ko")
    assert code == 1
    lines = out.splitlines()
    checks = ex.checks()
    assert lines[0].startswith(f"연습 문제 {ex.number:02d} {ex.name} (레슨 {ex.lesson}): ")
    fails = [line for line in lines if line.startswith("  실패  ")]
    assert [line[len("  실패  "):] for line in fails] == [c.titles[1] for c in checks]
    hints = [line for line in lines if line.startswith("        힌트: ")]
    assert hints == [f"        힌트: {c.hints[1]}" for c in checks]
    assert f"{ex.filename}, " in out and "행]" in out  # where the learner's NotImplementedError came from
    assert "  FAIL  " not in out and "hint: " not in out and "rel error" not in out
    assert lines[-1] == f"검사 {len(checks)}개 중 0개 통과. 처음 실패한 검사부터 고친 뒤 다시 실행하세요."


@pytest.mark.parametrize("ex", E.EXERCISES, ids=lambda ex: ex.name)
def test_an_honest_answer_passes_in_korean(ex, tmp_path, capsys):
    path = _write(tmp_path, "answer", HONEST[ex.name])
    code, out, _ = _run(capsys, "check", ex.name, "--file", str(path), "--lang", "ko")
    assert code == 0, out
    checks = ex.checks()
    passes = [line for line in out.splitlines() if line.startswith("  통과  ")]
    assert len(passes) == len(checks)
    for line, c in zip(passes, checks):
        assert line.startswith(f"  통과  {c.titles[1]}  상대 오차 "), line
    assert out.splitlines()[-1] == f"검사 {len(checks)}개 중 {len(checks)}개 통과: 잘했습니다."


def test_failing_checks_explain_in_korean(tmp_path, capsys, monkeypatch):
    """A maths bug and a wrong structure: the FAIL line, the why and the hint all in Korean; names
    the grader writes into its messages ("the backward pass") are translated too."""
    monkeypatch.setenv("FCN_SCRATCH_LANG", "ko")
    path = _write(tmp_path, "pool", MUTANTS["pool_zero_padding"][1])
    code, out, _ = _run(capsys, "check", "maxpool_forward", "--file", str(path))
    assert code == 1
    assert "  실패  3x3, 스트라이드 2, 패딩 1, 모두 음수인 x (2, 2, 7, 8)  상대 오차 7.8e-01 > 1e-10" in out
    assert "        힌트: 0이 아니라 -inf로 패딩하세요" in out
    assert "        y의 모양이 (1, 2, 5, 4)입니다. 기대한 모양: (1, 2, 4, 3)" in out
    assert out.splitlines()[-1] == "검사 8개 중 5개 통과. 처음 실패한 검사부터 고친 뒤 다시 실행하세요."

    code, out, _ = _run(capsys, "check", "conv2d_backward", "--file", str(_write(tmp_path, "two", TWO_TUPLE)))
    assert code == 1
    assert "        역전파: (x, weight, bias) 3개로 된 튜플을 반환해야 합니다. 받은 값: 원소 2개짜리 튜플" in out
    assert f"        힌트: {E.MESSAGES['hint_tuple'][1]}" in out
    assert "the backward pass" not in out and "a tuple of" not in out and "hint" not in out


@pytest.mark.parametrize("golden, name, source", [
    ("check_fail_maxpool_forward", "maxpool_forward", MUTANTS["pool_zero_padding"][1]),
    ("check_pass_relu", "relu", HONEST["relu"]),
    ("check_fail_structure_conv2d_backward", "conv2d_backward", TWO_TUPLE),
])
def test_check_in_english_is_unchanged(golden, name, source, tmp_path, capsys, monkeypatch):
    path = _write(tmp_path, golden, source)
    want = (GOLDEN / f"{golden}.txt").read_text().format(path=path)
    code, out, err = _run(capsys, "check", name, "--file", str(path))
    assert (out, err) == (want, "") and code == (0 if "pass" in golden else 1)
    monkeypatch.setenv("FCN_SCRATCH_LANG", "ko")
    assert _run(capsys, "check", name, "--file", str(path), "--lang", "en")[1] == want  # the flag wins


# ----------------------------------------------------------------------------- usage errors


def test_usage_errors_under_korean_are_one_line_exit_2(tmp_path, capsys, monkeypatch):
    code, out, err = _run(capsys, "check", "relux", "--lang", "ko")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err == ("fcn-scratch: error: 'relux'라는 연습 문제는 없습니다; 이름은 "
                   "`fcn-scratch exercise list --lang ko`로 볼 수 있습니다\n")
    half = _write(tmp_path, "half", "def relu_forward(x):\n    return x, None\n")
    code, _, err = _run(capsys, "check", "relu", "--file", str(half), "--lang", "ko")
    assert code == 2 and err.count("\n") == 1 and "relu_backward() 함수가 없습니다" in err
    code, _, err = _run(capsys, "check", "relu", "--file", str(tmp_path / "nope.py"), "--lang", "ko")
    assert code == 2 and err.count("\n") == 1 and err.endswith("nope.py: 파일이 없습니다\n")
    imp = _write(tmp_path, "imp", "import not_a_module_anywhere\n")
    code, _, err = _run(capsys, "check", "relu", "--file", str(imp), "--lang", "ko")
    assert code == 2 and err.count("\n") == 1 and "import하지 못했습니다: ModuleNotFoundError" in err
    assert "[imp.py, 1행: import not_a_module_anywhere]" in err and "Traceback" not in err

    for argv in (["list", "--lang", "fr"], ["check", "relu", "--lang", "kr"]):  # argparse's own, in English
        code, out, err = _run(capsys, *argv)
        assert code == 2 and out == "" and err.count("\n") == 1 and "--lang: invalid choice" in err, err
    monkeypatch.setenv("FCN_SCRATCH_LANG", "fr")
    for argv in (["list"], ["check", "relu"]):
        code, out, err = _run(capsys, *argv)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert err.startswith("fcn-scratch: error: FCN_SCRATCH_LANG must be one of en, ko, got 'fr'"), err
    assert _run(capsys, "list", "--lang", "en")[0] == 0  # a good flag overrides a bad variable


def test_the_real_command_reads_the_variable(tmp_path):
    env = dict(os.environ, FCN_SCRATCH_LANG="ko", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-m", "fcn_scratch", "exercise", "list"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""
    assert [row.split("  ")[-1] for row in _rows(proc.stdout)] == [ex.asks[1] for ex in E.EXERCISES]


# ----------------------------------------------------------------------------- every text has its Korean


def _without_hangul(pairs):
    return [(en, ko) for en, ko in pairs if not (en.strip() and has_hangul(ko))]


def test_every_text_pair_has_its_korean():
    pairs = E.text_pairs()
    assert not _without_hangul(pairs)
    n_checks = sum(len(ex.checks()) for ex in E.EXERCISES)
    assert len(pairs) > len(E.MESSAGES) + len(E.EXERCISES) + n_checks  # titles, hints, asks and messages
    assert set(E.MESSAGES.values()) <= set(pairs)
    for ex in E.EXERCISES:
        assert ex.asks in pairs and all(c.titles in pairs and c.hints in pairs for c in ex.checks())
    # the check itself can fail: an English text left as its own "translation", or an empty one
    assert _without_hangul([("pad with -inf", "pad with -inf"), ("a", ""), ("b", "비")]) == [
        ("pad with -inf", "pad with -inf"), ("a", "")]


def test_the_korean_uses_the_glossary_terms():
    pairs = E.text_pairs()
    assert not glossary_misses([(0, en, ko) for en, ko in pairs])
    # and it can fail: an English "stride" whose Korean says 보폭 instead of 스트라이드
    planted = [(0, "2x2, stride 2, x (2, 3, 6, 8)", "2x2, 보폭 2, x (2, 3, 6, 8)")]
    assert [m[1] for m in glossary_misses(planted)] == ["stride"]


def test_a_missing_korean_text_raises_never_shows_english(tmp_path, capsys, monkeypatch):
    path = _write(tmp_path, "answer", HONEST["relu"])
    with monkeypatch.context() as m:
        m.setitem(E.MESSAGES, "summary_pass", (E.MESSAGES["summary_pass"][0], ""))
        assert E.check_command("relu", path, print_fn=lambda line: None) == 0  # English does not need it
        with pytest.raises(MissingTranslation, match="well done"):
            E.check_command("relu", path, print_fn=lambda line: None, lang="ko")
        code, out, err = _run(capsys, "check", "relu", "--file", str(path), "--lang", "ko")
        assert code == 2 and err.count("\n") == 1 and "no Korean text for" in err and "Traceback" not in err
        assert "well done" not in out
        assert _without_hangul([E.MESSAGES["summary_pass"]])  # and the pairs test would have said so
    assert E.MESSAGES["summary_pass"][1]

    relu = E.get("relu")
    checks = relu.checks()
    half = E.Check("planted", ("a check with no Korean", ""), checks[0].run, checks[0].tol, checks[0].hints)
    monkeypatch.setattr(E, "EXERCISES", tuple(
        E.Exercise(ex.number, ex.name, ex.lesson, ex.asks, ex.functions, lambda: [half]) if ex is relu else ex
        for ex in E.EXERCISES))
    with pytest.raises(MissingTranslation, match="a check with no Korean"):
        E.check_command("relu", path, print_fn=lambda line: None, lang="ko")
    assert _without_hangul(E.text_pairs()) == [half.titles]
    monkeypatch.setattr(E, "EXERCISES", tuple(
        E.Exercise(ex.number, ex.name, ex.lesson, (ex.ask, ""), ex.functions, ex.build) if ex.name == "relu" else ex
        for ex in E.EXERCISES))
    with pytest.raises(MissingTranslation):
        E.list_command(print_fn=lambda line: None, lang="ko")


def test_a_text_without_its_pair_is_refused():
    with pytest.raises(TypeError, match="english, korean"):
        E.Check("k", "an English title only", lambda mod: 0.0, 0.0, ("hint", "힌트"))
    with pytest.raises(TypeError, match="english, korean"):
        E.Exercise(99, "x", "01", "an English ask only", ("x",), list)
    with pytest.raises(ValueError, match="lang"):
        E.list_command(print_fn=lambda line: None, lang="fr")


def test_every_stub_states_its_task_in_korean():
    for ex in E.EXERCISES:
        path = STUBS / ex.filename
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = ast.get_docstring(tree)
        english, korean = module.split("\n한국어\n------\n")
        assert not has_hangul(english), ex.name  # the English first, then its Korean
        korean = " ".join(korean.split())
        assert f"fcn-scratch exercise check {ex.name} --lang ko" in korean and "import하지 마세요" in korean
        assert f"연습 문제 {ex.number:02d} (레슨 {ex.lesson})" in korean
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        assert [f.name for f in functions] == list(ex.functions)
        for fn in functions:
            doc = ast.get_docstring(fn)
            english, korean = doc.split("\n한국어: ")
            assert not has_hangul(english) and has_hangul(korean) and len(korean) > 60, (ex.name, fn.name)
