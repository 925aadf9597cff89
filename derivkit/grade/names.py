"""How a name written in an answer finds the problem's symbol or node.

A name is read as a :class:`Spelling`: an accent, a base, a subscript, a
parenthesised superscript (``\\hat{y}``, ``W^{(1)}``, ``z_1``, ``\\ell``); fonts
are already gone (``\\mathbf{W}`` is ``W``).  Its :meth:`Spelling.key` is
looked up in a table built once per problem from three sources, later ones
winning:

1. every declared name's default spellings: ``W1`` is ``W1``, ``W_1`` and
   ``W^{(1)}``; ``y_hat`` is ``y_hat``, ``yhat`` and ``\\hat{y}``;
2. the problem's ``latex:`` entries (how the sheets print the name);
3. the problem's ``aliases:`` entries.

Case is kept: ``W`` and ``w`` are different names unless the problem aliases
them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from derivkit.expr import Expr, grad
from derivkit.parse import Scope

from . import notation as N
from .latex_tokens import CMD, END, NUM, WORD, Token, tokenize
from .position import AnswerError


@dataclass(frozen=True)
class Spelling:
    """A name as written: ``accent(base)_sub^(sup)``; ``sub`` keeps its tokens."""

    base: str
    pos: int
    accent: str = ""
    sub: tuple[Token, ...] = ()
    sup: str = ""

    def key(self, with_sub: bool = True) -> str:
        out = f"{self.accent}({self.base})" if self.accent else self.base
        if with_sub and self.sub:
            out += "_" + "".join(t.text for t in self.sub)
        if self.sup:
            out += f"^({self.sup})"
        return out

    @property
    def bare(self) -> bool:
        return not (self.accent or self.sub or self.sup)


def name_base(tok: Token) -> str | None:
    """The base a token gives a name: a word, or a Greek letter without its backslash."""
    if tok.kind == WORD:
        return tok.text
    if tok.kind == CMD and (tok.text in N.GREEK_NAMES or tok.text == r"\delta"):
        return tok.text[1:]
    return None


def read_spelling(toks: list[Token], k: int, base: tuple[str, int] | None = None) -> tuple[Spelling, int] | None:
    """The spelling starting at ``toks[k]`` and the index after it, or None if no name starts there.

    ``base`` overrides the first token (``dl`` read as ``d`` and the name ``l``).
    """
    accent = ""
    if base is None:
        tok = toks[k]
        if tok.kind == CMD and tok.text in N.ACCENTS:
            accent = N.ACCENTS[tok.text]
            k += 1
            braced = toks[k].is_("{")
            inner = read_spelling(toks, k + 1 if braced else k)
            if inner is None or inner[0].accent:
                return None
            spelling, k = inner
            if braced:
                if not toks[k].is_("}"):
                    return None
                k += 1
            spelling = Spelling(spelling.base, tok.pos, accent, spelling.sub, spelling.sup)
            return _decorations(toks, k, spelling)
        b = name_base(tok)
        if b is None:
            return None
        base = (b, tok.pos)
        k += 1
    return _decorations(toks, k, Spelling(base[0], base[1], accent))


def _decorations(toks: list[Token], k: int, s: Spelling) -> tuple[Spelling, int]:
    """A subscript and a parenthesised superscript, in either order, at most one of each."""
    sub, sup = s.sub, s.sup
    for _ in range(2):
        if toks[k].is_("_") and not sub:
            group = braced_group(toks, k + 1)
            if group is None:
                break
            sub, k = group
            if not sub:
                break
        elif (toks[k].is_("^") and not sup and toks[k + 1].is_("{") and toks[k + 2].is_("(")
              and toks[k + 3].kind in (NUM, WORD) and toks[k + 4].is_(")") and toks[k + 5].is_("}")):
            sup = toks[k + 3].text
            k += 6
        else:
            break
    return Spelling(s.base, s.pos, s.accent, tuple(sub), sup), k


def braced_group(toks: list[Token], k: int) -> tuple[list[Token], int] | None:
    """The tokens of ``{...}`` at ``k`` (balanced), or the single token there; and the index after."""
    if toks[k].is_("{"):
        depth, j = 0, k
        while toks[j].kind != END:
            if toks[j].is_("{"):
                depth += 1
            elif toks[j].is_("}"):
                depth -= 1
                if depth == 0:
                    return toks[k + 1:j], j + 1
            j += 1
        return None
    if toks[k].kind == END or toks[k].is_("}", ")", "]"):
        return None
    return [toks[k]], k + 1


def default_keys(name: str) -> list[str]:
    """Spellings a declared name has without any alias: ``W1`` → W1, W_1, W^(1)."""
    keys = [name]
    m = re.fullmatch(r"(.*?)_?(hat|bar|tilde)", name)
    if m and m.group(1):
        keys += [f"{m.group(2)}({k})" for k in default_keys(m.group(1))]
    m = re.fullmatch(r"([A-Za-z]+?)_?(\d+)", name)
    if m:
        keys += [f"{m.group(1)}_{m.group(2)}", f"{m.group(1)}^({m.group(2)})"]
    return keys


def spelling_key(text: str) -> str | None:
    """The key of a LaTeX spelling from a problem file (``'\\hat{\\boldsymbol{y}}'``), or None.

    A spelling followed by one bracketed group (``J(z)``) is the name it starts with.
    """
    try:
        toks = tokenize(text)
    except AnswerError:
        return None
    read = read_spelling(toks, 0)
    if read is None:
        return None
    spelling, k = read
    if toks[k].is_("(") and toks[-2].is_(")"):
        k = len(toks) - 1
    return spelling.key() if toks[k].kind == END else None


@dataclass
class AnswerScope:
    """Everything an answer's names resolve against.

    ``scope`` is the engine's name lookup (leaves, nodes, dims, and the
    question's free index names as ``ivar`` expressions); ``loss`` the name of
    the loss, so ``\\frac{\\partial l}{\\partial o}`` is the upstream gradient
    ∂loss/∂o; ``spellings`` maps spelling keys to declared names.  An alias of
    ``d<loss>_d<name>`` (``dl_do: ['\\delta']``) spells the upstream gradient.
    """

    scope: Scope
    loss: str = "l"
    spellings: dict[str, str] = field(default_factory=dict)
    #: names outside ``scope`` that spellings may lead to: upstream gradients aliased as ``dl_do``
    gradients: dict[str, Expr] = field(default_factory=dict)
    #: class-index targets and their number of classes, so ``\mathbf{e}_t`` is onehot(t, C)
    classes: dict[str, object] = field(default_factory=dict)
    #: named derivatives a question's vocabulary (``using:``) offers: (of, wrt) -> its atom, so
    #: ``\frac{\partial z_2}{\partial z_1}`` reads as the course's ∂z₂/∂z₁ (in the problem's layout)
    derivatives: dict[tuple[str, str], Expr] = field(default_factory=dict)

    @classmethod
    def of(cls, scope: Scope, loss: str = "l", latex: dict[str, str] | None = None,
           aliases: dict[str, list[str]] | None = None, classes: dict | None = None) -> "AnswerScope":
        """An AnswerScope over ``scope``, with the problem's ``latex:`` and ``aliases:`` spellings."""
        table: dict[str, str] = {}
        gradients: dict[str, Expr] = {}
        for name in scope.names():
            for key in default_keys(name):
                table.setdefault(key, name)
        spelled = [(n, [t]) for n, t in (latex or {}).items()] + list((aliases or {}).items())
        for name, texts in spelled:
            target = scope.lookup(name)
            m = re.fullmatch(rf"d{re.escape(loss)}_d(\w+)", name)
            if target is None and m and scope.lookup(m.group(1)) is not None:
                wrt = scope.lookup(m.group(1))
                target = gradients[name] = grad(m.group(1), wrt.shape, loss)
            for text in texts:
                key = spelling_key(text)
                if key is not None and target is not None:
                    table[key] = name
        return cls(scope, loss, table, gradients, dict(classes or {}))

    def name_of(self, key: str) -> str | None:
        return self.spellings.get(key)

    def lookup(self, key: str) -> Expr | None:
        name = self.spellings.get(key)
        if name is None:
            return None
        return self.gradients.get(name) or self.scope.lookup(name)


