"""Test vectors: random leaf values and the value of every node and gradient there.

Students check their own backprop code against these numbers.
"""
from __future__ import annotations

import numpy as np

from .derive import Derivation
from .graph import Graph
from .numeric import Program, forward_values, random_leaves


def vectors(g: Graph, d: Derivation, seed: int = 0) -> dict:
    """The contract's ``vectors`` document (§6) at the problem's ``dims``."""
    rng = np.random.default_rng(seed)
    leaves = random_leaves(g, rng)
    with np.errstate(all="ignore"):       # undefined there (a log of a negative input): null, no warning
        nodes = forward_values(g, leaves)
        values = {**leaves, **nodes}
        grads = Program({n: d.full[n] for n in g.names if g.kind(n) != "class"}, g.dims).run(values)
    return {
        "id": g.problem.id,
        "seed": seed,
        "dims": dict(g.dims),
        "leaves": {n: to_list(v, g.kind(n) == "class") for n, v in leaves.items()},
        "nodes": {n: to_list(v) for n, v in nodes.items() if n != g.loss},
        "loss": float(nodes[g.loss]),
        "gradients": {n: to_list(np.broadcast_to(v, _shape(g, n))) for n, v in grads.items()},
    }


def _shape(g: Graph, name: str) -> tuple:
    from .expr import concrete
    return concrete(g.shape(name), g.dims)


def to_list(v, integer: bool = False):
    """Nested lists in the shape's order; a class index stays an integer."""
    if integer:
        return int(v)
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a.tolist()
