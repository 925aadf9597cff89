"""The schema of a problem's ``check:`` section (the numeric training check).

:func:`read_check` checks every key, type, range and size limit of ``check:`` with a
:class:`~derivkit.yamlread.Reader` (so each mistake is reported, located, by
``derivkit validate``) and returns a typed :class:`Settings`, which training consumes.
What only the data can tell (its number of features or classes) is checked when it is
loaded.  The keys are described in ``derivkit/train.py``'s module docstring.

Limits (so that a hostile file fails in well under a second instead of exhausting the
machine): at most :data:`MAX_SAMPLES` samples, training sizes and hidden widths at most
:data:`MAX_TRAIN_DIM`, :data:`MAX_CLASSES` classes, :data:`MAX_EPOCHS` epochs and
:data:`MAX_STEPS` minibatch steps per run (epochs × training samples / batch size),
:data:`MAX_LOGGED_SAMPLES` validation samples evaluated for ``log_every`` per run, and
:data:`MAX_RUNS` runs (the product of every swept list × repeats).
"""
from __future__ import annotations

import inspect
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from yaml.nodes import MappingNode, Node, SequenceNode

from derivkit.errors import UserError
from derivkit.training.datasets import (CLASSIFICATION, DATASETS, GENERATORS, MAX_DATA_BYTES, MAX_X, REGRESSION,
                                        OptionError, load_csv, part_size, shape_error, source_shape)
from derivkit.yamlread import Invalid, Reader, file_kind, pairs, short

OPTIMIZERS = ("sgd",)
INITS = ("xavier", "he", "glorot")
SPLITS = ("train", "test", "all")
CHECK_KEYS = ("dims", "data", "test", "train", "select", "retrain_on_all", "sweep", "repeats", "hidden",
              "expect")
SELECT = ("val_loss", "val_accuracy")
TRAIN_KEYS = ("optimizer", "lr", "batch_size", "epochs", "seed", "momentum", "val_fraction",
              "init", "standardize", "log_every")
EXPECT_KEYS = ("final_loss_below", "accuracy_above")

MAX_SAMPLES = 100_000       # data.n / data.limit
MAX_TRAIN_DIM = 4096        # check.dims values and hidden widths
MAX_CLASSES = 1000          # data.classes
MAX_EPOCHS = 100_000
MAX_STEPS = 2_000_000       # minibatch steps in one run
MAX_LOGGED_SAMPLES = 10 * MAX_STEPS   # validation samples evaluated by log_every in one run
MAX_RUNS = 1000             # the product of the swept lists x repeats
MAX_SEED = 2**32 - 1
DEFAULT_SAMPLES = 1000      # a generator's n when not given
MNIST_SAMPLES = 70_000      # the most a dataset without `limit` is assumed to hold


@dataclass
class Settings:
    """The checked ``check:`` section (field for field what training needs)."""

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
    #: every swept key and its values, in file order: "lr" -> rates, a size name -> widths,
    #: a choice name (the problem's ``choices:``) -> names; the runs are their Cartesian product.
    #: ``train.lr`` as a list and ``hidden:`` are read into it too.
    sweep: dict[str, list] = field(default_factory=dict)
    select: str = "val_loss"                # or "val_accuracy": how the best setting is chosen
    retrain_on_all: bool = False            # retrain the best setting on training + validation data
    #: a test set: {"fraction": f} (split off the data first) or a data mapping like ``data``
    test: dict | None = None


