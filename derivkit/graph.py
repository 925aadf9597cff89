"""The typed computation graph of a problem: leaves, named nodes, the loss.

Built from a :class:`~derivkit.problem.Problem`; every forward expression is
parsed against the names defined before it, so unknown names, shape
mismatches and a non-scalar loss are reported at their place in the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UserError, UserErrors
from .expr import Expr, sym, Expr as _E
from .parse import Scope, parse_expression
from .problem import Problem
from .simplify import Facts


@dataclass
class Graph:
    problem: Problem
    dims: dict[str, int]
    leaves: dict[str, Expr]                 # name -> symbol (with shape)
    nodes: dict[str, Expr]                  # name -> definition, in order; the loss last
    loss: str
    facts: Facts = field(default_factory=Facts)

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
        return Scope(lookup, lambda: list(visible) + list(dims), self.dims)


def build_graph(problem: Problem) -> Graph:
    """Parse every forward expression and the loss; collect all errors."""
    errors: list[UserError] = []
    leaves = {name: sym(name, s.shape) for name, s in problem.symbols.items()}
    g = Graph(problem, dict(problem.dims), leaves, {}, problem.loss.name,
              Facts(frozenset(n for n, s in problem.symbols.items() if s.kind == "onehot")))
    later = {n.name for n in problem.forward} | {problem.loss.name}
    for spec in [*problem.forward, problem.loss]:
        scope = g.scope()
        try:
            expr = parse_expression(spec.expr.value, _forbid_later(scope, later, spec.name), spec.expr.where)
        except UserError as exc:
            errors.append(exc)
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


def _forbid_later(scope: Scope, later: set[str], current: str) -> Scope:
    def lookup(name: str):
        if name in later:
            where = "itself" if name == current else "later"
            raise UserError(f"'{name}' is used before it is defined (it is defined {where})")
        return scope.lookup(name)
    return Scope(lookup, scope.names, scope.dims)
