"""Initial weights: N(0, σ²) with σ from ``init`` and each parameter's fan-in; biases zero.

Matrices (and vectors or scalars used as weights) start at N(0, 1/fan_in) — Caffe's
"xavier"; ``fan_in`` is the size a matrix product contracts the parameter over — and biases
(parameters only ever added) start at 0.
"""
from __future__ import annotations

import math

import numpy as np

from ..expr import concrete
from ..graph import Graph


def init_params(graph: Graph, dims: dict[str, int], init: str | float, rng: np.random.Generator) -> dict:
    """Weights N(0, σ²) with σ from ``init`` and the fan-in; biases (only ever added) zero."""
    uses = _param_uses(graph)
    out = {}
    for name in graph.leaves:
        if graph.role(name) != "param":
            continue
        shape = concrete(graph.shape(name), dims)
        fan_in, fan_out, bias = uses.get(name, (None, None, False))
        if bias:
            out[name] = np.zeros(shape)
            continue
        fi = dims.get(fan_in, fan_in) if isinstance(fan_in, str) else fan_in
        fo = dims.get(fan_out, fan_out) if isinstance(fan_out, str) else fan_out
        fi = max(int(fi or 1), 1)
        fo = max(int(fo or 1), 1)
        if isinstance(init, float):
            std = init
        elif init == "he":
            std = math.sqrt(2.0 / fi)
        elif init == "glorot":
            std = math.sqrt(2.0 / (fi + fo))
        else:
            std = math.sqrt(1.0 / fi)
        out[name] = np.asarray(rng.normal(0.0, std, size=shape), dtype=np.float64)
    return out


def _param_uses(graph: Graph) -> dict[str, tuple]:
    """param -> (fan_in, fan_out, is_bias) from how the expressions use it."""
    params = {n for n in graph.leaves if graph.role(n) == "param"}
    fan: dict[str, tuple] = {}
    other_use: set[str] = set()
    added: set[str] = set()
    for e in graph.nodes.values():
        for node in e.walk():
            for pos, a in enumerate(node.args):
                base, transposed = (a.args[0], True) if a.op == "T" and a.args and a.args[0].op == "sym" else (a, False)
                if base.op != "sym" or base.attr not in params:
                    continue
                p = base.attr
                if node.op in ("add", "sub"):
                    added.add(p)
                    continue
                other_use.add(p)
                if node.op == "matmul" and p not in fan:
                    shape = graph.shape(p)
                    s = shape if len(shape) == 2 else ((shape[0], 1) if shape else (1, 1))
                    if transposed:
                        s = (s[1], s[0])
                    # left operand [out, in] contracts its columns; right operand [in, out] its rows
                    fan[p] = (s[1], s[0]) if pos == 0 else (s[0], s[1])
    out = {}
    for p in params:
        if p in fan:
            out[p] = fan[p] + (False,)
        else:
            out[p] = (1, 1, p in added and p not in other_use)
    return out


