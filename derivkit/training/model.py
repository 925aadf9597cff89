"""A trained network kept for evaluating again: the pictures and the sheet's plots use it.

INTERFACE (session 3, lead): ``run_check`` fills one :class:`Fitted` per swept setting;
evaluating it (``nodes``, ``predict``) is being built with the plots.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..graph import Graph
from .binding import Binding
from .datasets import Dataset


@dataclass(eq=False)
class Fitted:
    """One setting's trained network (its best repeat by the selection rule).

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
