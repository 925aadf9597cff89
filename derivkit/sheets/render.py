"""Rendering a :class:`~derivkit.sheets.steps.Sheet` with the Jinja2 templates in ``templates/``.

The LaTeX template uses delimiters that cannot clash with TeX: ``\\VAR{…}`` for a
value, ``\\BLOCK{…}`` for a statement, ``\\#{…}`` and lines starting ``%#`` for
template comments (TeX's own ``%`` comments pass through).  Undefined names fail
(StrictUndefined); there is no autoescaping: every text from a problem goes through
an explicit filter (``tex``, ``prompt``), and every formula through ``math``, which
refuses anything outside the whitelist of :mod:`derivkit.sheets.texsafe`.

Templates are found in the installed package (``derivkit/templates``, placed there
by the wheel build) or, in a source checkout, in the repository's ``templates/``.
"""
from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jinja2

from .linebreak import PAGE_WIDTH, width
from .texsafe import escape_md, escape_tex, math_ok, prompt_md, prompt_tex

LATEX_TEMPLATE = "sheet.tex.j2"
MARKDOWN_TEMPLATE = "sheet.md.j2"


def template_dir() -> Path:
    """The wheel's ``derivkit/templates`` if present, else the checkout's ``templates/``."""
    packaged = resources.files("derivkit") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "templates"


def safe_math(tex: str) -> str:
    """``tex`` itself when it is whitelisted math, else a harmless text rendering of it."""
    if math_ok(tex, environments=True):
        return tex
    return r"\text{\texttt{" + escape_tex(tex) + "}}"


def breakable_tex(text) -> str:
    """``text`` escaped (:func:`escape_tex`) with a permitted line break after every character,
    so a long answer without spaces still wraps inside the page."""
    return r"\allowbreak{}".join(escape_tex(ch) for ch in str(text))


def _number(x, digits: int = 3) -> str:
    if x is None:
        return "--"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)) and not math.isfinite(x):
        return "diverged"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if x == 0 or 1e-3 <= abs(x) < 1e4 else f"{x:.{digits - 1}e}"
    return str(x)


def _sci(x) -> str:
    """A number for LaTeX: 1.2e-09 becomes 1.2\\times10^{-9} (math)."""
    if x is None:
        return r"\text{--}"
    if isinstance(x, float) and not math.isfinite(x):
        return r"\infty"
    s = f"{x:.2g}" if isinstance(x, float) else str(x)
    if "e" in s:
        mant, exp = s.split("e")
        return rf"{mant} \times 10^{{{int(exp)}}}"
    return s


def _rule_width(rule) -> float:
    """Printed width of a rule note (small type: about three quarters of a formula character)."""
    if rule is None:
        return 0.0
    return 0.75 * (len(rule.name) + width(rule.formula) + width(rule.detail)) + 3


def _beside(lines) -> bool:
    """Whether every step's rule fits in a column right of the formulas (else each goes below its step).

    One decision per derivation keeps its rules in one column.
    """
    formulas = max((width(ln.lhs) + max(width(r) for r in ln.rhs) for ln in lines), default=0)
    rules = max((_rule_width(ln.rule) for ln in lines), default=0)
    return formulas + rules <= PAGE_WIDTH


@lru_cache(maxsize=None)
def _environment(directory: str, markdown: bool) -> jinja2.Environment:
    common = dict(loader=jinja2.FileSystemLoader(directory), undefined=jinja2.StrictUndefined,
                  autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    if markdown:
        env = jinja2.Environment(**common)
    else:
        env = jinja2.Environment(block_start_string=r"\BLOCK{", block_end_string="}",
                                 variable_start_string=r"\VAR{", variable_end_string="}",
                                 comment_start_string=r"\#{", comment_end_string="}",
                                 line_statement_prefix=None, line_comment_prefix="%#", **common)
    env.filters.update(tex=escape_tex, breakable=breakable_tex, prompt=prompt_tex, md=escape_md, prompt_md=prompt_md,
                       math=safe_math, number=_number, sci=_sci, beside=_beside)
    return env


def render(sheet, fmt: str = "latex") -> str:
    """The sheet as LaTeX (``fmt="latex"``) or Markdown with KaTeX math (``fmt="markdown"``)."""
    markdown = fmt == "markdown"
    env = _environment(str(template_dir()), markdown)
    template = env.get_template(MARKDOWN_TEMPLATE if markdown else LATEX_TEMPLATE)
    return template.render(sheet=sheet).lstrip("\n")      # the template's leading comment lines


def render_steps_markdown(lines) -> str:
    """A question's steps (:class:`~derivkit.sheets.steps.Line` s) as Markdown, e.g. for a grader's feedback."""
    env = _environment(str(template_dir()), True)
    return env.get_template("steps.md.j2").render(lines=lines)


def render_latex_template(name: str, **context) -> str:
    """Any LaTeX template of ``templates/`` (same delimiters and filters as the sheet), e.g. a grader's feedback."""
    env = _environment(str(template_dir()), False)
    return env.get_template(name).render(**context).lstrip("\n")