def answer_scope(graph, question=None, extra: dict[str, Expr] | None = None,
                 derivatives: dict[tuple[str, str], Expr] | None = None) -> AnswerScope:
    """The AnswerScope of a problem's graph, with ``question``'s free index names (``index:``)
    and free variables (an identity's ``vars:``), ``extra`` names and named ``derivatives``."""
    from derivkit.expr import sym
    from derivkit.indexform import ivar
    names = dict(extra or {})
    extra = {n: sym(n, tuple(shape)) for n, shape in (getattr(question, "vars", None) or {}).items()}
    extra.update({n: ivar(n) for n in (getattr(question, "index", None) or {})})
    extra.update(names)
    problem = graph.problem
    scope = AnswerScope.of(graph.scope(extra=extra), graph.loss, problem.latex, problem.aliases,
                           class_counts(graph))
    scope.derivatives = dict(derivatives or {})
    return scope


def class_counts(graph) -> dict[str, object]:
    """Each class-index target and the size of the vector it indexes (a dims name or a number)."""
    out: dict[str, object] = {}
    for e in graph.nodes.values():
        for node in e.walk():
            for axis, i in enumerate(node.args[1:] if node.op == "index" else ()):
                if i.op == "sym" and graph.kind(i.attr) == "class":
                    out.setdefault(i.attr, node.args[0].shape[axis])
            if node.op == "onehot" and node.args[0].op == "sym":
                out.setdefault(node.args[0].attr, node.attr)
    return out
