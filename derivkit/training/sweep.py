"""The settings of a sweep and the network each one trains.

:func:`plan` lists the settings (the Cartesian product of ``check.sweep``'s lists, ``lr`` in
each); :class:`Builder` turns a setting into its graph (:func:`derivkit.variants.variant`),
derivation and compiled program, deriving and gradient-checking each new structure once.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..checkspec import Settings
from ..errors import UserError
from ..graph import Graph
from ..variants import setting_at, variant
from .binding import Binding, Data, check_at
from .compile import Compiled, compile_problem
from .init import init_params
from .loop import check_runs


def plan(s: Settings) -> list[dict]:
    """Every setting: the Cartesian product of the swept lists (the first key outermost), each
    as {"lr": ..., then the other swept keys}."""
    sweep = dict(s.sweep) if "lr" in s.sweep else {**s.sweep, "lr": s.lrs[:1]}
    keys = list(sweep)
    order = ["lr"] + [k for k in keys if k != "lr"]
    return [{k: dict(zip(keys, values))[k] for k in order} for values in itertools.product(*sweep.values())]


def describe(setting: dict) -> str:
    """``lr = 0.1, H = 3, act = relu``."""
    return ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in setting.items())


class Builder:
    """Each setting's graph, derivation and compiled program; a new structure is derived and
    gradient-checked once (the problem's own was checked by ``solve``)."""

    def __init__(self, graph: Graph, derivation, binding: Binding, s: Settings, tr: Data):
        self.graph, self.binding, self.s, self.tr = graph, binding, s, tr
        self.derived: list[tuple[Graph, Any]] = [(graph, derivation)]
        self.compiled: dict[tuple, tuple[Graph, Compiled]] = {}

    def build(self, setting: dict) -> tuple[Graph, Compiled]:
        s, graph = self.s, self.graph
        choices = {k: v for k, v in setting.items() if k != "lr" and isinstance(v, str)}
        sizes = {k: v for k, v in setting.items() if k != "lr" and not isinstance(v, str)}
        dims = {**self.binding.dims, **sizes}
        key = (tuple(choices.items()), tuple(sorted(dims.items())))
        if key in self.compiled:
            return self.compiled[key]
        vg = variant(graph, choices=choices or None, dims=dims)
        derivation = self._derivation(vg, setting, {k: 0 for k, v in sizes.items() if v == 0})
        comp = compile_problem(vg, derivation, dims)
        where = setting_at(graph.problem, next(iter(sizes))) if sizes else None
        check_runs(comp, self.binding, self.tr, init_params(vg, dims, s.init, np.random.default_rng(s.seed)),
                   sizes, where)
        self.compiled[key] = vg, comp
        return vg, comp

    def _derivation(self, vg: Graph, setting: dict, zeros: dict):
        for known, derivation in self.derived:
            if _same_structure(known, vg):
                return derivation
        from ..derive import derive
        from ..gradcheck import gradcheck
        derivation = derive(vg, readable_forms=False)
        check = gradcheck(vg, derivation, dims={**self.graph.dims, **zeros})
        if not check.passed:
            raise UserError(f"the network of setting {describe(setting)} fails the gradient check "
                            f"(max relative error {check.max_rel_error:.2e}); its derived gradients are wrong",
                            check_at(self.graph, "sweep"))
        self.derived.append((vg, derivation))
        return derivation


def _same_structure(a: Graph, b: Graph) -> bool:
    """The same leaves, forward and loss (sizes aside): one derivation serves both."""
    return a.leaves == b.leaves and a.nodes == b.nodes and a.loss == b.loss
