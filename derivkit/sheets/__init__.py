"""Solution sheets: the derivation steps as data, rendered as LaTeX (and PDF) or Markdown.

``build_sheet(solution)`` (:mod:`.steps`) collects what a sheet shows;
``render(sheet, "latex" | "markdown")`` (:mod:`.render`) fills the templates;
``compile_pdf(tex, out)`` (:mod:`.compile`) runs TeX.  :func:`sheet_text` is the
one call the ``sheet`` command makes.
"""
from __future__ import annotations

from .render import render, render_steps_markdown
from .steps import Sheet, build_sheet


def sheet_text(solution, fmt: str = "latex", answers: bool = True) -> str:
    """The whole sheet of ``solution`` as LaTeX or Markdown text."""
    return render(build_sheet(solution, answers=answers), fmt)


__all__ = ["Sheet", "build_sheet", "render", "render_steps_markdown", "sheet_text"]
