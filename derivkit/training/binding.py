"""Binding a dataset to the graph: sizes from the data, and features and labels as leaf values.

The leaf with role ``input`` takes one sample's features: its dim (``[D]``) is set to the
number of features (a scalar input ``[]`` takes 1-feature data).  The target leaf takes
the labels, its kind deciding how:

* ``onehot [C]`` one-hot rows, ``C`` = number of classes;
* ``class []`` the integer label; the size of the vector it indexes is the number of classes;
* ``binary [K]`` 2-class data with ``K = 1`` (the label as 0/1), or one-hot rows with
  ``K`` = number of classes (one-vs-rest); ``binary []`` the label as 0/1 (2 classes);
* ``real [k]`` regression targets (``k`` = number of outputs); on classification data,
  one-hot rows (squared error on one-hot targets).

A size fixed by the data cannot be given in ``check.dims`` with another value, and a literal
size in a shape must match the data: both are reported as errors.  Every other size comes
from ``check.dims``, else from the problem's ``dims``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import Location, UserError
from ..graph import Graph
from .compile import class_dim
from .datasets import CLASSIFICATION, Dataset
from ..checkspec import Settings


def check_at(graph: Graph, *path, key: bool = False) -> Location:
    """The place of ``check.<path>`` in the problem file."""
    return graph.problem.locate("check", *path, key=key)


@dataclass
class Binding:
    """How a dataset feeds the graph."""

    input: str
    target: str
    dims: dict[str, int]
    input_shape: tuple
    encode: Callable[[np.ndarray], np.ndarray]     # labels/values -> target values (batched)
    candidates: list[np.ndarray] | None = None     # accuracy by the smaller loss: one target per class
    accuracy_rule: str | None = None


def bind_data(graph: Graph, settings: Settings, ds: Dataset) -> Binding:
    """Sizes from the data, and how features and labels become the input and target values."""
    inputs = [n for n in graph.leaves if graph.role(n) == "input"]
    targets = [n for n in graph.leaves if graph.role(n) == "target"]
    params = [n for n in graph.leaves if graph.role(n) == "param"]
    sym_at = graph.problem.locate
    if len(inputs) != 1:
        raise UserError(f"training needs exactly one leaf with role input (the features); this problem "
                        f"has {len(inputs)}: {', '.join(inputs) or 'none'}", check_at(graph, "data", key=True))
    if len(targets) != 1:
        raise UserError(f"training needs exactly one leaf with role target; this problem has "
                        f"{len(targets)}: {', '.join(targets) or 'none'}", check_at(graph, "data", key=True))
    if not params:
        raise UserError("there is nothing to train: the problem declares no leaf with role param",
                        check_at(graph, "train", key=True))
    if ds.task == CLASSIFICATION and len(np.unique(ds.y)) < 2:
        raise UserError(f"{ds.name} holds only one class ({len(ds)} samples): there is nothing to classify",
                        check_at(graph, "data"))
    x, t = inputs[0], targets[0]
    dims = dict(graph.dims)
    dims.update(settings.dims)
    fixed: dict[str, tuple[int, str]] = {}     # dim -> (value, why)

    def need(size, value: int, why: str, where: Location | None) -> None:
        if isinstance(size, int):
            if size != value:
                raise UserError(f"{why} is {value}, but the problem fixes this size to {size}", where)
            return
        if size in fixed and fixed[size][0] != value:
            raise UserError(f"size {size}: {why} is {value}, but {fixed[size][1]} is {fixed[size][0]}",
                            where)
        if size in settings.dims and settings.dims[size] != value:
            raise UserError(f"check.dims.{size} = {settings.dims[size]}, but {why} is {value} "
                            f"(this size comes from the data; remove it from check.dims)", check_at(graph, "dims", size))
        fixed[size] = (value, why)
        dims[size] = value

    x_shape = graph.shape(x)
    x_where = sym_at("symbols", x)
    if len(x_shape) > 1:
        raise UserError(f"training feeds one sample at a time, so the input '{x}' must be a vector or a "
                        f"scalar, not shape [{', '.join(map(str, x_shape))}]", x_where)
    if x_shape:
        need(x_shape[0], ds.n_features, f"the number of features of {ds.name}", x_where)
    elif ds.n_features != 1:
        raise UserError(f"the input '{x}' is a scalar but {ds.name} has {ds.n_features} features "
                        f"(declare it with shape [D])", x_where)

    kind = graph.kind(t)
    t_shape = graph.shape(t)
    t_where = sym_at("symbols", t)
    classify = ds.task == CLASSIFICATION
    what = f"{ds.name} is {'classification' if classify else 'regression'} data"
    if kind in ("onehot", "class", "binary") and not classify:
        raise UserError(f"the target '{t}' is a {kind} target, but {what} "
                        f"(a regression target has kind real)", t_where)
    binding = Binding(x, t, dims, x_shape, encode=lambda y: y)
    if kind == "onehot":
        if len(t_shape) != 1:
            raise UserError(f"a onehot target must be a vector [C], got shape {list(t_shape)}", t_where)
        need(t_shape[0], ds.n_classes, f"the number of classes of {ds.name}", t_where)
        eye = np.eye(ds.n_classes)
        binding.encode = lambda y: eye[y]
        binding.accuracy_rule = "argmax"
    elif kind == "class":
        size = class_dim(graph, t)
        if size is None:
            raise UserError(f"the class target '{t}' never indexes a vector, so the number of classes is "
                            f"unknown", t_where)
        need(size, ds.n_classes, f"the number of classes of {ds.name}", t_where)
        binding.encode = lambda y: y
        binding.accuracy_rule = "argmax"
    elif classify:            # binary, or real on classification data: 0/1 values or one-hot rows
        C = ds.n_classes
        if len(t_shape) > 1:
            raise UserError(f"the target '{t}' must be a vector or a scalar, got shape {list(t_shape)}", t_where)
        if not t_shape:
            if C != 2:
                raise UserError(f"the target '{t}' is a scalar 0/1 value, but {ds.name} has {C} classes "
                                f"(use a vector target)", t_where)
            binding.encode = lambda y: y.astype(np.float64)
            binding.candidates = [np.array(0.0), np.array(1.0)]
        else:
            size = t_shape[0]
            size_value = settings.dims.get(size, None) if isinstance(size, str) else size
            if C == 2 and (size_value == 1 or (size_value is None and kind == "binary")):
                need(size, 1, f"one 0/1 output for the 2 classes of {ds.name}", t_where)
                binding.encode = lambda y: y.astype(np.float64)[:, None]
                binding.candidates = [np.zeros(1), np.ones(1)]
            else:
                need(size, C, f"the number of classes of {ds.name} (one-hot targets)", t_where)
                eye = np.eye(C)
                binding.encode = lambda y: eye[y]
                binding.candidates = list(eye)
        binding.accuracy_rule = "smaller loss"
    else:                     # real target, regression data
        k = ds.n_outputs
        if len(t_shape) > 1:
            raise UserError(f"the target '{t}' must be a vector or a scalar, got shape {list(t_shape)}", t_where)
        if t_shape:
            need(t_shape[0], k, f"the number of outputs of {ds.name}", t_where)
            binding.encode = lambda y: y
        else:
            if k != 1:
                raise UserError(f"the target '{t}' is a scalar but {ds.name} has {k} outputs", t_where)
            binding.encode = lambda y: y[:, 0]
    return binding




@dataclass
class Data:
    X: np.ndarray
    T: np.ndarray            # target values as the graph takes them
    labels: np.ndarray       # class labels (classification) or the targets
    n: int


def prepare(ds: Dataset, binding: Binding) -> Data:
    X = ds.X if binding.input_shape else ds.X[:, 0]
    X = np.ascontiguousarray(X, dtype=np.float64)
    return Data(X, binding.encode(ds.y), ds.y, len(ds))