def read_check(r: Reader, node: Node, dim_names: set[str], data_dims: set[str],
               base_dir: Path | None = None, key: Node | None = None, *,
               choices: dict[str, tuple[str, ...]] | None = None) -> Settings | None:
    """Check ``check:`` (its YAML node); None when an error was recorded in ``r``.

    ``dim_names`` are the problem's size names, ``data_dims`` those the data decides
    (the input's and the target's); a relative data path is looked up under ``base_dir``;
    ``key`` (the ``check`` key) is where a missing ``data`` is reported; ``choices`` (the
    problem's ``choices:``, name -> declared values) are what ``sweep`` may name besides
    ``lr`` and sizes.
    """
    before = r.n_errors
    if not r.ok(r.mapping, node, "check"):
        return None                     # an empty check: section asks for nothing
    f = r.ok(r.fields, node, "check", dict.fromkeys(CHECK_KEYS, False))
    if f is None:
        return None
    if "data" not in f and r.n_errors == before:     # not when a key is misspelt (date:)
        r.error(key or node, "check needs 'data' (e.g. data: {generator: moons, n: 1000, seed: 0})")
    s = Settings(dims={}, data={})
    data = r.ok(_data, f.v("data"), r, base_dir)
    s.data = data or {}
    s.test = r.ok(_test, f.v("test"), r, base_dir)
    for k, v in r.ok(r.mapping, f.v("dims"), "check.dims", default=[]):
        if k.value not in dim_names:
            r.error(k, f"check.dims: '{short(k.value)}' is not a size of this problem"
                       f"{r.suggest(k.value, dim_names)} (sizes: {', '.join(sorted(dim_names)) or 'none'})")
            continue
        size = r.ok(r.integer, v, f"check.dims.{k.value}", 1, MAX_TRAIN_DIM)
        if size is not None:
            s.dims[k.value] = size
    swept: list[tuple[str, list, Node]] = []           # (key, values, where it was given)
    r.ok(_hidden, f.v("hidden"), r, s, dim_names, data_dims, swept)   # before train.lr: widths sweep outermost
    r.ok(_train, f.v("train"), r, s, swept)
    s.select = r.ok(r.choice, f.v("select"), "check.select", SELECT, default="val_loss")
    s.retrain_on_all = r.ok(r.flag, f.v("retrain_on_all"), "check.retrain_on_all", default=False)
    s.repeats = r.ok(r.integer, f.v("repeats"), "check.repeats", 1, MAX_RUNS, default=1)
    r.ok(_sweep, f.v("sweep"), r, dim_names, data_dims, choices or {}, swept)
    _gather_sweep(r, s, swept)
    r.ok(_expect, f.v("expect"), r, s)
    if r.n_errors > before:
        return None
    runs = math.prod(len(values) for values in s.sweep.values()) * s.repeats
    if runs > MAX_RUNS:
        r.error(f["repeats"][0] if "repeats" in f else f["sweep"][0] if "sweep" in f else node,
                f"check asks for {runs} training runs (the product of the swept lists × repeats); "
                f"at most {MAX_RUNS}")
    _test_fits(r, s, f.v("test"), base_dir)
    _needs_classes(r, s, f, base_dir)
    samples = _samples(s.data, base_dir) * (1 if s.retrain_on_all else 1 - s.val_fraction)
    steps = s.epochs * math.ceil(samples / s.batch_size)
    if steps > MAX_STEPS:
        r.error(f["train"][0] if "train" in f else node,
                f"check asks for {s.epochs} epochs of {math.ceil(samples / s.batch_size)} minibatch steps "
                f"({steps} steps per run); at most {MAX_STEPS}: use fewer epochs or larger batches")
    elif s.log_every:
        logged = steps // s.log_every * math.ceil(_samples(s.data, base_dir) * s.val_fraction)
        at = next(v for k, v in f.v("train").value if k.value == "log_every")
        if s.log_every > steps:
            r.error(at, f"check.train.log_every: {s.log_every} is more than the {steps} minibatch steps of "
                        f"a run, so nothing would be logged; at most {steps}")
        elif logged > MAX_LOGGED_SAMPLES:
            r.error(at, f"check.train.log_every: {s.log_every} evaluates the validation set "
                        f"{steps // s.log_every} times ({logged} samples per run); at most "
                        f"{MAX_LOGGED_SAMPLES}: log less often")
    return None if r.n_errors > before else s


def _samples(data: dict, base_dir: Path | None) -> int:
    """The most samples the data can hold (a CSV file's: its lines after the header)."""
    if "n" in data:
        return data["n"]
    if "limit" in data and data["limit"] is not None:
        return data["limit"]
    if data.get("dataset") == "csv":
        with open(_resolved(data["path"], base_dir), "rb") as fh:   # checked: a file of bounded size
            return max(sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(2**20), b"")), 1)
    return DEFAULT_SAMPLES if "generator" in data else MNIST_SAMPLES


