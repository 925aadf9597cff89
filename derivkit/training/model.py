"""A trained network kept for evaluating again: the pictures and the sheet's plots use it.

``run_check`` fills one :class:`Fitted` per swept setting.  Evaluating it takes inputs in the
data's own units (the standardization the network was trained with is applied here):

* :meth:`Fitted.nodes` — every forward node's value per input row;
* :meth:`Fitted.predict` — the prediction's values, :meth:`Fitted.classify` — the class;
* :meth:`Fitted.first_layer` — the first affine map of the input, found numerically;
* :meth:`Fitted.hidden` — the names of the hidden units (the pictures of seed 002).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..expr import Expr, concrete, sym, symbols_in
from ..graph import Graph
from ..numeric import Program, distinct_atoms, inline_nodes
from .binding import Binding
from .compile import find_prediction
from .datasets import Dataset

#: relative tolerance of the affinity test in :meth:`Fitted.first_layer`
AFFINE_RTOL = 1e-8
#: the prediction's key among the forward program's outputs (no node can be named so)
_PREDICTION = "\0prediction"


@dataclass(eq=False)
class Fitted:
    """One run's trained network (a result's ``fits`` hold each setting's best repeat).

    The network saw features ``(x - shift) / scale`` (``shift`` 0 and ``scale`` 1 without
    ``standardize``); ``train``/``val``/``test`` hold the data in the file's own units.
    """

    setting: dict                     # the swept values, e.g. {"lr": 0.01, "H": 3, "act": "relu"}
    graph: Graph                      # the graph trained (a variant of the problem's)
    dims: dict[str, int]              # the sizes it trained at
    params: dict[str, np.ndarray]     # final parameter values
    binding: Binding
    shift: np.ndarray
    scale: np.ndarray
    train: Dataset
    val: Dataset | None
    test: Dataset | None = None
    metrics: dict = field(default_factory=dict)   # this run's final_loss, final_val_loss, accuracy, ...
    run: int | None = None            # its index in the result's runs (None: retrained on all data)
    best_of: int = 1                  # N when it is the best of its setting's N repeats (1 otherwise)
    retrained: bool = False           # trained again on training + validation data: no validation set

    # ------------------------------------------------------------------ evaluation
    @property
    def n_features(self) -> int:
        return self.train.X.shape[1]

    def standardized(self, X) -> np.ndarray:
        """Rows of ``X`` (data units, shape (n, d), or (n,) for one feature) as the network saw them."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {X.shape}")
        return (X - self._shift) / self._scale

    @property
    def _shift(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.shift, dtype=np.float64), (self.n_features,))

    @property
    def _scale(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.scale, dtype=np.float64), (self.n_features,))

    @cached_property
    def _mapping(self) -> dict[Expr, Expr]:
        return inline_nodes(self.graph)

    @cached_property
    def _forward(self) -> Program:
        """Every forward node but the loss (and nodes that use the target), in one program."""
        g, target = self.graph, self.binding.target
        memo: dict = {}
        outputs = {}
        for name in g.nodes:
            if name == g.loss:
                continue
            e = self._mapping[g.ref(name)]
            if target not in symbols_in(e):
                outputs[name] = distinct_atoms(e, memo)
        pred = self.prediction_expr
        if pred is not None:
            outputs[_PREDICTION] = distinct_atoms(pred, memo)
        return Program(outputs, self.dims)

    def _run(self, program: Program, X, extra: dict | None = None) -> dict[str, np.ndarray]:
        Z = self.standardized(X)
        feed = Z if self.binding.input_shape else Z[:, 0]
        values = {**self.params, self.binding.input: feed, **(extra or {})}
        batched = {self.binding.input, *(extra or {})}
        with np.errstate(all="ignore"):
            out = program.run(values, frozenset(batched))
        return {k: _batched(v, len(Z), concrete(program.outputs[k].shape, self.dims))
                for k, v in out.items()}

    def nodes(self, X) -> dict[str, np.ndarray]:
        """Every forward node's value for each row of ``X`` (data units): ``name -> (n, *shape)``.

        The loss and nodes that use the target are left out; a node that does not depend on
        the input is broadcast to every row.
        """
        out = self._run(self._forward, X)
        out.pop(_PREDICTION, None)
        return out

    @cached_property
    def prediction_expr(self) -> Expr | None:
        """What the network predicts, written over the leaves.

        Classification with a class/onehot target: the vector whose argmax is the class
        (:func:`~derivkit.training.compile.find_prediction`).  Otherwise the last forward node
        with the target's shape that does not use the target (``y_hat``, ``sigmoid(o)``), else
        the operand the loss compares with the target (``o`` in ``sum((o - y)**2)``).
        """
        g, target = self.graph, self.binding.target
        pred = find_prediction(g, self._mapping)
        if pred is not None:
            return pred
        shape = g.shape(target)
        for name in reversed([n for n in g.nodes if n != g.loss]):
            e = self._mapping[g.ref(name)]
            if e.shape == shape and target not in symbols_in(e):
                return e
        loss = self._mapping[g.ref(g.loss)]
        for node in loss.walk():
            if len(node.args) == 2 and sym(target) in node.args:
                other = node.args[1] if node.args[0] == sym(target) else node.args[0]
                if target not in symbols_in(other):
                    return other
        return None

    def predict(self, X) -> np.ndarray:
        """The prediction (see :attr:`prediction_expr`) for each row of ``X``: (n, *shape)."""
        if self.prediction_expr is None:
            raise ValueError("this network has no node that predicts the target")
        return self._run(self._forward, X)[_PREDICTION]

    @cached_property
    def _loss_program(self) -> Program:
        loss = distinct_atoms(self._mapping[self.graph.ref(self.graph.loss)])
        return Program({"loss": loss}, self.dims)

    def classify(self, X) -> np.ndarray:
        """The predicted class of each row of ``X`` by the accuracy rule training used.

        ``argmax`` of the prediction (class/onehot targets), else the label whose loss is the
        smaller (binary and real targets on classification data).
        """
        b = self.binding
        if b.accuracy_rule == "argmax":
            scores = self.predict(X)
            return np.argmax(scores.reshape(len(scores), -1), axis=1)
        if b.candidates is None:
            raise ValueError("this network is not a classifier")
        n = len(self.standardized(X))
        losses = [self._run(self._loss_program, X, {b.target: np.broadcast_to(c, (n,) + c.shape)})["loss"]
                  for c in b.candidates]
        return np.argmin(np.stack(losses, axis=1), axis=1)

    # ------------------------------------------------------------------ structure
    def first_layer(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(W, b)`` in data units with the first layer's affine node ``= W @ x + b``.

        Found numerically, whatever the problem calls its weights: the forward nodes that
        depend on the input are evaluated at 0 and at the unit vectors (of the standardized
        input) and their affinity confirmed at random points, in forward order; the last
        affine vector node before the first node that is not affine is the first layer
        (``z1 = W1 @ x + b1``, also when written ``a = W1 @ x; z1 = a + b1``).  It is mapped back
        through the standardization.  None when the first node of the input is not affine.
        """
        found = self.first_affine()
        return None if found is None else found[1:]

    def first_affine(self) -> tuple[str, np.ndarray, np.ndarray] | None:
        """``(name, W, b)`` of :meth:`first_layer`, with the node's name."""
        g, x = self.graph, self.binding.input
        chain = [n for n in g.nodes if n != g.loss and n in self._forward.outputs
                 and x in symbols_in(self._mapping[g.ref(n)])]
        d = self.n_features
        mean, scale = self._shift, self._scale
        basis = np.vstack([np.zeros(d), np.eye(d)])          # standardized points 0, e_1, ..., e_d
        Z = np.random.default_rng(0).normal(size=(5, d)) * 2.0
        at_basis, at_random = self.nodes(basis * scale + mean), self.nodes(Z * scale + mean)
        found = None
        for name in chain:
            value = at_basis[name].reshape(d + 1, -1)
            b = value[0]
            W = (value[1:] - b).T                            # (units, d)
            want = Z @ W.T + b
            got = at_random[name].reshape(want.shape)
            if not np.allclose(got, want, rtol=AFFINE_RTOL, atol=AFFINE_RTOL * (1 + np.abs(want).max())):
                break
            if len(g.shape(name)) == 1:
                found = name, W, b
        if found is None:
            return None
        name, W, b = found
        W_data = W / scale[None, :]
        return name, W_data, b - W_data @ mean

    def hidden(self) -> list[str]:
        """The hidden units' nodes: a nonlinearity applied elementwise whose size the data does
        not fix (``h = sigmoid(z)`` with ``z`` of size H), in forward order."""
        from .run import data_dims
        g = self.graph
        fixed = data_dims(g)
        out = []
        for name, e in g.nodes.items():
            if name == g.loss or self.binding.input not in symbols_in(self._mapping[g.ref(name)]):
                continue
            if _nonlinear(e) and len(e.shape) == 1 and isinstance(e.shape[0], str) and e.shape[0] not in fixed:
                out.append(name)
        return out


def _nonlinear(e: Expr) -> bool:
    from ..ops import OPS
    return len(e.args) == 1 and e.op != "neg" and e.op in OPS and OPS[e.op].elementwise


def _batched(value, n: int, shape: tuple) -> np.ndarray:
    """``value`` with a leading axis of ``n`` rows (broadcast when it does not depend on the input)."""
    v = np.asarray(value, dtype=np.float64)
    if v.shape == (n,) + tuple(shape):
        return v
    return np.broadcast_to(v, (n,) + tuple(shape))
