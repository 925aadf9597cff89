"""Data for training checks: toy generators, MNIST (IDX files or keras .npz), scikit-learn's digits
and a user's own numeric CSV table.

A problem file's ``data:`` mapping goes through :func:`make_dataset`; every mistake in it (or in a
data file it points at) raises :class:`~derivkit.errors.UserError`: a bad option as
:class:`OptionError` (which option, so the caller can place it in the problem file), a bad file at
the file.  Nothing here downloads anything.

Data files are read within limits: an IDX file's declared dimensions are checked against
``MAX_DATA_BYTES`` and against the file's real size before its body is read, and a gzipped file is
decompressed as a stream, never past the size its header declares (a gzip bomb fails at once).
A CSV file's size is checked against ``MAX_DATA_BYTES`` before it is opened, and it is read with
the ``csv`` module (never evaluated) into at most ``MAX_CSV_CELLS`` numbers.  It must be UTF-8
text (a UTF-8 byte-order mark, as spreadsheets write, is skipped; UTF-16 is refused by name).
"""
from __future__ import annotations

import csv
import gzip
import inspect
import math
import numbers
import os
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from derivkit.errors import Location, UserError
from derivkit.yamlread import short, suggest

MAX_DATA_BYTES = 256 * 2**20     # the largest IDX body or CSV file read (full MNIST images: 47 MB)
MAX_CSV_CELLS = 5_000_000        # numbers in one CSV table (40 MB as float64)
CSV_AUTO_CLASSES = 10            # a whole-number CSV target with at most this many values is a class
MAX_CSV_CLASSES = 1000           # classes a CSV target may have with task: classification
MAX_X = 1e6                      # |x| bound of the sinusoid's range (and of its frequency and amplitude)


class OptionError(UserError):
    """A bad value of one option of ``data:``; ``option`` names it (``"n"``, ``"path"``; None: the mapping)."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option


def _file_error(path, message: str) -> UserError:
    return UserError(message, Location(str(path)))

CLASSIFICATION = "classification"
REGRESSION = "regression"


@dataclass(eq=False)  # eq=False: comparing arrays with == has no single truth value
class Dataset:
    """Features ``X`` (n, d) float64 and targets ``y``: int64 labels (n,) or float64 values (n, k).

    ``labels``: the value each class number stands for in the source (a CSV file's label column),
    when classes were numbered from such values.
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int | None
    name: str
    labels: np.ndarray | None = None
    #: the feature columns' names (a CSV file's header without the target), when the source has them
    columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float64)
        if self.task not in (CLASSIFICATION, REGRESSION):
            raise ValueError(f"task must be {CLASSIFICATION!r} or {REGRESSION!r}, got {self.task!r}")
        classify = self.task == CLASSIFICATION
        self.y = np.asarray(self.y, dtype=np.int64 if classify else np.float64)
        if self.X.ndim != 2 or self.y.ndim != (1 if classify else 2) or len(self.y) != len(self.X):
            raise ValueError(f"inconsistent shapes for {self.task}: X {self.X.shape}, y {self.y.shape}")

    def __len__(self) -> int:
        return len(self.X)

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_outputs(self) -> int:
        """Width of the network's output layer: C for classification, k for regression."""
        return self.n_classes if self.task == CLASSIFICATION else self.y.shape[1]

    def subset(self, idx) -> Dataset:
        """The rows picked by ``idx`` (integer indices or a boolean mask), always 2-D features."""
        idx = np.asarray(idx)
        if idx.ndim == 0:
            idx = idx.reshape(1)
        if idx.size == 0:
            idx = idx.astype(np.intp)
        return replace(self, X=self.X[idx], y=self.y[idx])


# ---------------------------------------------------------------------------- option checks

def _integer(key: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise OptionError(f"{key} must be an integer >= {minimum}, got {value!r}", key.rpartition(".")[2])
    return int(value)


def _noise(value) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < 0):
        raise OptionError(f"data.noise must be a number >= 0, got {value!r}", "noise")
    return float(value)


def _start(n, seed) -> tuple[int, np.random.Generator]:
    """Checked ``n`` and the seeded generator every toy dataset starts from."""
    n = _integer("data.n", n, 2)
    return n, np.random.default_rng(_integer("data.seed", seed, 0))