def _train(node: Node, r: Reader, s: Settings, swept: list) -> None:
    f = r.fields(node, "check.train", {key: False for key in TRAIN_KEYS})
    if "optimizer" in f:
        s.optimizer = r.ok(_optimizer, f.v("optimizer"), r, default="sgd")
    if "lr" in f:
        lr = f.v("lr")
        if isinstance(lr, SequenceNode):
            items = r.ok(r.sequence, lr, "check.train.lr", MAX_RUNS, default=[])
            if not lr.value:
                r.error(lr, "check.train.lr: an empty list of learning rates")
            rates = [r.ok(r.number, v, "check.train.lr", 0.0, lo_open=True) for v in items]
            s.lrs = [x for x in rates if x is not None] or s.lrs
            s.lr_sweep = len(items) > 1
            if items and None not in rates:
                swept.append(("lr", list(s.lrs), lr))
        else:
            s.lrs = [r.ok(r.number, lr, "check.train.lr (the learning rate)", 0.0, lo_open=True,
                          default=0.01)]
    s.batch_size = r.ok(r.integer, f.v("batch_size"), "check.train.batch_size", 1, MAX_SAMPLES, default=1)
    s.epochs = r.ok(r.integer, f.v("epochs"), "check.train.epochs", 1, MAX_EPOCHS, default=10)
    s.seed = r.ok(r.integer, f.v("seed"), "check.train.seed", 0, MAX_SEED, default=0)
    s.momentum = r.ok(r.number, f.v("momentum"), "check.train.momentum", 0.0, 1.0, hi_open=True,
                      default=0.0)
    s.val_fraction = r.ok(r.number, f.v("val_fraction"), "check.train.val_fraction", 0.0, 1.0,
                          lo_open=True, hi_open=True, default=0.2)
    if "init" in f:
        s.init = r.ok(_init, f.v("init"), r, default="xavier")
    s.standardize = r.ok(r.flag, f.v("standardize"), "check.train.standardize", default=True)
    s.log_every = r.ok(r.integer, f.v("log_every"), "check.train.log_every", 1)


def _optimizer(node: Node, r: Reader) -> str:
    value = r.scalar(node, "check.train.optimizer")
    if not isinstance(value, str) or value.lower() not in OPTIMIZERS:
        r.fail(node, f"check.train.optimizer: unknown optimizer '{short(str(node.value))}'; "
                     f"known: {', '.join(OPTIMIZERS)} (with optional momentum)")
    return value.lower()


def _init(node: Node, r: Reader) -> str | float:
    value = r.scalar(node, "check.train.init")
    if isinstance(value, str) and value.lower() in INITS:
        return value.lower()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return r.number(node, "check.train.init (a standard deviation)", 0.0)
    r.fail(node, f"check.train.init must be one of {', '.join(INITS)} or a standard deviation, "
                 f"found '{short(str(node.value))}'{r.suggest(str(node.value), INITS)}")


def _hidden(node: Node, r: Reader, s: Settings, dim_names: set[str], data_dims: set[str],
            swept: list) -> None:
    if isinstance(node, SequenceNode):
        free = [d for d in s.dims if d not in data_dims]
        if len(free) != 1:
            r.fail(node, "check.hidden as a plain list needs exactly one size in check.dims to sweep "
                         f"(found {', '.join(free) or 'none'}); write hidden: {{dim: NAME, values: [...]}}")
        dim, values = free[0], node
    else:
        f = r.fields(node, "check.hidden", {"dim": False, "values": False})
        if "dim" not in f or "values" not in f:
            r.fail(node, "check.hidden needs 'dim' (a size name) and 'values' (a list of widths)")
        dim = r.scalar(f.v("dim"), "check.hidden.dim")
        if not isinstance(dim, str) or dim not in dim_names:
            word = str(f.v("dim").value)
            r.fail(f.v("dim"), f"check.hidden.dim: '{short(word)}' is not a size of this problem"
                               f"{r.suggest(word, dim_names)} (sizes: {', '.join(sorted(dim_names))})")
        if dim in data_dims:
            r.fail(f.v("dim"), f"check.hidden.dim: '{dim}' is fixed by the data and cannot be swept")
        values = f.v("values")
    items = r.sequence(values, "check.hidden (the widths)", MAX_RUNS)
    if not items:
        r.fail(values, "check.hidden: the widths must be a non-empty list")
    widths = [r.ok(r.integer, v, "check.hidden: a width", 0, MAX_TRAIN_DIM) for v in items]
    if None in widths:
        raise Invalid
    s.hidden_dim, s.widths = dim, widths
    swept.append((dim, widths, node))


