"""Feedback files per student (grade --out DIR --feedback md|tex|pdf): hostile text stays text."""
from __future__ import annotations

import re
import subprocess

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from derivkit.cli import main
from derivkit.grade.export import Result
from derivkit.grade.feedback import latex
from derivkit.grade.judge import Verdict
from derivkit.sheets.texsafe import MATH_COMMANDS
from helpers import needs_tex
from judges import ROOT

MLP = str(ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml")
HOSTILE = r"\input{/etc/passwd} \write18{rm -rf /} 100% & #1 a_b } } \def\x{y} ^^5c $x$ ~"
_CONTROL_WORD = re.compile(r"\\([A-Za-z]+)")


def _result(answer_text: str):
    v = Verdict("q1", "incorrect", 0, 2, diagnosis="sign", feedback="check the sign of (y - t)")
    return Result("eve", [v]), {"q1": answer_text}


def _control_words(answer_text: str, typeset: bool = True) -> set[str]:
    result, answers = _result(answer_text)
    return set(_CONTROL_WORD.findall(latex(result, answers, "T", {"q1": "What is $x$?"}, typeset=typeset)))


#: what escaping itself writes (escape_tex's replacements, Greek letters as $\sigma$, breakable's \allowbreak)
_ESCAPES = {"textbackslash", "textasciicircum", "textasciitilde", "textless", "textgreater", "textbar",
            "allowbreak", "texttt", "textsuperscript", "dots"}


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_an_answer_brings_no_control_word_of_its_own(text):
    """Whatever a student writes, the document's control words are the template's, escaping's,
    or (typeset) whitelisted math — never \\input, \\write, \\def, \\catcode …"""
    allowed = _control_words("x") | _control_words("") | _ESCAPES | MATH_COMMANDS
    assert _control_words(text) <= allowed
    assert _control_words(text, typeset=False) <= allowed


def test_hostile_answer_is_escaped_and_not_typeset():
    result, answers = _result(HOSTILE)
    tex = latex(result, answers, "T")
    assert r"\input" not in tex and r"\write18" not in tex and r"\def" not in tex
    assert r"\fitdisplay{" not in tex.split(r"\begin{document}")[1]   # not whitelisted: text only


def test_whitelisted_answer_is_also_typeset():
    result, answers = _result(r"(\mathbf{y} - \mathbf{t}) \mathbf{h}^\top")
    body = latex(result, answers, "T").split(r"\begin{document}")[1]
    assert r"\fitdisplay{(\mathbf{y} - \mathbf{t}) \mathbf{h}^\top}" in body
    body = latex(result, answers, "T", typeset=False).split(r"\begin{document}")[1]
    assert r"\fitdisplay" not in body


def _class(tmp_path):
    tmp_path.mkdir()
    (tmp_path / "eve.yaml").write_text(
        "student: 'eve \\input{/etc/passwd}'\nanswers:\n  dl_do: " + _yaml(HOSTILE) + "\n  dl_dV: 'x^'\n")
    (tmp_path / "alice.yaml").write_text("student: alice\nanswers:\n  dl_do: 'y - t'\n")
    return tmp_path


def _yaml(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _run(*args):
    return CliRunner().invoke(main, list(args))


def test_grade_writes_latex_feedback(tmp_path):
    r = _run("grade", MLP, str(_class(tmp_path / "in")), "--out", str(tmp_path / "fb"), "--feedback", "tex")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "fb").iterdir()) == ["alice.tex", "eve_input_etc_passwd.tex"]
    assert r"\input{" not in (tmp_path / "fb" / "eve_input_etc_passwd.tex").read_text()


@needs_tex
@pytest.mark.slow
def test_hostile_feedback_compiles_and_shows_the_text_literally(tmp_path):
    """eve's answers compile to PDF (her malformed math falls back to text, with a warning), the PDF
    shows her text as she wrote it, and alice's PDF is written too."""
    r = _run("grade", MLP, str(_class(tmp_path / "in")), "--out", str(tmp_path / "fb"), "--feedback", "pdf")
    assert r.exit_code == 0, r.output
    fb = tmp_path / "fb"
    assert (fb / "alice.pdf").exists()
    assert "warning: eve" in r.output          # x^ passed the whitelist but did not compile
    text = subprocess.run(["pdftotext", str(fb / "eve_input_etc_passwd.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    squeeze = lambda s: re.sub(r"\s+", "", s)            # noqa: E731 - line breaks fall anywhere
    assert squeeze(HOSTILE.replace("~", "")) in squeeze(text.replace("~", "").replace("˜", ""))
    assert "eve \\input{/etc/passwd}" in text
    assert "root:" not in text                 # /etc/passwd was not read


def test_pdf_feedback_without_a_tex_engine_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    r = _run("grade", MLP, str(_class(tmp_path / "in")), "--out", str(tmp_path / "fb"), "--feedback", "pdf")
    assert r.exit_code == 2 and "TeX engine" in r.output and not (tmp_path / "fb").exists()


def test_a_student_whose_pdf_fails_is_reported_and_the_others_are_written(tmp_path, monkeypatch):
    """TeX failing for one student (both tries) costs that student's PDF only."""
    from derivkit.errors import UserError
    from derivkit.grade import feedback
    from derivkit.outputs import write_atomic

    def fake_compile(tex, out):
        if "Student: bob" in tex:
            raise UserError("--pdf: TeX stopped")
        write_atomic(out, b"%PDF-1.5 fake", "PDF")

    monkeypatch.setattr(feedback, "compile_pdf", fake_compile)
    v = Verdict("q1", "correct", 1, 1)
    results = [Result(name, [v]) for name in ("amy", "bob", "cy")]
    subs = [type("Sub", (), {"answers": {"q1": "y - t"}})() for _ in results]
    done = feedback.write_feedback(str(tmp_path), results, subs, "T", "pdf")
    assert [p.name for p in done.written] == ["amy.pdf", "cy.pdf"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["amy.pdf", "cy.pdf"]
    assert len(done.problems) == 2 and all(line.startswith("bob: ") for line in done.problems)


def test_markdown_feedback_names_the_diagnosis(tmp_path):
    (_class(tmp_path / "in") / "bob.yaml").write_text("student: bob\nanswers:\n  dl_do: 't - y'\n")
    r = _run("grade", MLP, str(tmp_path / "in"), "--out", str(tmp_path / "fb"))
    assert r.exit_code == 0, r.output
    assert "Diagnosis: sign" in (tmp_path / "fb" / "bob.md").read_text()
    alice = (tmp_path / "fb" / "alice.md").read_text()
    eve = (tmp_path / "fb" / "eve_input_etc_passwd.md").read_text()
    assert "Diagnosis:" not in alice                    # her one answer is right
    assert eve.count("```") % 2 == 0 and "\\input" in eve  # hostile text stays inside fences