def _shuffled(X, y, rng, n_classes: int, name: str) -> Dataset:
    """A classification set in random row order, so any prefix holds every class."""
    order = rng.permutation(len(y))
    return Dataset(X[order], y[order], CLASSIFICATION, n_classes, name)


# ---------------------------------------------------------------------------- toy generators

def _positive(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= MAX_X:
        raise OptionError(f"data.{key} must be a number in (0, {MAX_X:g}], got {value!r}", key)
    return float(value)


def _interval(value) -> tuple[float, float]:
    """``[lo, hi]``: two numbers within ±``MAX_X`` with lo < hi."""
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and abs(v) <= MAX_X
                       for v in value)):
        raise OptionError(f"data.range must be a list of two numbers [lo, hi] within ±{MAX_X:g}, "
                          f"got {value!r}", "range")
    lo, hi = float(value[0]), float(value[1])
    if not lo < hi:
        raise OptionError(f"data.range [{lo:g}, {hi:g}] is empty or reversed; lo must be below hi", "range")
    return lo, hi


def sinusoid(n=1000, seed=0, noise=0.1, range=(0.0, 2 * np.pi), frequency=1.0, amplitude=1.0) -> Dataset:
    """1-D regression: y = amplitude·sin(frequency·x) + N(0, noise²), x uniform on ``range``.

    Options: ``n`` samples (>= 2, default 1000); ``seed`` (>= 0, default 0); ``noise`` the
    standard deviation added to y (>= 0, default 0.1); ``range`` [lo, hi] with lo < hi, both
    within ±``MAX_X`` (default [0, 2π)); ``frequency`` in radians per unit of x (in (0, ``MAX_X``],
    default 1); ``amplitude`` (in (0, ``MAX_X``], default 1).  y has shape (n, 1).
    """
    n, rng = _start(n, seed)
    noise = _noise(noise)
    lo, hi = _interval(range)
    frequency, amplitude = _positive("frequency", frequency), _positive("amplitude", amplitude)
    x = rng.uniform(lo, hi, size=(n, 1))
    y = amplitude * np.sin(frequency * x) + noise * rng.standard_normal((n, 1))
    return Dataset(x, y, REGRESSION, None, "sinusoid")


def _unit_disc(rng, m: int) -> np.ndarray:
    """m points uniform in the unit disc (radius √u keeps the density flat)."""
    r = np.sqrt(rng.uniform(size=m))
    t = rng.uniform(0.0, 2 * np.pi, size=m)
    return np.column_stack([r * np.cos(t), r * np.sin(t)])


CIRCLE = ((-0.5, 0.0), 1.0)             # centre, radius: class 0
ELLIPSE = ((0.5, 0.0), (1.5, 0.6))      # centre, semi-axes (x, y): class 1, overlaps the circle


def ellipse_circle(n=1000, seed=0) -> Dataset:
    """2 classes: points uniform in a circle (0) or in an overlapping ellipse (1); n//2 of class 0."""
    n, rng = _start(n, seed)
    m = n // 2
    X = np.vstack([_unit_disc(rng, m) * CIRCLE[1] + CIRCLE[0],
                   _unit_disc(rng, n - m) * ELLIPSE[1] + ELLIPSE[0]])
    y = np.repeat([0, 1], [m, n - m])
    return _shuffled(X, y, rng, 2, "ellipse_circle")


# Blob centres in an order whose labels alternate 0, 1, 0, 1, so even n = 2 gets both classes.
XOR_CENTRES = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [1.0, -1.0]])


def xor(n=1000, seed=0, noise=0.3) -> Dataset:
    """4 Gaussian blobs (std ``noise``) at (±1, ±1); label 1 when the centre's signs differ."""
    n, rng = _start(n, seed)
    noise = _noise(noise)
    blob = np.arange(n) % 4
    X = XOR_CENTRES[blob] + noise * rng.standard_normal((n, 2))
    return _shuffled(X, blob % 2, rng, 2, "xor")