def _sweep(node: Node, r: Reader, dim_names: set[str], data_dims: set[str], choices: dict[str, list[str]],
           swept: list) -> None:
    """``sweep:``: each key ``lr``, a size name or a choice name, with a non-empty list of distinct values."""
    entries = r.mapping(node, "check.sweep")
    if not entries:
        r.error(node, "check.sweep is empty; sweep e.g. lr: [0.01, 0.1], a size (H: [1, 2, 3]) or a choice")
    for k, v in entries:
        name = k.value
        what = f"check.sweep.{short(name)}"
        if name == "lr":
            check = lambda item: r.number(item, f"{what} (a learning rate)", 0.0, lo_open=True)
        elif name in dim_names and name not in data_dims:
            check = lambda item: r.integer(item, f"{what} (a width)", 0, MAX_TRAIN_DIM)
        elif name in choices:
            if not choices[name]:           # its declaration is wrong, and reported there
                continue
            check = lambda item, options=choices[name]: r.choice(item, what, options)
        else:
            known = ["lr", *sorted(dim_names - data_dims), *choices]
            why = (f"'{short(name)}' is fixed by the data and cannot be swept" if name in data_dims else
                   f"'{short(name)}' is not a learning rate, size or choice of this problem"
                   f"{r.suggest(name, known)}")
            r.error(k, f"check.sweep: {why} (sweepable: {', '.join(known)})")
            continue
        items = r.ok(r.sequence, v, what, MAX_RUNS)
        if items is None:
            continue
        if not items:
            r.error(v, f"{what}: the list of values is empty")
            continue
        values = [r.ok(check, item) for item in items]
        for i, value in enumerate(values):
            if value is not None and value in values[:i]:
                r.error(items[i], f"{what}: {short(str(items[i].value))} is listed twice (each setting is trained once)")
                values[i] = None
        if None not in values:
            swept.append((name, values, k))


def _gather_sweep(r: Reader, s: Settings, swept: list) -> None:
    """``Settings.sweep`` from ``hidden:``, ``train.lr`` lists and ``sweep:`` (in that order, so that
    old files sweep as before); a key given twice is an error at its later place in the file."""
    first: dict[str, Node] = {}
    for name, values, where in sorted(swept, key=lambda e: e[2].start_mark.index):
        if name in first:
            r.error(where, f"check: '{short(name)}' is swept twice (also at line "
                           f"{first[name].start_mark.line + 1})")
        first[name] = where
    for name, values, where in swept:
        s.sweep.setdefault(name, values)
    if s.hidden_dim is None:            # a width sweep given in sweep: is the old fields' width too
        sizes = [name for name, _, _ in swept if name != "lr" and isinstance(s.sweep[name][0], int)]
        if sizes:
            s.hidden_dim, s.widths = sizes[0], list(s.sweep[sizes[0]])
    if "lr" in s.sweep:
        s.lrs, s.lr_sweep = list(s.sweep["lr"]), len(s.sweep["lr"]) > 1


def _expect(node: Node, r: Reader, s: Settings) -> None:
    f = r.fields(node, "check.expect", {key: False for key in EXPECT_KEYS})
    if "final_loss_below" in f:
        value = r.ok(r.number, f.v("final_loss_below"), "check.expect.final_loss_below")
        if value is not None:
            s.expect["final_loss_below"] = value
    if "accuracy_above" in f:
        value = r.ok(r.number, f.v("accuracy_above"), "check.expect.accuracy_above (a fraction)",
                     0.0, 1.0, hi_open=True)
        if value is not None:
            s.expect["accuracy_above"] = value


# ----------------------------------------------------------------- data:

def _option_checks(r: Reader, base_dir: Path | None) -> dict:
    """How each known data option is checked: key -> check(node, what)."""
    return {
        "n": lambda node, what: r.integer(node, what, 2, MAX_SAMPLES),
        "limit": lambda node, what: None if r.is_null(node) else r.integer(node, what, 1, MAX_SAMPLES),
        "seed": lambda node, what: r.integer(node, what, 0, MAX_SEED),
        "noise": lambda node, what: r.number(node, what, 0.0, 1e6),
        "range": lambda node, what: _range(node, what, r),
        "frequency": lambda node, what: r.number(node, what, 0.0, MAX_X, lo_open=True),
        "amplitude": lambda node, what: r.number(node, what, 0.0, MAX_X, lo_open=True),
        "classes": lambda node, what: r.integer(node, what, 2, MAX_CLASSES),
        "split": lambda node, what: r.choice(node, what, SPLITS),
        "path": lambda node, what: _path(node, what, r, base_dir),
        "target": lambda node, what: r.text(node, what),
        "task": lambda node, what: r.choice(node, what, (CLASSIFICATION, REGRESSION)),
    }


