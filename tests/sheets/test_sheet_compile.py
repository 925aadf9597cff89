"""Every problem's sheet compiles to a readable PDF: no TeX errors, no undefined references, nothing off the page."""
from __future__ import annotations

import re
import subprocess

import pytest
from helpers import ALL_PROBLEMS, needs_tex, problem_params, solved

from derivkit.errors import UserError
from derivkit.sheets import sheet_text
from derivkit.sheets.compile import compile_pdf, first_error

#: an overfull box this much too wide (in pt) is invisible; anything more runs into the margin
OVERFULL_PT = 2.0


def _overfull(log: str) -> list[float]:
    return [float(m) for m in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]


def _page_is_not_blank(pdf, tmp_path) -> None:
    """Page 1 as a greyscale PGM: it must have ink (dark pixels) and paper (light pixels)."""
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "40", "-gray", str(pdf), str(tmp_path / "p")],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    (pgm,) = tmp_path.glob("p*.pgm")
    data = pgm.read_bytes()
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    w, h = int(header.group(1)), int(header.group(2))
    pixels = data[header.end():]
    assert len(pixels) == w * h and w > 100 and h > 100
    dark = sum(1 for b in pixels if b < 100)
    light = sum(1 for b in pixels if b > 200)
    assert dark > 0.002 * w * h and light > 0.5 * w * h


@needs_tex
@pytest.mark.slow
@pytest.mark.parametrize("path", problem_params(ALL_PROBLEMS))
def test_sheet_compiles_cleanly(path, tmp_path):
    out = tmp_path / "sheet.pdf"
    result = compile_pdf(sheet_text(solved(path)), out)
    log = result.log
    assert out.read_bytes().startswith(b"%PDF")
    assert "LaTeX Error" not in log and not re.search(r"^! ", log, re.M)
    assert "undefined" not in log.lower() or not re.search(r"(Reference|Citation) .* undefined", log)
    assert not [pt for pt in _overfull(log) if pt > OVERFULL_PT], _overfull(log)
    _page_is_not_blank(out, tmp_path)


@needs_tex
@pytest.mark.slow
def test_questions_only_sheet_compiles(tmp_path):
    out = tmp_path / "questions.pdf"
    compile_pdf(sheet_text(solved(ALL_PROBLEMS[0]), answers=False), out)
    _page_is_not_blank(out, tmp_path)


@needs_tex
@pytest.mark.slow
def test_tex_failure_reports_the_first_error_and_keeps_the_log(tmp_path):
    tex = "\\documentclass{article}\n\\begin{document}\nfine\n\\undefinedmacro\n\\alsoundefined\n\\end{document}\n"
    out = tmp_path / "broken.pdf"
    with pytest.raises(UserError) as info:
        compile_pdf(tex, out)
    assert "Undefined control sequence" in info.value.message and "line 4" in info.value.message
    assert not out.exists()
    assert "undefinedmacro" in (tmp_path / "broken.log").read_text()


def test_first_error_reads_file_line_errors():
    log = "This is pdfTeX\n./sheet.tex:12: Undefined control sequence.\n! Emergency stop.\n"
    assert first_error(log) == "line 12 of the sheet: Undefined control sequence."
    assert first_error("! Missing $ inserted.\n") == "Missing $ inserted."


def test_missing_tex_engine_is_a_clear_user_error(monkeypatch, tmp_path):
    import derivkit.sheets.compile as comp
    monkeypatch.setattr(comp.shutil, "which", lambda name: None)
    with pytest.raises(UserError) as info:
        compile_pdf("x", tmp_path / "a.pdf")
    assert "latexmk" in info.value.message
