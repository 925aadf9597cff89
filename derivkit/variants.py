"""Variants of a problem's graph: a named choice set, sizes set, a size of 0 read as "no layer".

A sweep in ``check:`` trains one network per setting; :func:`variant` turns a setting into
the graph that is derived, compiled and trained for it.  It only re-reads the problem's
expressions (no SymPy work), so it is cheap enough to call once per setting.

* A choice (the problem's ``choices:``) is re-read with its new value: ``act(z)`` as
  ``relu(z)``, ``V @ last`` as ``V @ h1``.  When a node choice changes the shape it feeds in
  (``last`` from h3 [H3] to h2 [H2]), the parameters of the expressions that use the choice
  take the new size there (V [K, H3] becomes [K, H2]).
* Nodes and leaves the loss no longer uses are dropped (a depth choice leaves h3, W3, b3).
* A size set to 0 bypasses its layer: the nodes whose shape holds that size go, their one
  outside input u (a non-parameter node or leaf) takes the place of the layer's output
  where it is consumed, and the consumer's parameters get u's size in place of the removed
  one (``y_hat = W2.T @ z3 + b2`` with H = 0 reads ``y_hat = W2.T @ x + b2``, W2 [D, K]);
  a size the network no longer uses is left as it is.

A variant's ``problem`` is the problem reduced to the variant: its symbols (with the new
shapes), forward and choices (each at the value set); its questions are the default
network's and are not carried over.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import replace

from .errors import Location, UserError, UserErrors
from .expr import symbols_in
from .graph import Graph, build_graph
from .problem import Problem
from .yamlread import suggest


def variant(graph: Graph, choices: Mapping[str, str] | None = None,
            dims: Mapping[str, int] | None = None) -> Graph:
    """The graph with each choice in ``choices`` set and each size in ``dims`` set.

    ``graph`` is a problem's graph (:func:`~derivkit.graph.build_graph`); ``choices`` maps a
    choice name to one of its values, ``dims`` size names to sizes (0: the layers of that
    width removed).  Raises UserError located at the setting's place in ``check:`` (its
    ``sweep``/``hidden`` entry, else ``choices:``/``dims``) when the setting does not give a
    valid network, saying why.
    """
    problem = graph.problem
    choices, sizes = dict(choices or {}), {**graph.dims, **(dims or {})}
    for name, value in choices.items():
        if name not in problem.choices:
            raise UserError(f"'{name}' is not a choice of this problem{suggest(name, problem.choices)}",
                            setting_at(problem, name))
        if value not in problem.choices[name]:
            raise UserError(f"'{value}' is not a value of the choice '{name}' (its values: "
                            f"{', '.join(problem.choices[name])})", setting_at(problem, name))
    for d in dims or {}:
        if d not in graph.dims:
            raise UserError(f"'{d}' is not a size of this problem{suggest(d, graph.dims)}", setting_at(problem, d))
    chosen = {**graph.choices, **choices}
    g = graph
    changed = [name for name in chosen if chosen[name] != graph.choices[name]]
    if changed:
        symbols = _reshaped_for_choices(graph, chosen)
        g = _rebuilt(replace(problem, symbols=symbols), chosen, {}, setting_at(problem, changed[0]),
                     ", ".join(f"{name} = {chosen[name]}" for name in changed) + " does not give a valid network")
    g = _pruned(g)
    renames: dict[str, str] = {}
    for d in [d for d, n in (dims or {}).items() if n == 0]:
        g = _bypassed(g, d, renames, setting_at(problem, d))
    return replace(g, dims=sizes)


def choice_errors(graph: Graph) -> list[UserError]:
    """Every value of every choice that does not give a valid network (the others at their
    default), located at the value in ``choices:``; and every choice the forward never uses."""
    problem = graph.problem
    errors = []
    used = set().union(*(_names_in(spec.expr.value) for spec in [*problem.forward, problem.loss]))
    for name, values in problem.choices.items():
        if name not in used:
            errors.append(UserError(f"choice '{name}' is not used by any forward expression or the loss",
                                    problem.locate("choices", name, key=True)))
            continue
        for i, value in enumerate(values):
            try:
                variant(graph, {name: value})
            except UserError as exc:            # says which setting and why; placed at the value
                errors.append(UserError(exc.message, problem.locate("choices", name, i)))
    return errors


def setting_path(problem: Problem, name: str) -> tuple:
    """Where a swept name is set, as a path for ``Problem.locate``: ``check.sweep.<name>``,
    ``check.hidden``, else where it is declared (``choices.<name>``, ``check.dims.<name>``,
    ``dims.<name>``)."""
    check = problem.check if isinstance(problem.check, dict) else {}
    if isinstance(check.get("sweep"), dict) and name in check["sweep"]:
        return ("check", "sweep", name)
    settings = problem.settings
    if "hidden" in check and settings is not None and settings.hidden_dim == name:
        return ("check", "hidden")
    if name in problem.choices:
        return ("choices", name)
    if isinstance(check.get("dims"), dict) and name in check["dims"]:
        return ("check", "dims", name)
    return ("dims", name)


def setting_at(problem: Problem, name: str) -> Location:
    """The place of :func:`setting_path` in the file."""
    return problem.locate(*setting_path(problem, name))


# ----------------------------------------------------------------- the steps

def _reshaped_for_choices(graph: Graph, chosen: dict[str, str]) -> dict:
    """The problem's symbols, with the parameters of each expression that uses a node choice
    resized where the chosen node's shape differs from the one it replaces."""
    problem = graph.problem
    symbols = dict(problem.symbols)
    for name, value in chosen.items():
        old = graph.choices[name]
        if value == old or old not in graph.names or value not in graph.names:
            continue            # a function choice, or one that keeps its value
        at = setting_at(problem, name)
        size_map = _size_map(graph.shape(old), graph.shape(value),
                             f"{name} = {value} does not give a valid network: '{value}' (shape "
                             f"{_show(graph.shape(value))}) cannot take the place of '{old}' (shape "
                             f"{_show(graph.shape(old))})", at)
        if not size_map:
            continue
        users = [s.name for s in [*problem.forward, problem.loss] if name in _names_in(s.expr.value)]
        for user in users:
            for p in sorted(symbols_in(graph.nodes[user])):
                if graph.role(p) == "param":
                    symbols[p] = _resized(symbols[p], size_map, f"{name} = {value} does not give a valid network", at)
    return symbols


