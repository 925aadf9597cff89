"""``derivkit sheet``: outputs, formats, the hand-out, errors as one line with exit 2."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from helpers import BAD_PROBLEMS, SEED_PROBLEMS, needs_tex

from derivkit.cli import main

PROBLEM = next(p for p in SEED_PROBLEMS if "saturation" in p.name)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_sheet_to_stdout_and_to_a_file(tmp_path):
    res = run("sheet", PROBLEM, "--no-train")
    assert res.exit_code == 0 and res.output.startswith("\\documentclass")
    out = tmp_path / "s.tex"
    res = run("sheet", PROBLEM, "--no-train", "-o", out)
    assert res.exit_code == 0 and out.read_text().startswith("\\documentclass")


def test_markdown_and_questions_only(tmp_path):
    res = run("sheet", PROBLEM, "--no-train", "--format", "markdown")
    assert res.exit_code == 0 and res.output.startswith("# ") and "\\boxed" in res.output
    res = run("sheet", PROBLEM, "--questions-only", "--format", "markdown")
    assert res.exit_code == 0 and "\\boxed" not in res.output and "sigmoid\\_neg" in res.output


def test_output_is_checked_before_any_work(tmp_path):
    res = run("sheet", PROBLEM, "-o", tmp_path)               # a directory
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = run("sheet", PROBLEM, "--pdf", "--format", "markdown")
    assert res.exit_code == 2


@pytest.mark.parametrize("bad", BAD_PROBLEMS[:3], ids=lambda p: p.name)
def test_bad_problem_is_one_located_line(bad):
    res = run("sheet", bad, "--no-train")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert str(bad.name) in res.output


def test_pdf_without_a_tex_engine_says_so(monkeypatch, tmp_path):
    import derivkit.sheets.compile as comp
    monkeypatch.setattr(comp.shutil, "which", lambda name: None)
    res = run("sheet", PROBLEM, "--no-train", "--pdf", "-o", tmp_path / "s.pdf")
    assert res.exit_code == 2 and "latexmk" in res.output and not (tmp_path / "s.pdf").exists()


@needs_tex
@pytest.mark.slow
def test_pdf_is_written_next_to_the_name_given(tmp_path):
    res = run("sheet", PROBLEM, "--no-train", "--pdf", "-o", tmp_path / "s.tex")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "s.tex").read_text().startswith("\\documentclass")    # the source kept beside it


@needs_tex
@pytest.mark.slow
def test_tex_failure_exits_2_with_the_first_error(monkeypatch, tmp_path):
    import derivkit.sheets as sheets
    monkeypatch.setattr(sheets, "sheet_text", lambda *a, **k: "\\documentclass{article}\\begin{document}"
                                                              "\\nosuchmacro\\end{document}")
    res = run("sheet", PROBLEM, "--no-train", "--pdf", "-o", tmp_path / "s.pdf")
    assert res.exit_code == 2 and "Undefined control sequence" in res.output
    assert (tmp_path / "s.log").exists() and not (tmp_path / "s.pdf").exists()
    res = run("sheet", PROBLEM, "--no-train", "--pdf", "-o", tmp_path / "t.tex")
    assert res.exit_code == 2 and "nosuchmacro" in (tmp_path / "t.tex").read_text()  # left to look at
