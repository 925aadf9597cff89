"""The ``check:`` section read into :class:`Settings` (every key, type and range).

Kept as it was in ``derivkit/train.py``; the problem validator takes this job over.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from ..errors import Location, UserError
from ..graph import Graph
from .compile import class_dim

OPTIMIZERS = ("sgd",)
INITS = ("xavier", "he", "glorot")
CHECK_KEYS = ("dims", "data", "train", "repeats", "hidden", "expect")
TRAIN_KEYS = ("optimizer", "lr", "batch_size", "epochs", "seed", "momentum", "val_fraction",
              "init", "standardize", "log_every")
EXPECT_KEYS = ("final_loss_below", "accuracy_above")
MAX_RUNS = 1000            # settings x repeats


@dataclass
class Settings:
    dims: dict[str, int]
    data: dict
    optimizer: str = "sgd"
    lrs: list[float] = field(default_factory=lambda: [0.01])
    lr_sweep: bool = False
    batch_size: int = 1
    epochs: int = 10
    seed: int = 0
    momentum: float = 0.0
    val_fraction: float = 0.2
    init: str | float = "xavier"
    standardize: bool = True
    log_every: int | None = None
    repeats: int = 1
    hidden_dim: str | None = None
    widths: list[int] | None = None
    expect: dict[str, float] = field(default_factory=dict)


class _Reader:
    """Checks values of the ``check:`` mapping, raising UserError at their place in the file."""

    def __init__(self, problem):
        self.problem = problem

    def at(self, *path, key: bool = False) -> Location | None:
        locate = getattr(self.problem, "locate", None)
        if locate is None:
            return Location(str(getattr(self.problem, "path", "<problem>")))
        try:
            return locate("check", *path, key=key)
        except TypeError:
            return locate("check", *path)

    def fail(self, path: tuple, message: str, key: bool = False):
        raise UserError(message, self.at(*path, key=key))

    def mapping(self, value, path: tuple, what: str) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"{what} must be a mapping, got {_kind(value)}")
        return value

    def keys(self, value: dict, allowed, path: tuple, what: str) -> None:
        for k in value:
            if k not in allowed:
                hint = _suggest(str(k), allowed)
                self.fail(path + (k,), f"unknown key '{k}' in {what}{hint}; allowed: {', '.join(allowed)}",
                          key=True)

    def integer(self, value, path: tuple, what: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            self.fail(path, f"{what} must be an integer >= {minimum}, got {value!r}")
        return int(value)

    def number(self, value, path: tuple, what: str, lo: float, hi: float = math.inf, *,
               lo_open: bool = False, hi_open: bool = False) -> float:
        ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
              and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi))
        if not ok:
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            rng = f"> {lo:g}" if hi == math.inf and lo_open else (
                f">= {lo:g}" if hi == math.inf else f"in {left}{lo:g}, {hi:g}{right}")
            self.fail(path, f"{what} must be a number {rng}, got {value!r}")
        return float(value)


def _kind(value) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"the text {value!r}", bool: f"{value!r}"}.get(
        type(value), f"{value!r}")


def _suggest(word: str, options) -> str:
    import difflib
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def read_settings(graph: Graph) -> Settings:
    """Validate ``problem.check`` (every key, type and range) into :class:`Settings`."""
    problem = graph.problem
    r = _Reader(problem)
    check = r.mapping(getattr(problem, "check", None), (), "check")
    r.keys(check, CHECK_KEYS, (), "check")
    if "data" not in check:
        r.fail((), "check needs 'data' (e.g. data: {generator: moons, n: 1000, seed: 0})", key=True)
    s = Settings(dims={}, data=r.mapping(check["data"], ("data",), "check.data"))

    known_dims = _dim_names(graph)
    raw_dims = check.get("dims") or {}
    r.mapping(raw_dims, ("dims",), "check.dims")
    for k, v in raw_dims.items():
        if k not in known_dims:
            r.fail(("dims", k), f"check.dims: '{k}' is not a size of this problem{_suggest(str(k), known_dims)}"
                   f" (sizes: {', '.join(sorted(known_dims)) or 'none'})", key=True)
        s.dims[k] = r.integer(v, ("dims", k), f"check.dims.{k}", 1)

    t = check.get("train") or {}
    r.mapping(t, ("train",), "check.train")
    r.keys(t, TRAIN_KEYS, ("train",), "check.train")
    if "optimizer" in t:
        opt = t["optimizer"]
        if not isinstance(opt, str) or opt.lower() not in OPTIMIZERS:
            r.fail(("train", "optimizer"), f"check.train.optimizer: unknown optimizer {opt!r}; "
                   f"known: {', '.join(OPTIMIZERS)} (with optional momentum)")
        s.optimizer = opt.lower()
    if "lr" in t:
        lr = t["lr"]
        if isinstance(lr, list):
            if not lr:
                r.fail(("train", "lr"), "check.train.lr: an empty list of learning rates")
            s.lrs = [r.number(v, ("train", "lr", i), "check.train.lr", 0.0, lo_open=True) for i, v in enumerate(lr)]
            s.lr_sweep = len(lr) > 1
        else:
            s.lrs = [r.number(lr, ("train", "lr"), "check.train.lr (the learning rate)", 0.0, lo_open=True)]
    if "batch_size" in t:
        s.batch_size = r.integer(t["batch_size"], ("train", "batch_size"), "check.train.batch_size", 1)
    if "epochs" in t:
        s.epochs = r.integer(t["epochs"], ("train", "epochs"), "check.train.epochs", 1)
    if "seed" in t:
        s.seed = r.integer(t["seed"], ("train", "seed"), "check.train.seed", 0)
    if "momentum" in t:
        s.momentum = r.number(t["momentum"], ("train", "momentum"), "check.train.momentum", 0.0, 1.0,
                              hi_open=True)
    if "val_fraction" in t:
        s.val_fraction = r.number(t["val_fraction"], ("train", "val_fraction"), "check.train.val_fraction",
                                  0.0, 1.0, lo_open=True, hi_open=True)
    if "init" in t:
        init = t["init"]
        if isinstance(init, str) and init.lower() in INITS:
            s.init = init.lower()
        elif not isinstance(init, bool) and isinstance(init, numbers.Real):
            s.init = r.number(init, ("train", "init"), "check.train.init (a standard deviation)", 0.0)
        else:
            r.fail(("train", "init"), f"check.train.init must be one of {', '.join(INITS)} or a standard "
                   f"deviation, got {init!r}")
    if "standardize" in t:
        if not isinstance(t["standardize"], bool):
            r.fail(("train", "standardize"), f"check.train.standardize must be true or false, "
                   f"got {t['standardize']!r}")
        s.standardize = t["standardize"]
    if "log_every" in t:
        s.log_every = r.integer(t["log_every"], ("train", "log_every"), "check.train.log_every", 1)

    if "repeats" in check:
        s.repeats = r.integer(check["repeats"], ("repeats",), "check.repeats", 1)
    if "hidden" in check:
        _read_hidden(r, check["hidden"], s, graph)
    if "expect" in check:
        e = r.mapping(check["expect"], ("expect",), "check.expect")
        r.keys(e, EXPECT_KEYS, ("expect",), "check.expect")
        if "final_loss_below" in e:
            s.expect["final_loss_below"] = r.number(e["final_loss_below"], ("expect", "final_loss_below"),
                                                    "check.expect.final_loss_below", -math.inf)
        if "accuracy_above" in e:
            s.expect["accuracy_above"] = r.number(e["accuracy_above"], ("expect", "accuracy_above"),
                                                  "check.expect.accuracy_above (a fraction)", 0.0, 1.0,
                                                  hi_open=True)
    n_runs = len(s.lrs) * len(s.widths or [None]) * s.repeats
    if n_runs > MAX_RUNS:
        r.fail(("repeats",) if "repeats" in check else ("train",),
               f"check asks for {n_runs} training runs (learning rates x widths x repeats); at most {MAX_RUNS}")
    return s


def _read_hidden(r: _Reader, h, s: Settings, graph: Graph) -> None:
    if isinstance(h, list):
        free = [d for d in s.dims if d not in _data_dims(graph)]
        if len(free) != 1:
            r.fail(("hidden",), "check.hidden as a plain list needs exactly one size in check.dims to sweep "
                   f"(found {', '.join(free) or 'none'}); write hidden: {{dim: NAME, values: [...]}}")
        s.hidden_dim, values, vpath = free[0], h, ("hidden",)
    else:
        r.mapping(h, ("hidden",), "check.hidden")
        r.keys(h, ("dim", "values"), ("hidden",), "check.hidden")
        if "dim" not in h or "values" not in h:
            r.fail(("hidden",), "check.hidden needs 'dim' (a size name) and 'values' (a list of widths)", key=True)
        dim = h["dim"]
        known = _dim_names(graph)
        if not isinstance(dim, str) or dim not in known:
            r.fail(("hidden", "dim"), f"check.hidden.dim: {dim!r} is not a size of this problem"
                   f"{_suggest(str(dim), known)} (sizes: {', '.join(sorted(known))})")
        if dim in _data_dims(graph):
            r.fail(("hidden", "dim"), f"check.hidden.dim: '{dim}' is fixed by the data and cannot be swept")
        s.hidden_dim, values, vpath = dim, h["values"], ("hidden", "values")
    if not isinstance(values, list) or not values:
        r.fail(vpath, f"check.hidden: the widths must be a non-empty list, got {_kind(values)}")
    s.widths = [r.integer(v, vpath + (i,), "check.hidden: a width", 0) for i, v in enumerate(values)]


def _dim_names(graph: Graph) -> set[str]:
    names = set(graph.dims)
    for spec in graph.problem.symbols.values():
        names.update(d for d in spec.shape if isinstance(d, str))
    return names


def _data_dims(graph: Graph) -> set[str]:
    """Size names the data decides (the input's and the target's)."""
    out = set()
    for name in graph.leaves:
        if graph.role(name) == "input" or graph.role(name) == "target":
            out.update(d for d in graph.shape(name) if isinstance(d, str))
            if graph.kind(name) == "class":
                d = class_dim(graph, name)
                if isinstance(d, str):
                    out.add(d)
    return out