def _range(node: Node, what: str, r: Reader) -> list[float]:
    """[lo, hi]: two finite numbers, lo < hi (a reversed or empty range is reported at the list)."""
    items = r.sequence(node, what)
    if len(items) != 2:
        r.fail(node, f"{what} must be a list of two numbers [lo, hi], found {len(items)} item(s)")
    lo, hi = (r.number(item, f"{what} (each end)", -MAX_X, MAX_X) for item in items)
    if not lo < hi:
        r.fail(node, f"{what} [{lo:g}, {hi:g}] is {'empty' if lo == hi else 'reversed'}; lo must be below hi")
    return [lo, hi]


def _data(node: Node, r: Reader, base_dir: Path | None, what: str = "check.data") -> dict | None:
    """A data source mapping (``data:``, or a ``test:`` source when ``what`` says so), checked."""
    pairs = r.mapping(node, what)
    keys = {k.value: (k, v) for k, v in pairs}
    if ("generator" in keys) == ("dataset" in keys):
        r.fail(node, f"{what} needs exactly one of 'generator' ({', '.join(sorted(GENERATORS))}) "
                     f"or 'dataset' ({', '.join(sorted(DATASETS))})")
    kind, registry, other = (("generator", GENERATORS, DATASETS) if "generator" in keys
                             else ("dataset", DATASETS, GENERATORS))
    name_node = keys[kind][1]
    name = r.scalar(name_node, f"{what}.{kind}")
    if not isinstance(name, str) or name not in registry:
        word = str(name_node.value)
        hint = (f" (did you mean {'dataset' if kind == 'generator' else 'generator'}: {word}?)"
                if word in other else r.suggest(word, registry))
        r.fail(name_node, f"{what}.{kind}: unknown {kind} '{short(word)}'; known: "
                          f"{', '.join(sorted(registry))}{hint}")
    params = inspect.signature(registry[name]).parameters
    checks = _option_checks(r, base_dir)
    data, bad = {kind: name}, False
    for key, (k, v) in keys.items():
        if key == kind:
            continue
        if key not in params:
            r.error(k, f"{what}: unknown option '{short(key)}' for {kind} '{name}'"
                       f"{r.suggest(key, params)}; allowed: {', '.join(params) or 'none'}")
            bad = True
            continue
        check = checks.get(key, lambda node, what: r.plain(node))
        try:
            data[key] = check(v, f"{what}.{key}")
        except Invalid:
            bad = True
    for key, param in params.items():
        if param.default is inspect.Parameter.empty and key not in keys:
            r.error(node, f"{what}: {kind} '{name}' needs '{key}'")
            bad = True
    if not bad and name == "csv":
        bad = not r.ok(_csv, data, keys, r, base_dir, what)
    return None if bad else data


def _test(node: Node, r: Reader, base_dir: Path | None) -> dict:
    """``test:``: ``{fraction: f}`` (0 < f < 1, split off the data) or a data source checked as ``data:``."""
    if not isinstance(node, MappingNode):
        r.fail(node, "check.test must be a mapping: {fraction: 0.25} to split the test set off the data, "
                     "or a data source such as {generator: sinusoid, n: 200, seed: 1}")
    if not any(k.value == "fraction" for k, _ in pairs(node)):
        data = _data(node, r, base_dir, "check.test")
        if data is None:
            raise Invalid
        return data
    f = r.fields(node, "check.test", {"fraction": True},
                 lambda key: f"check.test: '{short(key)}' describes a separate test source; with 'fraction' "
                             "the test set is split off the data and takes no other key")
    return {"fraction": r.number(f.v("fraction"), "check.test.fraction", 0.0, 1.0, lo_open=True, hi_open=True)}