def moons(n=1000, seed=0, noise=0.1) -> Dataset:
    """Two interleaving half circles as in scikit-learn's ``make_moons`` (upper arc 0, lower arc 1)."""
    n, rng = _start(n, seed)
    noise = _noise(noise)
    n_out = n // 2
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n - n_out)
    X = np.vstack([np.column_stack([np.cos(t_out), np.sin(t_out)]),
                   np.column_stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)])])
    X += noise * rng.standard_normal(X.shape)
    return _shuffled(X, np.repeat([0, 1], [n_out, n - n_out]), rng, 2, "moons")


def spirals(n=1000, seed=0, noise=0.05, classes=2) -> Dataset:
    """``classes`` interleaved arms, each 1.5 turns from the centre out to radius 1, plus N(0, noise²)."""
    n, rng = _start(n, seed)
    noise = _noise(noise)
    k = _integer("data.classes", classes, 2)
    if n < k:
        raise OptionError(f"data.n must be at least data.classes ({k}) so every arm gets a point, got {n}", "n")
    y = np.arange(n) % k
    r = rng.uniform(size=n)                          # position along the arm: 0 centre, 1 rim
    theta = 2 * np.pi * y / k + 3 * np.pi * r
    X = np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    X += noise * rng.standard_normal(X.shape)
    return _shuffled(X, y, rng, k, "spirals")


GENERATORS: dict[str, Callable[..., Dataset]] = {
    "sinusoid": sinusoid,
    "ellipse_circle": ellipse_circle,
    "xor": xor,
    "moons": moons,
    "spirals": spirals,
}


# ---------------------------------------------------------------------------- MNIST

IMAGES_MAGIC = 0x00000803   # unsigned bytes, 3 dimensions (n, rows, cols)
LABELS_MAGIC = 0x00000801   # unsigned bytes, 1 dimension (n,)


