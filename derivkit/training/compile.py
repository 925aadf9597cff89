"""A problem compiled for minibatch training, and the node that predicts the class.

:func:`compile_problem` takes the matrix-form gradients of the reverse pass
(``derivation.full``), writes every named node out over the leaves, and hands the loss and
every parameter gradient to one :class:`~derivkit.numeric.Program`: common
sub-expressions (the forward pass) are computed once, the sum over a minibatch of an outer
product ``δ xᵀ`` is one matrix product ``Δᵀ X``, so one call gives the loss and all
gradients of a whole minibatch, as hand-written backprop would.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..expr import Expr, substitute, sym, symbols_in
from ..graph import Graph
from ..numeric import Program, Plan, distinct_atoms, inline_nodes


@dataclass
class Compiled:
    """A problem compiled for minibatches at one set of sizes.

    ``step(values)`` gives the loss summed over the minibatch and every parameter's
    gradient summed over it; ``evaluate`` the per-sample losses (and predictions).
    """

    graph: Graph
    dims: dict[str, int]
    params: list[str]
    batched: frozenset
    program: Program
    #: gradients that do not depend on the data (a penalty on the weights alone): times the batch size
    data_free: frozenset = frozenset()
    prediction: Expr | None = None
    loss_expr: Expr | None = None
    _eval: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.plan: Plan = self.program.plan(self.batched)

    def step(self, values: dict) -> tuple[float, dict[str, np.ndarray]]:
        out = self.plan.run(values)
        loss = out.pop("loss")
        if self.data_free:
            n = len(next(values[k] for k in self.batched))
            for k in self.data_free:
                out[k] = out[k] * n
        return float(loss), out

    def evaluate(self, values: dict, predict: bool = False) -> dict[str, np.ndarray]:
        """Per-sample ``loss`` (shape (B,)) and, with ``predict``, the prediction ``pred``."""
        key = bool(predict and self.prediction is not None)
        if key not in self._eval:
            outputs = {"loss": self.loss_expr}
            if key:
                outputs["pred"] = self.prediction
            self._eval[key] = Program(outputs, self.dims).plan(self.batched)
        return self._eval[key].run(values)


def compile_problem(graph: Graph, derivation, dims: dict[str, int] | None = None,
                    batched: set[str] | None = None) -> Compiled:
    """Compile the loss and every parameter gradient for whole minibatches, once per problem.

    ``batched`` are the leaves that carry a batch axis (default: inputs and targets); the
    parameters do not.
    """
    dims = dict(graph.dims if dims is None else dims)
    if batched is None:
        batched = {n for n in graph.leaves if graph.role(n) in ("input", "target")}
    params = [n for n in graph.leaves if graph.role(n) == "param"]
    mapping = inline_nodes(graph)
    memo: dict = {}
    loss = distinct_atoms(mapping[graph.ref(graph.loss)], memo)
    outputs = {"loss": loss}
    data_free = set()
    for p in params:
        e = substitute(distinct_atoms(derivation.full[p], memo), mapping)
        outputs[p] = e
        if not (symbols_in(e) & set(batched)):
            data_free.add(p)
    program = Program(outputs, dims, batch_sum=set(outputs))
    prediction = find_prediction(graph, mapping)
    return Compiled(graph, dims, params, frozenset(batched), program, frozenset(data_free),
                    None if prediction is None else distinct_atoms(prediction, memo), loss)


def _target_name(graph: Graph) -> str | None:
    targets = [n for n in graph.leaves if graph.role(n) == "target"]
    return targets[0] if len(targets) == 1 else None


def find_prediction(graph: Graph, mapping: dict[Expr, Expr]) -> Expr | None:
    """The expression whose argmax is the predicted class (onehot/class targets), or None."""
    target = _target_name(graph)
    if target is None:
        return None
    kind = graph.kind(target)
    loss = mapping[graph.ref(graph.loss)]
    if kind == "class":
        for node in loss.walk():
            if node.op == "index" and len(node.args) == 2 and node.args[1] == sym(target) \
                    and len(node.args[0].shape) == 1 and target not in symbols_in(node.args[0]):
                return node.args[0]
        shape = _class_shape(graph, target)
    elif kind == "onehot":
        shape = graph.shape(target)
    else:
        return None
    if shape is None:
        return None
    for name in reversed([n for n in graph.nodes if n != graph.loss]):
        e = mapping[graph.ref(name)]
        if e.shape == shape and target not in symbols_in(e):
            return e
    for node in loss.walk():
        if node.shape == shape and node.args and target not in symbols_in(node):
            return node
    return None


def _class_shape(graph: Graph, target: str) -> tuple | None:
    dim = class_dim(graph, target)
    return None if dim is None else (dim,)


def class_dim(graph: Graph, target: str):
    """The size (dims name or int) of the vector a class-index target picks from."""
    for e in list(graph.nodes.values()):
        for node in e.walk():
            if node.op == "index":
                for pos, a in enumerate(node.args[1:]):
                    if a == sym(target):
                        return node.args[0].shape[pos]
            if node.op == "onehot" and node.args and node.args[0] == sym(target):
                return node.attr
    return None


