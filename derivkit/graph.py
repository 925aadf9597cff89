"""The typed computation graph of a problem: leaves, named nodes, the loss.

Built from a :class:`~derivkit.problem.Problem`; every forward expression is
parsed against the names defined before it, so unknown names, shape
mismatches and a non-scalar loss are reported at their place in the file.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import Location, UserError, UserErrors
from .expr import Expr, sym, Expr as _E
from .parse import Scope, _at, _char_col, _lead, parse_expression
from .problem import Problem
from .simplify import Facts
from .yamlread import MAX_CANDIDATES, suggest


@dataclass
class Graph:
    problem: Problem
    dims: dict[str, int]
    leaves: dict[str, Expr]                 # name -> symbol (with shape)
    nodes: dict[str, Expr]                  # name -> definition, in order; the loss last
    loss: str
    facts: Facts = field(default_factory=Facts)
    #: the value each of the problem's choices has in this graph (the defaults unless a variant)
    choices: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.leaves) + list(self.nodes)

    def ref(self, name: str) -> Expr:
        if name in self.leaves:
            return self.leaves[name]
        return sym(name, self.nodes[name].shape)

    def shape(self, name: str) -> tuple:
        return self.ref(name).shape

    def kind(self, name: str) -> str | None:
        spec = self.problem.symbols.get(name)
        return spec.kind if spec else None

    def role(self, name: str) -> str:
        spec = self.problem.symbols.get(name)
        return spec.role if spec else ("loss" if name == self.loss else "node")

    def consumers(self) -> dict[str, list[str]]:
        """Which nodes use each name directly."""
        from .expr import symbols_in
        out: dict[str, list[str]] = {n: [] for n in self.names}
        for n, e in self.nodes.items():
            for s in symbols_in(e):
                out[s].append(n)
        return out

    def scope(self, extra: dict[str, Expr] | None = None, upto: str | None = None) -> Scope:
        """Names visible to an expression: leaves, nodes (before ``upto``), dims, ``extra``."""
        visible = dict(self.leaves)
        for n in self.nodes:
            if n == upto:
                break
            visible[n] = self.ref(n)
        visible.update(extra or {})
        dims = {d: _E("dim", (), d, ()) for d in self.dims}

        def lookup(name: str):
            return visible.get(name) or dims.get(name)
        return Scope(lookup, lambda: list(visible) + list(dims), self.dims, renames=self.choices)


def build_graph(problem: Problem, choices: Mapping[str, str] | None = None, *,
                renames: Mapping[str, str] | None = None) -> Graph:
    """Parse every forward expression and the loss; collect all errors.

    Each expression sees the leaves, the nodes defined before it and the dims; a name
    defined later (or the node itself) is reported at its place in the expression, and
    so is an index that is neither an integer nor a class-index target.  A choice's name
    reads as its value in ``choices``, else its default (the first); ``renames`` are
    further names read as others (a bypassed layer's output as its input).  Shapes are the
    problem's: :func:`derivkit.variants.variant` also resizes the parameters a choice feeds."""
    chosen = {**problem.default_choices, **_checked(problem, choices or {})}
    errors: list[UserError] = []
    leaves = {name: sym(name, s.shape) for name, s in problem.symbols.items()}
    g = Graph(problem, dict(problem.dims), leaves, {}, problem.loss.name,
              Facts(frozenset(n for n, s in problem.symbols.items() if s.kind == "onehot")), chosen)
    read_as = {**chosen, **(renames or {})}
    later = {n.name for n in problem.forward} | {problem.loss.name}
    class_targets = {n for n, s in problem.symbols.items() if s.kind == "class"}
    for spec in [*problem.forward, problem.loss]:
        scope = _DefinedSoFar(g, later, spec.name, read_as)
        try:
            expr = parse_expression(spec.expr.value, scope.scope(), spec.expr.where)
            _check_indices(spec.expr.value, spec.expr.where, class_targets)
        except UserError as exc:
            errors.append(scope.explain(exc))
            expr = None
        if expr is not None and spec is problem.loss and expr.shape != ():
            errors.append(UserError(f"the loss '{spec.name}' must be a scalar, but its shape is "
                                    f"[{', '.join(map(str, expr.shape))}] (wrap it in sum() or mean())",
                                    spec.expr.where))
        if expr is None:
            break
        g.nodes[spec.name] = expr
        later.discard(spec.name)
    if errors:
        raise UserErrors(errors)
    return g


def _checked(problem: Problem, choices: Mapping[str, str]) -> Mapping[str, str]:
    """``choices`` if each names a choice of the problem and one of its values."""
    for name, value in choices.items():
        if name not in problem.choices:
            raise UserError(f"'{name}' is not a choice of this problem"
                            f"{suggest(name, problem.choices)}", problem.locate("choices"))
        if value not in problem.choices[name]:
            raise UserError(f"'{value}' is not a value of the choice '{name}' (its values: "
                            f"{', '.join(problem.choices[name])})", problem.locate("choices", name))
    return choices


class _DefinedSoFar:
    """The scope of one definition: leaves, nodes defined so far, dims (no copies, so
    building a graph of n nodes costs O(n), not O(n²)).  A name defined later is left
    unknown, so the parser locates it; :meth:`explain` then says why it is unknown."""

    def __init__(self, g: Graph, later: set[str], current: str, renames: Mapping[str, str]):
        self.g, self.later, self.current, self.renames = g, later, current, renames
        self.too_early: str | None = None

    def lookup(self, name: str) -> Expr | None:
        g = self.g
        if name in self.later:
            self.too_early = name
            return None
        if name in g.leaves:
            return g.leaves[name]
        if name in g.nodes:
            return g.ref(name)
        return _E("dim", (), name, ()) if name in g.dims else None

    def names(self) -> list[str]:
        """Candidates for a suggestion: a bounded list."""
        out = []
        for group in (self.g.leaves, self.g.nodes, self.g.dims):
            out += list(group)[:MAX_CANDIDATES - len(out)]
        return out

    def scope(self) -> Scope:
        return Scope(self.lookup, self.names, self.g.dims, renames=self.renames)

    def explain(self, exc: UserError) -> UserError:
        if self.too_early is None or isinstance(exc, UserErrors):
            return exc
        where = "itself" if self.too_early == self.current else "later"
        return UserError(f"'{self.too_early}' is used before it is defined (it is defined {where})",
                         exc.where)


def _check_indices(text: str, where: Location | None, class_targets: set[str]) -> None:
    """An index must be an integer literal or a class-index target (``p[t]``): not
    arithmetic (``w[1+5]``) nor a real-valued scalar (``x[s]``)."""
    flat = " ".join(text.splitlines())
    body = flat.strip()
    for node in ast.walk(ast.parse(body, mode="eval")):
        if not isinstance(node, ast.Subscript):
            continue
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for p in parts:
            if isinstance(p, ast.Constant) and type(p.value) is int:
                continue
            if isinstance(p, ast.Name) and p.id in class_targets:
                continue
            written = ast.get_source_segment(body, p) or "?"
            what = (f"'{written}' is not a class-index target" if isinstance(p, ast.Name)
                    else f"'{written}' is computed")
            raise UserError(f"an index must be an integer (v[0]) or a class-index target (p[t]); "
                            f"{what}", _at(where, _char_col(body, p.col_offset) + _lead(flat)))