def _size_map(old: tuple, new: tuple, why: str, at: Location) -> dict:
    """Size name -> size for the axes where ``new`` differs from ``old`` (same number of axes)."""
    if len(old) != len(new):
        raise UserError(f"{why}: they have different numbers of axes", at)
    out: dict = {}
    for a, b in zip(old, new):
        if a == b:
            continue
        if not isinstance(a, str) or out.get(a, b) != b:
            raise UserError(f"{why}: the sizes differ where no parameter can adapt", at)
        out[a] = b
    return out


def _resized(spec, size_map: dict, why: str, at: Location):
    """A parameter's spec with its axes resized by ``size_map`` (when one of its sizes is
    in it on exactly one axis; on two, which one meets the new input is not known)."""
    hits = [s for s in spec.shape if s in size_map]
    if len(hits) > 1:
        raise UserError(f"{why}: the parameter '{spec.name}' (shape {_show(spec.shape)}) would need a new size, "
                        f"but has {hits[0]} on more than one axis, so which one is not clear", at)
    return replace(spec, shape=tuple(size_map.get(s, s) for s in spec.shape)) if hits else spec


def _pruned(g: Graph) -> Graph:
    """``g`` without the nodes and leaves the loss does not use (its problem likewise)."""
    used, todo = {g.loss}, [g.loss]
    while todo:
        n = todo.pop()
        for s in symbols_in(g.nodes[n]) if n in g.nodes else ():
            if s not in used:
                used.add(s)
                todo.append(s)
    p = g.problem
    problem = replace(p, symbols={k: v for k, v in p.symbols.items() if k in used},
                      forward=[s for s in p.forward if s.name in used], questions=[],
                      choices={k: (v,) for k, v in g.choices.items()})
    return replace(g, problem=problem, leaves={k: v for k, v in g.leaves.items() if k in used},
                   nodes={k: v for k, v in g.nodes.items() if k in used})


