"""One entry point for students' answers: LaTeX or ASCII, detected automatically.

Text with a LaTeX marker (a backslash, a brace, ``^``, ``'``, ``$`` or any
non-ASCII character such as σ or ⊙) is read by the LaTeX reader.  Other text
is read first by the expression language of problem files
(:func:`derivkit.parse.parse_expression`), where ``dl/do`` is the upstream
gradient ∂l/∂o; if that fails, the LaTeX reader gets its chance (it also
reads ``2 x``, ``h_k(1 - h_k)``, ``Wx``); if both fail, the ASCII reader's
error is raised when the text has the syntax of the expression language, the
LaTeX reader's otherwise.
"""
from __future__ import annotations

import ast
import re

from derivkit.errors import Location, UserError
from derivkit.expr import Expr, grad
from derivkit.parse import MAX_LENGTH, Scope, parse_expression

from .latex_in import read_latex
from .names import AnswerScope
from .position import ANSWER, AnswerError

_LATEX_MARKERS = re.compile(r"[\\{}^'$]|[^\x00-\x7f]")
#: d<loss>/d<name> in ASCII: the same number of characters as the identifier that replaces it
_ASCII_GRAD = re.compile(r"(?<![A-Za-z0-9_.])d([A-Za-z_][A-Za-z0-9_]*)(\s*)/(\s*)d([A-Za-z_][A-Za-z0-9_]*)")


def read_answer(text: str, scope: AnswerScope | Scope, where: Location | None = None) -> Expr:
    """The expression an answer denotes, or AnswerError (a UserError) pointing at the fault."""
    ascope = scope if isinstance(scope, AnswerScope) else AnswerScope.of(scope)
    if not isinstance(text, str):
        raise AnswerError("an answer must be text", "", 0, where)
    if len(text) > MAX_LENGTH:
        raise AnswerError(f"the answer is too long ({len(text)} characters; at most {MAX_LENGTH})",
                          text, MAX_LENGTH, where)
    if not text.strip():
        raise AnswerError("empty answer", text, 0, where)
    if is_latex(text):
        return read_latex(text, ascope, where)
    try:
        return read_ascii(text, ascope, where)
    except AnswerError as ascii_error:
        try:
            return read_latex(text, ascope, where)
        except AnswerError as latex_error:
            raise ascii_error if _ascii_syntax(text) else latex_error


def is_latex(text: str) -> bool:
    """Whether ``text`` carries a mark only LaTeX uses."""
    return _LATEX_MARKERS.search(text) is not None


def read_ascii(text: str, scope: AnswerScope, where: Location | None = None) -> Expr:
    """The expression language of problem files, plus ``dl/do`` for upstream gradients."""
    grads: dict[str, Expr] = {}

    def identifier(m: re.Match) -> str:
        loss, wrt = m.group(1), m.group(4)
        target = scope.scope.lookup(wrt)
        if scope.name_of(loss) != scope.loss or scope.scope.lookup("d" + loss) is not None \
                or target is None or target.op in ("dim", "ivar"):
            return m.group(0)
        name = f"d{loss}_d{wrt}"
        grads[name] = grad(wrt, target.shape, scope.loss)
        return name + " " * (len(m.group(0)) - len(name))

    rewritten = _ASCII_GRAD.sub(identifier, text)
    inner = scope.scope

    def lookup(name: str):
        return grads.get(name) or inner.lookup(name)
    base = where or ANSWER
    try:
        return parse_expression(rewritten, Scope(lookup, inner.names, inner.dims), base)
    except UserError as exc:
        offset = _offset(exc.where, base, rewritten)
        raise AnswerError(exc.message, text, offset, where) from None


def _ascii_syntax(text: str) -> bool:
    """Whether ``text`` is syntactically an expression of the ASCII language (nothing is run)."""
    try:
        ast.parse(" ".join(text.splitlines()).strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _offset(at: Location | None, base: Location, text: str) -> int:
    """The character offset in ``text`` of a Location reported by parse_expression."""
    if at is None or at.column is None or base.column is None:
        return 0
    # parse_expression reads the lines joined by spaces: columns count in that flat text
    return max(0, min(len(text), at.column - base.column))
