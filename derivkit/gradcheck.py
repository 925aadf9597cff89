"""Gradient check: the compiled derived gradients against central finite differences.

For every continuous leaf (parameters, inputs, real-valued targets) and every named node,
each entry of the loss's gradient is estimated by central differences in float64,

    ∂l/∂θᵢ ≈ (l(θ + ε eᵢ) − l(θ − ε eᵢ)) / 2ε,      ε = 1e-6,

with the loss computed by the same NumPy forms training uses, and compared with
``derivation.full[name]`` compiled and evaluated there.  A node is perturbed with the nodes
before it held fixed and the nodes after it recomputed, so its check is the check of the
total derivative the reverse pass claims.  Class-index, one-hot and binary targets and
leaves with a declared finite domain (``values:``) are not perturbed (no derivative exists).

Points: ``points`` random points (seeds ``seed``, ``seed + 1``, ...; leaves drawn as
:func:`~derivkit.numeric.random_leaves` does), at the problem's ``dims`` unless given.  A
point is drawn again when the loss is not finite there or when an input of ``relu``,
``relu_prime`` or ``abs`` lies within 1e-4 of its kink at 0, where no derivative exists.

Measures, per leaf or node and point:

* ``max_rel_error`` — norm-based, ‖g − ĝ‖ / max(‖g‖ + ‖ĝ‖, 1e-8), the largest over all
  leaves, nodes and points.  It lies in [0, 1] (1 = unrelated or of the wrong shape).
* ``max_entry_rel_error`` — the same per entry, |gᵢ − ĝᵢ| / max(|gᵢ| + |ĝᵢ|, 1e-8).  A
  correct gradient can show ~1e-6 here on an entry that is nearly zero (the difference
  quotient's rounding error is ~1e-10 absolute), so it is reported but does not decide.

The check passes when ``max_rel_error <= THRESHOLD = 1e-6``.  A correct derivation gives
~1e-9 (the central difference's truncation error ε² and rounding error 1e-16/ε); any real
mistake — a sign, a transpose, a missing factor — gives 1e-2 to 1.
"""
from __future__ import annotations

import numpy as np

from .expr import Expr, substitute, sym
from .graph import Graph
from .numeric import Program, forward_values, random_leaves
from .ops import OPS

THRESHOLD = 1e-6
EPS = 1e-6
FLOOR = 1e-8
KINK = 1e-4
MAX_TRIES = 50


def checked_leaves(graph: Graph) -> list[str]:
    """Leaves with a derivative: not class/onehot/binary targets, not finite domains."""
    out = []
    for name in graph.leaves:
        spec = graph.problem.symbols.get(name)
        if spec is not None and (getattr(spec, "values", None) or spec.kind in ("class", "onehot", "binary")):
            continue
        out.append(name)
    return out


def _inline(graph: Graph, after: str | None = None) -> dict[Expr, Expr]:
    from .train import inline_nodes
    return inline_nodes(graph, after)


def _distinct(e: Expr) -> Expr:
    from .train import distinct_atoms
    return distinct_atoms(e)


def _program(outputs: dict, dims: dict) -> Program:
    from .train import distinct_atoms
    memo: dict = {}
    return Program({k: distinct_atoms(e, memo) for k, e in outputs.items()}, dims)


def _kink_args(exprs) -> list[Expr]:
    seen: dict[Expr, None] = {}
    for e in exprs:
        for node in e.walk():
            if OPS[node.op].kink and node.args:
                seen.setdefault(node.args[0], None)
    return list(seen)


def _rel(diff: float, a: float, b: float) -> float:
    return diff / max(a + b, FLOOR)