def _bypassed(g: Graph, d: str, renames: dict[str, str], at: Location) -> Graph:
    """``g`` (pruned) with the layer of size ``d`` removed; ``renames`` (what names read as,
    kept across bypasses) gains the layer's output read as its input."""
    why = f"{d} = 0 cannot remove a layer"
    fixed = [n for n in g.leaves if g.role(n) != "param" and d in g.shape(n)]
    if fixed:
        raise UserError(f"{why}: it is the size of the {g.role(fixed[0])} '{fixed[0]}'", at)
    block = [n for n, e in g.nodes.items() if d in e.shape]
    if not block and not any(d in g.shape(n) for n in g.leaves):
        return g                # no layer of that size (a depth choice left it out): nothing to remove
    if not block:
        raise UserError(f"{why}: no node has the size {d} (only parameters)", at)
    inside = set(block)
    inputs = sorted({s for n in block for s in symbols_in(g.nodes[n])
                     if s not in inside and g.role(s) != "param"}, key=g.names.index)
    if len(inputs) != 1:
        raise UserError(f"{why}: the layer (nodes {', '.join(block)}) has "
                        + (f"{len(inputs)} inputs ({', '.join(inputs)})" if inputs else "no input")
                        + " besides parameters; one is needed to take its place", at)
    u = inputs[0]
    users = {n: symbols_in(e) for n, e in g.nodes.items() if n not in inside}
    consumers = [n for n, used in users.items() if used & inside]
    outputs = sorted({s for n in consumers for s in users[n] & inside}, key=g.names.index)
    if len(outputs) != 1:
        raise UserError(f"{why}: {len(outputs)} of the layer's nodes ({', '.join(outputs)}) are used "
                        "after it; only one output can be replaced by the input", at)
    o = outputs[0]
    size_map = _size_map(g.shape(o), g.shape(u), f"the layer's input '{u}' (shape {_show(g.shape(u))}) "
                         f"cannot take the place of its output '{o}' (shape {_show(g.shape(o))})", at)
    symbols = dict(g.problem.symbols)
    for p in [p for p in g.leaves if g.role(p) == "param" and d in g.shape(p)]:
        outside = [n for n, used in users.items() if p in used]
        if any(n not in consumers for n in outside):
            raise UserError(f"{why}: its parameter '{p}' is also used by "
                            f"'{next(n for n in outside if n not in consumers)}', after the layer", at)
        if outside:
            symbols[p] = _resized(symbols[p], size_map, why, at)
    for k, v in renames.items():
        if v == o:
            renames[k] = u
    renames[o] = u
    renames.update({c: u for c, v in g.choices.items() if v == o})
    problem = replace(g.problem, symbols=symbols, forward=[s for s in g.problem.forward if s.name not in inside])
    out = _pruned(_rebuilt(problem, g.choices, renames, at, why))
    left = next((n for n, e in [*out.leaves.items(), *out.nodes.items()]
                 if any(d in x.shape or (x.op == "dim" and x.attr == d) for x in e.walk())), None)
    if left is not None:
        raise UserError(f"{why}: '{left}' still uses the size {d} without the layer", at)
    return out


def _rebuilt(problem: Problem, chosen: dict, renames: dict, at: Location, why: str) -> Graph:
    """The graph of ``problem`` read with ``chosen`` and ``renames``; an error is the
    setting's, located at ``at`` and said as ``why: <the error>``."""
    try:
        return build_graph(replace(problem, choices={k: (v,) for k, v in chosen.items()}), renames=renames)
    except UserError as exc:
        raise UserError(f"{why}: {_reason(exc)}", at) from None


# ----------------------------------------------------------------- helpers

def _reason(exc: UserError) -> str:
    """The message of an error in the file (the first of several), with its line."""
    first = exc.errors[0] if isinstance(exc, UserErrors) and exc.errors else exc
    where = f" (at line {first.where.line})" if first.where is not None and first.where.line else ""
    return first.message + where


def _names_in(text: str) -> set[str]:
    """Every name and called function name in an expression (empty if it does not parse)."""
    try:
        tree = ast.parse(" ".join(str(text).splitlines()).strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _show(shape: tuple) -> str:
    return f"[{', '.join(map(str, shape))}]"
