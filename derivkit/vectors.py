"""Test vectors: leaf values and the value of every node and gradient there.

Students check their own backprop code against these numbers: the leaves are drawn
from a seed, or (some or all of them) given in a file with :func:`read_leaves`, so
derivkit's numbers can be compared at the student's own weights.
"""
from __future__ import annotations

import math
import os

import numpy as np
from yaml.nodes import MappingNode, Node

from . import yamlread
from .errors import Location, UserError, UserErrors
from .expr import concrete
from .derive import Derivation
from .graph import Graph
from .numeric import Program, _class_count, forward_values, random_leaves
from .yamlread import Invalid, Reader, describe, is_number, short


def vectors(g: Graph, d: Derivation, seed: int = 0, at: dict[str, np.ndarray] | None = None) -> dict:
    """The contract's ``vectors`` document (§6) at the problem's ``dims``.

    ``at`` (leaf name -> value, as :func:`read_leaves` returns) replaces those drawn
    leaves; the others keep the values the seed gives them."""
    rng = np.random.default_rng(seed)
    leaves = {**random_leaves(g, rng), **(at or {})}
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
    return concrete(g.shape(name), g.dims)


def to_list(v, integer: bool = False):
    """Nested lists in the shape's order; a class index stays an integer."""
    if integer:
        return int(v)
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a.tolist()


# ----------------------------------------------------------------- given leaves

def read_leaves(path: str | os.PathLike, g: Graph) -> dict[str, np.ndarray]:
    """Leaf values from a JSON (or YAML) file, checked against the problem ``g``."""
    return parse_leaves(yamlread.read_text(path, "leaves file"), str(path), g)


def parse_leaves(text: str, filename: str, g: Graph) -> dict[str, np.ndarray]:
    """The ``leaves`` object of §6 (or a whole vectors document holding one): leaf name
    -> nested lists of the leaf's shape.  Every mistake is one located error, all
    raised together as :class:`UserErrors`; nothing in the text is evaluated."""
    root = yamlread.compose(text, filename, "leaves file")
    if root is None:
        raise UserError("the leaves file is empty; it needs a mapping of leaf names to values, "
                        'e.g. {"x": [0.1, -0.3, 0.7]}', Location(filename, 1, 1))
    r = _LeavesReader(filename, text, g)
    r.scan(root)
    if not r.errors:
        r.ok(r.leaves, _leaves_object(root, g))
    if r.errors:
        raise UserErrors(r.report())
    return r.values


def _leaves_object(root: Node, g: Graph) -> Node:
    """The mapping of leaves: the root, or its ``leaves`` entry when the root is a whole
    vectors document (so the output of ``vectors`` can be edited and fed back)."""
    if isinstance(root, MappingNode) and "leaves" not in g.problem.symbols:
        found = yamlread.child(root, "leaves")
        if found is not None and isinstance(found[1], MappingNode):
            return found[1]
    return root


class _LeavesReader(Reader):
    """Checks each given leaf against its symbol: shape at dims, numbers, target kind."""

    def __init__(self, filename: str, text: str, g: Graph):
        super().__init__(filename, text)
        self.g = g
        self.values: dict[str, np.ndarray] = {}

    def leaves(self, node: Node) -> None:
        symbols = self.g.problem.symbols
        for k, v in self.mapping(node, "the leaves file"):
            name = str(self.scalars.get(id(k), k.value))
            if name not in symbols:
                if name in self.g.nodes or name == self.g.loss:
                    self.error(k, f"'{short(name)}' is a node, not a leaf: its value is computed "
                                  "from the leaves")
                else:
                    self.error(k, f"unknown leaf '{short(name)}'{self.suggest(name, list(symbols))}")
                continue
            value = self.ok(self.leaf, v, symbols[name])
            if value is not None:
                self.values[name] = value

    def leaf(self, node: Node, spec) -> np.ndarray:
        """One leaf's value, or an error (Invalid) at the first entry at fault."""
        dims = self.g.dims
        if spec.kind == "class":
            n = _class_count(self.g, spec.name, dims)
            return np.int64(self.integer(node, f"{spec.name} (a class index)", 0, n - 1))
        shape = concrete(spec.shape, dims)
        value = np.asarray(self.array(node, spec.name, shape, spec.shape), dtype=float)
        if spec.values is not None and float(value) not in spec.values:
            self.fail(node, f"{spec.name} must be one of its declared values "
                            f"{', '.join(f'{x:g}' for x in spec.values)}, found {describe(node)}")
        if spec.kind in ("onehot", "binary") and not np.isin(value, (0.0, 1.0)).all():
            self.fail(node, f"{spec.name} is a {spec.kind} target: every entry must be 0 or 1")
        if spec.kind == "onehot" and value.sum() != 1:
            self.fail(node, f"{spec.name} is a one-hot target: exactly one entry must be 1, "
                            f"found {int(value.sum())}")
        return value

    def array(self, node: Node, what: str, shape: tuple, names: tuple):
        """Nested lists of ``shape`` (``names``: its dims as written) of finite numbers."""
        if not shape:
            value = self.scalar(node, what)
            if not (is_number(value) and math.isfinite(value)):
                self.fail(node, f"{what} must be a finite number, found {describe(node)}")
            return float(value)
        n, size = shape[0], names[0]
        items = self.sequence(node, what)
        if self.is_null(node) or len(items) != n:
            dim = f" ({size} = {n})" if isinstance(size, str) else ""
            self.fail(node, f"{what} must be a list of {n}{dim} "
                            f"{'numbers' if len(shape) == 1 else 'lists'}, found "
                            f"{'nothing' if self.is_null(node) else f'{len(items)} entries'}")
        rows, bad = [], False
        for i, item in enumerate(items):
            try:
                rows.append(self.array(item, f"{what}[{i}]", shape[1:], names[1:]))
            except Invalid:
                bad = True
        if bad:
            raise Invalid
        return rows