def gradcheck(graph: Graph, derivation, *, points: int = 3, seed: int = 0, dims: dict | None = None,
              eps: float = EPS, nodes: bool = True) -> dict:
    """Check every derived gradient of the loss against central differences; see the module doc.

    Returns ``{"max_rel_error", "max_entry_rel_error", "passed", "threshold", "points", "eps",
    "per_leaf": {name: error}, "per_node": {name: error}, "worst": name}``.
    """
    dims = dict(graph.dims if dims is None else dims)
    leaves = checked_leaves(graph)
    full_map = _inline(graph)
    loss_expr = full_map[sym(graph.loss)]
    loss_prog = _program({"l": loss_expr}, dims)
    # the leaves' gradients written over the leaves alone, as training compiles them
    grads_prog = _program({n: substitute(_distinct(derivation.full[n]), full_map) for n in leaves},
                          dims) if leaves else None
    node_names = [n for n in graph.nodes if n != graph.loss] if nodes else []
    node_loss = {}
    for n in node_names:
        after = _inline(graph, after=n)
        node_loss[n] = _program({"l": after[sym(graph.loss)] if after else sym(graph.loss)}, dims)
    node_grads = _program({n: derivation.full[n] for n in node_names}, dims) if node_names else None
    kinks = _kink_args([loss_expr] + [substitute(_distinct(derivation.full[n]), full_map)
                                      for n in leaves + node_names])
    kink_prog = _program({i: k for i, k in enumerate(kinks)}, dims) if kinks else None

    per_leaf = {n: 0.0 for n in leaves}
    per_node = {n: 0.0 for n in node_names}
    entry_max = 0.0
    used = 0
    for p in range(points):
        values = _draw(graph, loss_prog, kink_prog, dims, seed + p)
        if values is None:
            continue
        used += 1
        with np.errstate(all="ignore"):
            analytic = grads_prog.run(values) if grads_prog else {}
            for n in leaves:
                num = _numeric(lambda v: loss_prog.run(v)["l"], values, n, eps)
                err, entry = _compare(analytic[n], num)
                per_leaf[n] = max(per_leaf[n], err)
                entry_max = max(entry_max, entry)
            if node_names:
                fwd = forward_values(graph, values, dims)
                allv = {**values, **fwd}
                an_nodes = node_grads.run(allv)
                for n in node_names:
                    num = _numeric(lambda v, _p=node_loss[n]: _p.run(v)["l"], allv, n, eps)
                    err, entry = _compare(an_nodes[n], num)
                    per_node[n] = max(per_node[n], err)
                    entry_max = max(entry_max, entry)
    errors = list(per_leaf.values()) + list(per_node.values())
    worst = max(errors) if errors else 0.0
    if used == 0:
        worst = 1.0
    everything = {**per_leaf, **per_node}
    return {
        "max_rel_error": float(worst),
        "max_entry_rel_error": float(entry_max),
        "passed": bool(used > 0 and worst <= THRESHOLD),
        "threshold": THRESHOLD,
        "points": used,
        "eps": eps,
        "per_leaf": {k: float(v) for k, v in per_leaf.items()},
        "per_node": {k: float(v) for k, v in per_node.items()},
        "worst": max(everything, key=everything.get) if everything else None,
    }


def _draw(graph, loss_prog, kink_prog, dims, seed) -> dict | None:
    """Random leaf values where the loss is finite and no kink is within reach."""
    rng = np.random.default_rng(seed)
    for attempt in range(MAX_TRIES):
        values = random_leaves(graph, rng, dims, positive=attempt >= MAX_TRIES // 2)
        values = {k: (np.asarray(v, dtype=np.float64) if not isinstance(v, np.integer) else v)
                  for k, v in values.items()}
        with np.errstate(all="ignore"):
            try:
                loss = loss_prog.run(values)["l"]
            except (ValueError, IndexError, ZeroDivisionError):
                continue
            if not np.all(np.isfinite(loss)):
                continue
            if kink_prog is not None:
                ks = kink_prog.run(values)
                if any(np.size(v) and np.min(np.abs(v)) < KINK for v in ks.values()):
                    continue
        return values
    return None


def _numeric(loss, values: dict, name: str, eps: float) -> np.ndarray:
    """Central differences of ``loss(values)`` with respect to every entry of ``values[name]``."""
    base = np.array(values[name], dtype=np.float64)
    out = np.zeros(base.shape)
    v = dict(values)
    for idx in np.ndindex(*base.shape):
        plus = base.copy()
        plus[idx] += eps
        minus = base.copy()
        minus[idx] -= eps
        v[name] = plus
        lp = float(loss(v))
        v[name] = minus
        lm = float(loss(v))
        out[idx] = (lp - lm) / (2 * eps)
    return out


def _compare(analytic, numeric: np.ndarray) -> tuple[float, float]:
    """Norm-based and largest per-entry relative error; 1.0 for a wrong shape or a non-number."""
    a = np.asarray(analytic, dtype=np.float64)
    if a.shape != numeric.shape:
        if a.size == 1 and numeric.size == 1:
            a = a.reshape(numeric.shape)
        elif a.ndim == 0:          # a scalar spread over every entry (a zero gradient, say)
            a = np.broadcast_to(a, numeric.shape)
        else:
            return 1.0, 1.0
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(numeric))):
        return 1.0, 1.0
    diff = float(np.linalg.norm(a - numeric))
    err = _rel(diff, float(np.linalg.norm(a)), float(np.linalg.norm(numeric)))
    if a.size:
        entry = float(np.max(np.abs(a - numeric) / np.maximum(np.abs(a) + np.abs(numeric), FLOOR)))
    else:
        entry = 0.0
    return err, entry
