"""Untrusted text (problem files, student answers) renders harmlessly on a sheet."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derivkit.sheets import sheet_text
from derivkit.sheets.texsafe import escape_md, escape_tex, math_ok, prompt_md, prompt_tex, safe_names
from derivkit.solve import solve
from helpers import needs_tex

HERE = Path(__file__).parent
HOSTILE = HERE / "hostile_sheet.yaml"
ATTACKS = [r"\input{/etc/hostname}", r"\write18{touch PWNED}", "%", "&", "#", "_", "}", "{", "$", "^^5c",
           r"\def\x{1}", r"\catcode`\@=11", "~", "\\", "\n\\end{document}"]

#: what escape_tex may leave: escape sequences, letters and harmless punctuation
_ESCAPES = re.compile(r"\\(?:textbackslash|textasciicircum|textasciitilde|textless|textgreater|textbar|dots)\{\}"
                      r"|\\[{}$&#%_]|\\texttt\{\[U\+[0-9A-F]{4,6}\]\}|\$\\[a-zA-Z]+\$|\\textsuperscript\{[2T]\}")


def _residue(tex: str) -> str:
    return _ESCAPES.sub("", tex)


@given(st.text(max_size=60))
def test_escaped_text_has_no_active_characters(text):
    rest = _residue(escape_tex(text))
    assert not set(rest) & set("\\{}$&#%_^~"), rest


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_attack_is_escaped(attack):
    rest = _residue(escape_tex(attack))
    assert not set(rest) & set("\\{}$&#%_^~")


@given(st.text(max_size=60))
def test_escaped_markdown_has_no_markup(text):
    out = escape_md(text)
    unescaped = re.sub(r"\\.|&(?:lt|gt|amp);", "", out)
    assert not set(unescaped) & set("\\`*_{}[]<>#$|&")


@pytest.mark.parametrize("math", [r"\input{x}", r"\write18{ls}", r"a # b", r"50%", r"^^5c", r"\def\x{1}",
                                  r"x}", r"{x", r"\left( x", r"x & y", r"\csname relax\endcsname",
                                  r"\begin{bmatrix}1\end{bmatrix}", "σ", r"\mathbf{x}\input x"])
def test_math_whitelist_refuses(math):
    assert not math_ok(math)


@pytest.mark.parametrize("math", [r"\frac{\partial l}{\partial \mathbf{y}}", r"\sigma(-s) = 1 - \sigma(s)",
                                  r"\hat{\boldsymbol{y}}_i", r"\left[y_i \log \hat{y}_i\right]", r"W^{(1)}",
                                  r"\sum_{j=1}^{C} e^{o_j}", r"P(y=1 \mid z)", r"i \neq j"])
def test_math_whitelist_accepts_sheet_math(math):
    assert math_ok(math)


def test_prompt_keeps_safe_math_and_escapes_the_rest():
    out = prompt_tex(r"Find $\frac{a}{b}$ and $\input{x}$ at 5% & #")
    assert r"$\frac{a}{b}$" in out
    assert r"\input" not in out.replace(r"\textbackslash{}input", "")
    assert r"\%" in out and r"\&" in out and r"\#" in out
    md = prompt_md(r"Find $\frac{a}{b}$ and $\input{x}$ <script>")
    assert r"$\frac{a}{b}$" in md and "<script>" not in md


def test_refused_display_names_fall_back():
    names = safe_names({"w": r"\input{x}", "h": r"\mathbf{h}", "z": r"z}\write18{x}{"})
    assert names == {"h": r"\mathbf{h}"}


def test_hostile_problem_renders_every_text_inert():
    sol = solve(HOSTILE, train=False)
    tex = sheet_text(sol, "latex")
    for bad in (r"\input", r"\write18", r"\def\x", r"\catcode", r"\csname", "^^5c"):
        assert bad not in tex, bad
    md = sheet_text(sol, "markdown")      # a Markdown escape is a backslash before the character
    assert not re.search(r"(?<!\\)\\(?:input|write18|def|catcode|csname)", md)


@needs_tex
@pytest.mark.slow
def test_hostile_problem_compiles_and_prints_the_text_literally(tmp_path):
    from derivkit.sheets.compile import compile_pdf
    sol = solve(HOSTILE, train=False)
    pdf = tmp_path / "hostile.pdf"
    compile_pdf(sheet_text(sol), pdf)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", "", text)
    for literal in (r"\input{/etc/hostname}", r"\write18{touchPWNED}", "100%&#1_x}{", "^^5c"):
        assert literal in flat, literal
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()
