"""Solution sheets: the derivation steps as data, rendered as LaTeX (and PDF) or Markdown.

``build_sheet(solution)`` (:mod:`.steps`) collects what a sheet shows;
``render_sheet(sheet, "latex" | "markdown")`` (:func:`.render.render`) fills the templates;
``compile_pdf(tex, out)`` (:mod:`.compile`) runs TeX.  :func:`sheet_text` is the
one call the ``sheet`` command makes.
"""
from __future__ import annotations

from .render import render as render_sheet
from .render import render_steps_markdown
from .steps import Sheet, build_sheet


def sheet_text(solution, fmt: str = "latex", answers: bool = True) -> str:
    """The whole sheet of ``solution`` as LaTeX or Markdown text."""
    return render_sheet(build_sheet(solution, answers=answers), fmt)


__all__ = ["Sheet", "build_sheet", "render_sheet", "render_steps_markdown", "sheet_text"]