def _needs_classes(r: Reader, s: Settings, f, base_dir: Path | None) -> None:
    """Accuracy (``select: val_accuracy``, ``expect.accuracy_above``) needs classification data:
    refused here when the data is regression: known from a generator or a CSV table (read again
    only for this question); a dataset known only when loaded (MNIST) is checked when training starts."""
    if s.select != "val_accuracy" and "accuracy_above" not in s.expect:
        return
    _, task, _, _ = source_shape(s.data, base_dir)
    if task is None and s.data.get("dataset") == "csv":      # its task is decided by its values
        task = load_csv(_resolved(s.data["path"], base_dir), s.data["target"], limit=s.data.get("limit")).task
    if task != REGRESSION:
        return
    name = s.data.get("generator") or s.data.get("dataset")
    if s.select == "val_accuracy":
        r.error(f.v("select"), f"check.select: no accuracy exists on {name}, which is regression data; "
                               "select by val_loss")
    if "accuracy_above" in s.expect:
        at = next(v for k, v in f.v("expect").value if k.value == "accuracy_above")
        r.error(at, f"check.expect.accuracy_above: no accuracy exists on {name}, which is regression data; "
                    "use final_loss_below")


def _test_fits(r: Reader, s: Settings, node: Node | None, base_dir: Path | None) -> None:
    """A test fraction leaves data to train on; a test source has the data's features, task and classes.

    (A source known only when loaded, such as MNIST, is checked then: datasets.load_test.)
    """
    if s.test is None or node is None:
        return
    where = {k.value: v for k, v in pairs(node)}
    if "fraction" in s.test:
        n = _samples(s.data, base_dir)          # at most this many: the check never fires wrongly
        rest = n - part_size(n, s.test["fraction"])
        if rest < 2:
            r.error(where["fraction"], f"check.test.fraction: {s.test['fraction']:g} of {n} samples leaves "
                                       f"{rest} to split into training and validation; at least 2 are needed")
        return
    problem = shape_error(source_shape(s.data, base_dir), source_shape(s.test, base_dir))
    if problem is not None:
        kind = "generator" if "generator" in s.test else "dataset"
        r.error(where[kind], f"check.test: {problem}; a test set must match the data it tests")


def _csv(data: dict, keys: dict, r: Reader, base_dir: Path | None, what: str = "check.data") -> bool:
    """A CSV source: a regular file within the size limit whose header names the target column and
    whose rows are numbers (read in full: a CSV file is at most ``MAX_DATA_BYTES``)."""
    path_node = keys["path"][1]
    path = _resolved(data["path"], base_dir)
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        r.fail(path_node, f"{what}.path: '{short(data['path'])}' is {file_kind(info)}; "
                          "a csv dataset is one CSV file")
    if info.st_size > MAX_DATA_BYTES:
        r.fail(path_node, f"{what}.path: '{short(data['path'])}' is {info.st_size} bytes; at most "
                          f"{MAX_DATA_BYTES} bytes of CSV are read")
    try:                                # the whole table, so validate reports a bad cell too
        load_csv(path, data["target"], data.get("task"), data.get("limit"))
    except OptionError as exc:          # an option at fault: at its value
        message = what + exc.message[4:] if exc.message.startswith("data.") else f"{what}: {exc.message}"
        r.fail(keys[exc.option][1] if exc.option in keys else path_node, message)
    except UserError as exc:            # the file itself is at fault: reported at the file
        r.error(exc.where or path_node, exc.message)
        raise Invalid from None
    return True


def _resolved(text: str, base_dir: Path | None) -> Path:
    """A data path as written, relative to the problem file's folder."""
    path = Path(text).expanduser()
    return Path(base_dir) / path if base_dir is not None and not path.is_absolute() else path


def _path(node: Node, what: str, r: Reader, base_dir: Path | None) -> str:
    """A data path (kept as written): it must exist and be a regular file or a directory."""
    text = r.text(node, what)
    path = _resolved(text, base_dir)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        r.fail(node, f"{what}: '{short(text)}' does not exist (relative paths start at the problem "
                     "file's folder)")
    except OSError as exc:
        r.fail(node, f"{what}: cannot use '{short(text)}': {exc.strerror or exc}")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        r.fail(node, f"{what}: '{short(text)}' is {file_kind(info)}; data must be a regular file "
                     "(or a directory of files)")
    return text