def read_idx(path, magic: int) -> np.ndarray:
    """An IDX array of unsigned bytes (gzipped or not), checking magic number and exact length.

    The header is read first; the body only when its declared size is at most ``MAX_DATA_BYTES``
    and (uncompressed) equals what the file holds, and never more than one byte past it.
    """
    path = Path(path)
    what = "images" if magic == IMAGES_MAGIC else "labels"
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            gz = fh.read(2) == b"\x1f\x8b"
            fh.seek(0)
            stream = gzip.GzipFile(fileobj=fh, mode="rb") if gz else fh
            head = stream.read(4)
            if len(head) < 4:
                raise _file_error(path, f"too short to be an IDX file ({len(head)} bytes)")
            found = int.from_bytes(head, "big")
            if found != magic:
                raise _file_error(path, f"bad magic number 0x{found:08x}, expected 0x{magic:08x} (IDX {what})")
            header = 4 + 4 * (magic & 0xFF)
            rest = stream.read(header - 4)
            if len(rest) < header - 4:
                raise _file_error(path, f"truncated: {4 + len(rest)} bytes, the header alone needs {header}")
            dims = tuple(int.from_bytes(rest[i:i + 4], "big") for i in range(0, header - 4, 4))
            body = math.prod(dims)
            expected = header + body
            if body > MAX_DATA_BYTES:
                raise _file_error(path, f"dimensions {dims} declare {body} bytes of data; at most "
                                        f"{MAX_DATA_BYTES} are read")
            if not gz and size != expected:
                problem = "truncated" if size < expected else "has extra bytes"
                raise _file_error(path, f"{problem}: dimensions {dims} need {expected} bytes, file has {size}")
            raw = stream.read(body + 1)
    except UserError:
        raise
    except (OSError, EOFError, zlib.error) as e:
        raise _file_error(path, f"cannot read: {e}") from None
    if len(raw) != body:
        problem = "truncated" if len(raw) < body else "has extra bytes"
        held = f"{header + len(raw)}" if len(raw) < body else "more"
        raise _file_error(path, f"{problem}: dimensions {dims} need {expected} bytes (uncompressed), "
                                f"file has {held}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(dims)


def _idx_file(directory: Path, prefix: str, kind: str) -> Path:
    """``train-images-idx3-ubyte`` or ``train-images.idx3-ubyte`` (either maybe ``.gz``) in directory."""
    idx = "idx3" if kind == "images" else "idx1"
    names = [f"{prefix}-{kind}{sep}{idx}-ubyte{gz}" for sep in "-." for gz in ("", ".gz")]
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise _file_error(directory, f"no MNIST {prefix} {kind} file (looked for {', '.join(names)})")


def _idx_part(directory: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if part == "train" else "t10k"
    images_path, labels_path = (_idx_file(directory, prefix, k) for k in ("images", "labels"))
    images, labels = read_idx(images_path, IMAGES_MAGIC), read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise _file_error(labels_path, f"{len(labels)} labels but {images_path.name} has {len(images)} images")
    return images, labels


def _npz_parts(path: Path, parts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The keras layout: arrays x_train, y_train and optionally x_test, y_test."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise _file_error(path, f"not a readable .npz file ({e})") from None
    if not hasattr(data, "files"):
        raise _file_error(path, "holds a single array, expected an .npz with x_train and y_train")
    try:
        out = []
        for part in parts:
            for key in (f"x_{part}", f"y_{part}"):
                if key not in data.files:
                    raise _file_error(path, f"no array {key!r} (found: {', '.join(data.files) or 'none'})")
            for key in (f"x_{part}", f"y_{part}"):
                _check_npz_member(data, key, path)
            x, y = data[f"x_{part}"], data[f"y_{part}"]
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if x.ndim not in (2, 3) or y.ndim != 1 or len(x) != len(y):
                raise _file_error(path, f"x_{part} {x.shape} and y_{part} {y.shape} should be "
                                "(n, 28, 28) or (n, 784) images and (n,) labels")
            out.append((x.reshape(len(x), -1), y))
        return out
    except (ValueError, zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise _file_error(path, f"cannot read arrays: {e}") from None
    finally:
        data.close()


def _check_npz_member(data, key: str, path: Path) -> None:
    """Refuse an .npz member whose header declares more than ``MAX_DATA_BYTES`` (a zip bomb: a few
    MB of zeros declaring gigabytes), reading only the header, before any data is allocated."""
    fmt = np.lib.format
    member = f"{key}.npy" if f"{key}.npy" in data.zip.namelist() else key
    with data.zip.open(member) as fh:
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise _file_error(path, f"array {key!r} is in .npy format version {version}; 1.0 or 2.0 are read")
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(fh)
    declared = math.prod(shape) * dtype.itemsize
    if declared > MAX_DATA_BYTES:
        raise _file_error(path, f"array {key!r} declares shape {shape} of {dtype} ({declared} bytes); at most "
                                f"{MAX_DATA_BYTES} are read")


def _pixels(x: np.ndarray, source: Path) -> np.ndarray:
    """Pixels as float64 in [0, 1]: integers (and floats above 1) are taken as 0..255 and divided."""
    if x.dtype.kind not in "iuf":
        raise _file_error(source, f"images must be numeric, got dtype {x.dtype}")
    integers, x = x.dtype.kind != "f", x.astype(np.float64)
    if x.size and not (0 <= x.min() and x.max() <= 255):
        raise _file_error(source, f"pixel values must lie in 0..255, found {x.min():g}..{x.max():g}")
    return x / 255.0 if integers or (x.size and x.max() > 1) else x


def load_mnist(path, limit=None, split="train") -> Dataset:
    """MNIST from a directory of IDX files or a keras .npz: flattened images in [0, 1], 10 classes.

    ``split`` is ``train``, ``test`` or ``all`` (train then test); ``limit`` keeps the first N rows
    (all of them when fewer exist).
    """
    path = Path(path)
    if split not in ("train", "test", "all"):
        raise OptionError(f"data.split must be one of train, test, all; got {split!r}", "split")
    if limit is not None:
        limit = _integer("data.limit", limit, 1)
    parts = ["train", "test"] if split == "all" else [split]
    if path.is_dir():
        arrays = [_idx_part(path, part) for part in parts]
    elif path.is_file() and path.suffix == ".npz":
        arrays = _npz_parts(path, parts)
    elif path.exists():
        raise OptionError(f"data.path: {path} must be a directory of MNIST IDX files or an .npz file", "path")
    else:
        raise OptionError(f"data.path: {path} does not exist", "path")
    x = np.concatenate([a[0].reshape(len(a[0]), -1) for a in arrays])[:limit]
    y = np.concatenate([a[1] for a in arrays])[:limit]
    if y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() > 9)):
        raise _file_error(path, "MNIST labels must be integers 0..9")
    return Dataset(_pixels(x, path), y, CLASSIFICATION, 10, "mnist")


def load_digits(limit=None) -> Dataset:
    """scikit-learn's bundled 8×8 digits (1797 images, shipped with the package): 64 features in [0, 1]."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise OptionError("dataset 'digits' needs scikit-learn: pip install scikit-learn", "dataset") from None
    if limit is not None:
        limit = _integer("data.limit", limit, 1)
    bunch = sklearn_digits()
    return Dataset(bunch.data[:limit] / 16.0, bunch.target[:limit], CLASSIFICATION, 10, "digits")


# ---------------------------------------------------------------------------- CSV tables

# A plain decimal number: what a spreadsheet writes (no nan, inf, hex or 1_000).
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _csv_file(path: Path) -> None:
    """Refuse a CSV path that is not a regular file or is larger than ``MAX_DATA_BYTES``, unopened."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise OptionError(f"data.path: {path} does not exist", "path") from None
    except OSError as e:
        raise _file_error(path, f"cannot read: {e.strerror or e}") from None
    if not os.path.isfile(path):
        raise OptionError(f"data.path: {path} must be a CSV file", "path")
    if info.st_size > MAX_DATA_BYTES:
        raise _file_error(path, f"is {info.st_size} bytes; at most {MAX_DATA_BYTES} bytes of CSV are read")


def _csv_records(path: Path):
    """(line number, fields) of each non-blank record, the header first; located errors for bad text."""
    _csv_file(path)
    try:
        with path.open("rb") as fh:
            if fh.read(2) in (b"\xff\xfe", b"\xfe\xff"):
                raise UserError("is UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8",
                                Location(str(path), 1, 1))
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, strict=True)
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    yield reader.line_num, [cell.strip() for cell in row]
    except UserError:
        raise
    except UnicodeDecodeError as e:
        raise _file_error(path, f"is not UTF-8 text (byte 0x{e.object[e.start]:02x}); save it as UTF-8") from None
    except csv.Error as e:
        raise UserError(f"not valid CSV: {e}", Location(str(path), reader.line_num)) from None
    except OSError as e:
        raise _file_error(path, f"cannot read: {e.strerror or e}") from None


def csv_header(path) -> list[str]:
    """The column names in a CSV file's first non-blank line (each non-empty and distinct)."""
    path = Path(path)
    first = next(_csv_records(path), None)
    if first is None:
        raise _file_error(path, "is empty; a CSV table needs a header row of column names, then rows of numbers")
    line, names = first
    if len(names) == 1:
        sep = next((c for c in ";\t|" if c in names[0]), None)
        if sep is not None:
            raise UserError(f"the header row is one column '{short(names[0])}' holding {sep!r}: the columns "
                            f"of this file are separated by {sep!r}, but a CSV table's are separated by ','",
                            Location(str(path), line))
    for col, name in enumerate(names, 1):
        if not name:
            raise UserError(f"column {col} of the header row has no name", Location(str(path), line))
        if names.index(name) < col - 1:
            raise UserError(f"column {col} of the header row repeats the name {name!r}", Location(str(path), line))
    return names


def csv_target_error(path, target: str) -> str | None:
    """Why ``target`` cannot be the target column of the CSV file's header, or None."""
    names = csv_header(path)
    if target in names:
        return None if len(names) > 1 else f"{Path(path).name} has no column besides the target {target!r}"
    return (f"data.target: no column {target!r} in {Path(path).name}{suggest(target, names)}; "
            f"columns: {', '.join(names)}")


def _csv_classes(path: Path, y: np.ndarray, task: str | None, target: str) -> tuple[str, np.ndarray, np.ndarray | None]:
    """The task, the targets (class indices or an (n, 1) column) and the label value of each class
    (None for regression), by the documented rule."""
    whole = bool(np.all(y == np.round(y)))
    values = np.unique(y) if whole else None
    if task is None:
        task = CLASSIFICATION if whole and len(values) <= CSV_AUTO_CLASSES else REGRESSION
    if task == REGRESSION:
        return task, y.reshape(-1, 1), None
    if not whole:
        row = int(np.flatnonzero(y != np.round(y))[0])
        raise _file_error(path, f"task classification needs whole-number class labels in column {target!r}, "
                                f"but data row {row + 1} has {y[row]:g}")
    if len(values) > MAX_CSV_CLASSES:
        raise _file_error(path, f"column {target!r} has {len(values)} distinct labels; at most "
                                f"{MAX_CSV_CLASSES} classes")
    return task, np.searchsorted(values, y), values


def load_csv(path, target, task=None, limit=None) -> Dataset:
    """A numeric table: a header row of column names, then one row of numbers per sample.

    ``target`` names the column to predict; every other column is a feature.  Unless ``task``
    says otherwise, the target is a class label when all its values are whole numbers and there
    are at most ``CSV_AUTO_CLASSES`` distinct ones (classes are numbered 0, 1, ... in increasing
    order of value), else a regression target.  ``limit`` keeps the first N rows.
    """
    path = Path(path)
    if not isinstance(target, str) or not target:
        raise OptionError(f"data.target must be a column name, got {target!r}", "target")
    if task not in (None, CLASSIFICATION, REGRESSION):
        raise OptionError(f"data.task must be {CLASSIFICATION} or {REGRESSION}, got {task!r}", "task")
    if limit is not None:
        limit = _integer("data.limit", limit, 1)
    problem = csv_target_error(path, target)
    if problem is not None:
        raise OptionError(problem, "target")
    records = _csv_records(path)
    try:
        _, names = next(records)
        rows = _csv_numbers(path, records, names, limit)
    finally:
        records.close()
    table = np.array(rows)
    if not np.all(np.isfinite(table)):
        line_row, col = np.argwhere(~np.isfinite(table))[0]
        raise _file_error(path, f"data row {line_row + 1}, column {names[col]!r}: number too large for float64")
    j = names.index(target)
    task, y, labels = _csv_classes(path, table[:, j], task, target)
    return Dataset(np.delete(table, j, axis=1), y, task, None if labels is None else len(labels), path.name, labels,
                   tuple(n for n in names if n != target))


def _csv_numbers(path: Path, records, names: list[str], limit: int | None) -> list[list[float]]:
    """The rows after the header as floats (at most ``limit``), each error at its line and column."""
    rows: list[list[float]] = []
    for line, row in records:
        if limit is not None and len(rows) >= limit:
            break
        where = Location(str(path), line)
        if len(row) != len(names):
            raise UserError(f"this row has {len(row)} fields but the header has {len(names)}", where)
        if (len(rows) + 1) * len(names) > MAX_CSV_CELLS:
            raise UserError(f"more than {MAX_CSV_CELLS} numbers in the table; use data.limit "
                            f"(at most {MAX_CSV_CELLS // len(names)} rows)", where)
        for col, cell in enumerate(row):
            if not _NUMBER.fullmatch(cell):
                found = f"{cell[:40]!r}" if cell else "an empty field"
                raise UserError(f"column {col + 1} ({names[col]!r}) must be a number, found {found}", where)
        rows.append([float(cell) for cell in row])
    if not rows:
        raise _file_error(path, "has a header row but no rows of numbers")
    return rows


DATASETS: dict[str, Callable[..., Dataset]] = {"mnist": load_mnist, "digits": load_digits, "csv": load_csv}


# ---------------------------------------------------------------------------- entry points

def _resolve(path, base_dir) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise OptionError(f"data.path must be a file or directory name, got {path!r}", "path")
    p = Path(path).expanduser()
    return Path(base_dir) / p if base_dir is not None and not p.is_absolute() else p


def make_dataset(spec: dict, base_dir: Path | None = None,
                 at: Callable[..., Location | None] | None = None) -> Dataset:
    """Build the dataset a problem's ``data:`` mapping describes (``generator:`` or ``dataset:``).

    Options are checked against the function's own parameters, so a registry entry is all a new
    generator or loader needs. Relative ``path`` values are resolved against ``base_dir``.  With
    ``at`` (``at()`` the mapping's place in the problem file, ``at(option)`` an option's), a bad
    option is raised there.
    """
    try:
        return _make_dataset(spec, base_dir)
    except OptionError as exc:
        if at is None:
            raise
        where = at(exc.option) if exc.option is not None and exc.option in (spec or {}) else at()
        raise UserError(exc.message, where) from None


def _make_dataset(spec: dict, base_dir: Path | None) -> Dataset:
    if not isinstance(spec, Mapping):
        raise OptionError(f"data must be a mapping such as {{generator: moons, n: 1000}}, "
                        f"got {type(spec).__name__}")
    options = dict(spec)
    if ("generator" in options) == ("dataset" in options):
        raise OptionError(f"data needs exactly one of 'generator' ({', '.join(sorted(GENERATORS))}) "
                        f"or 'dataset' ({', '.join(sorted(DATASETS))})")
    kind, registry, other = (("generator", GENERATORS, DATASETS) if "generator" in options
                             else ("dataset", DATASETS, GENERATORS))
    name = options.pop(kind)
    if not isinstance(name, str) or name not in registry:
        hint = (f" (did you mean {'dataset' if kind == 'generator' else 'generator'}: {name}?)"
                if isinstance(name, str) and name in other else "")
        raise OptionError(f"data.{kind}: unknown {kind} {name!r}; known: "
                          f"{', '.join(sorted(registry))}{hint}", kind)
    params = inspect.signature(registry[name]).parameters
    for key in options:
        if key not in params:
            raise OptionError(f"data: unknown option {key!r} for {kind} {name!r}; "
                              f"allowed: {', '.join(params)}", key)
    for key, param in params.items():
        if param.default is inspect.Parameter.empty and key not in options:
            raise OptionError(f"data: {kind} {name!r} needs {key!r}")
    if "path" in options:
        options["path"] = _resolve(options["path"], base_dir)
    return registry[name](**options)


def part_size(n: int, fraction: float) -> int:
    """How many of ``n`` samples a split gives its part: round(n × fraction), at least 1, at most n − 1."""
    return min(max(round(n * fraction), 1), n - 1)


def split_off(ds: Dataset, fraction: float, seed: int = 0, what: str = "fraction") -> tuple[Dataset, Dataset]:
    """A shuffled (rest, part) split with :func:`part_size` samples in ``part``, the same for the same seed.

    Classification is stratified: each class's count in ``part`` is within 1 of its fair share.
    ``what`` names the fraction in error messages (``val_fraction``, ``test.fraction``).
    """
    if (isinstance(fraction, bool) or not isinstance(fraction, numbers.Real)
            or not 0 < fraction < 1):
        raise UserError(f"{what} must be a number strictly between 0 and 1, got {fraction!r}")
    n = len(ds)
    if n < 2:
        raise UserError(f"dataset {ds.name!r} has {n} sample(s); splitting off a {what} needs at least 2")
    rng = np.random.default_rng(_integer("seed", seed, 0))
    n_part = part_size(n, fraction)
    order = rng.permutation(n)
    if ds.task != CLASSIFICATION:
        return ds.subset(order[n_part:]), ds.subset(order[:n_part])
    order = order[np.argsort(ds.y[order], kind="stable")]     # grouped by class, random within
    picks = (2 * np.arange(n_part) + 1) * n // (2 * n_part)     # evenly spread, so classes get their share
    in_part = np.zeros(n, dtype=bool)
    in_part[order[picks]] = True
    return (ds.subset(rng.permutation(np.flatnonzero(~in_part))),
            ds.subset(rng.permutation(np.flatnonzero(in_part))))


def train_val_split(ds: Dataset, val_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Shuffled, stratified (train, validation) split: :func:`split_off` of the validation part."""
    return split_off(ds, val_fraction, seed, "val_fraction")


# ---------------------------------------------------------------------------- test sets

def shape_error(data: tuple, test: tuple) -> str | None:
    """Why a test source of ``test`` shape cannot test a network fitted to ``data``, or None.

    A shape is (features, task, classes, feature names); None in it means "known only when
    loaded" (or "has no names") and matches anything.
    """
    (f1, t1, c1, n1), (f2, t2, c2, n2) = data, test
    if None not in (f1, f2) and f1 != f2:
        return f"the test set has {f2} feature(s) but the data has {f1}"
    if None not in (n1, n2) and n1 != n2:
        return (f"the test table's feature columns ({', '.join(n2)}) are not the data's "
                f"({', '.join(n1)}), in the same order")
    if None not in (t1, t2) and t1 != t2:
        return f"the test set is {t2} data but the data is {t1}"
    if t1 == t2 == CLASSIFICATION and None not in (c1, c2) and c1 != c2:
        return f"the test set has {c2} classes but the data has {c1}"
    return None


def _shape(ds: Dataset) -> tuple:
    return ds.n_features, ds.task, ds.n_classes, ds.columns


def check_compatible(data_ds: Dataset, test_ds: Dataset) -> str | None:
    """Why ``test_ds`` cannot test a network trained on ``data_ds`` (features, their names, task,
    classes), or None."""
    return shape_error(_shape(data_ds), _shape(test_ds))


def source_shape(spec: dict, base_dir: Path | None = None) -> tuple:
    """(features, task, classes, feature names) of a checked data mapping, as far as known without
    loading it.

    A generator is run on a handful of samples; a CSV file's header gives its features (its task
    only when ``task`` is given); MNIST and digits are known only when loaded (all None).
    """
    if "generator" in spec:
        options = {k: v for k, v in spec.items() if k != "generator"}
        options["n"] = max(2, options.get("classes", 2))
        return _shape(GENERATORS[spec["generator"]](**options))
    if spec.get("dataset") == "csv":
        names = tuple(n for n in csv_header(_resolve(spec["path"], base_dir)) if n != spec["target"])
        return len(names), spec.get("task"), None, names
    if spec.get("dataset") == "digits":
        return 64, CLASSIFICATION, None if spec.get("limit") else 10, None
    return None, None, None, None


def _relabelled(test_ds: Dataset, data_ds: Dataset) -> tuple[Dataset, str | None]:
    """The test set with its classes numbered as the data's (a test CSV may lack a class, which
    would shift the numbers), or why it cannot be; unchanged unless both number their classes
    from label values."""
    if test_ds.labels is None or data_ds.labels is None:
        return test_ds, None
    values = test_ds.labels[test_ds.y]
    index = np.searchsorted(data_ds.labels, values).clip(0, len(data_ds.labels) - 1)
    unknown = data_ds.labels[index] != values
    if np.any(unknown):
        return test_ds, (f"data row {int(np.flatnonzero(unknown)[0]) + 1} of {test_ds.name} has the label "
                         f"{values[unknown][0]:g}, which {data_ds.name} never has")
    return replace(test_ds, y=index, n_classes=data_ds.n_classes, labels=data_ds.labels), None


def load_test(test: dict, data_ds: Dataset, base_dir: Path | None = None,
              at: Callable[..., Location | None] | None = None) -> Dataset:
    """The test set a ``test:`` data mapping describes, checked against the data it tests.

    ``at`` places errors as for :func:`make_dataset` (``at()`` the ``test:`` mapping, ``at(option)``
    an option); a mismatch of features, task or classes is raised at ``at()``.
    (``test: {fraction: f}`` is not loaded: it is :func:`split_off` the data.)
    """
    test_ds, problem = _relabelled(make_dataset(test, base_dir, at), data_ds)
    problem = problem or check_compatible(data_ds, test_ds)
    if problem is not None:
        raise UserError(f"check.test: {problem}; a test set must match the data it tests",
                        at() if at is not None else None)
    return test_ds


def standardize(train: Dataset, *others: Dataset) -> tuple[Dataset, ...]:
    """Features shifted and scaled by the *training* mean and std, so validation and test stay unseen.

    Returns the training set and each of ``others`` (validation, test) scaled alike. A constant
    training feature (std zero, up to rounding) is only shifted.
    """
    mean, std = standardization(train)
    return tuple(replace(ds, X=(ds.X - mean) / std) for ds in (train, *others))


def standardization(train: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The training set's per-feature mean and std (1 for a constant feature): x ↦ (x − mean) / std."""
    mean, std = train.X.mean(axis=0), train.X.std(axis=0)
    return mean, np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
