"""Tests for derivkit.training.datasets: toy generators, MNIST/digits loaders, splitting and scaling."""
from __future__ import annotations

import gzip
import json
import struct
import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derivkit.training.datasets import (
    CIRCLE, DATASETS, ELLIPSE, GENERATORS, IMAGES_MAGIC, LABELS_MAGIC, Dataset, check_compatible,
    load_mnist, load_test, make_dataset, part_size, read_idx, source_shape, split_off, standardize, train_val_split,
)
from derivkit.errors import UserError
from helpers import no_hang

CLASSIFIERS = [name for name in GENERATORS if name != "sinusoid"]


# ---------------------------------------------------------------------------- helpers

def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Encode a uint8 array as IDX: magic, big-endian dims, then the bytes."""
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x800 | array.ndim) if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(directory, images, labels, prefix="train", style="-", gz=False,
                images_data=None, labels_data=None):
    """Write an images/labels IDX pair named as MNIST names them (``style`` "-" or "." before idx)."""
    directory.mkdir(parents=True, exist_ok=True)
    for kind, idx, array, data in (("images", "idx3", images, images_data),
                                   ("labels", "idx1", labels, labels_data)):
        data = idx_bytes(array) if data is None else data
        name = f"{prefix}-{kind}{style}{idx}-ubyte" + (".gz" if gz else "")
        (directory / name).write_bytes(gzip.compress(data) if gz else data)
    return directory


def tiny_mnist(n=5, offset=0):
    """n 28×28 images whose pixel (0, 0) is 10*i+offset (rest 255) and labels i % 10."""
    images = np.full((n, 28, 28), 255, dtype=np.uint8)
    images[:, 0, 0] = 10 * np.arange(n) + offset
    return images, np.arange(n, dtype=np.uint8) % 10


def raises(match):
    return pytest.raises(UserError, match=match)


# ---------------------------------------------------------------------------- Dataset

def test_dataset_properties_and_subset():
    ds = Dataset(np.arange(12).reshape(6, 2), [0, 1, 2, 0, 1, 2], "classification", 3, "toy")
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.int64
    assert (ds.n_features, ds.n_outputs, len(ds)) == (2, 3, 6)
    sub = ds.subset([4, 1])
    assert sub.X.tolist() == [[8, 9], [2, 3]] and sub.y.tolist() == [1, 1]
    assert (sub.name, sub.task, sub.n_classes) == ("toy", "classification", 3)
    assert ds.subset(3).X.shape == (1, 2)                       # an int index stays 2-D
    assert ds.subset([]).X.shape == (0, 2)
    assert ds.subset(ds.y == 2).y.tolist() == [2, 2]            # boolean mask

    reg = Dataset(np.zeros((4, 3)), np.zeros((4, 2)), "regression", None, "r")
    assert (reg.n_features, reg.n_outputs) == (3, 2)


def test_dataset_rejects_inconsistent_shapes():
    with pytest.raises(ValueError):
        Dataset(np.zeros((3, 2)), np.zeros(4), "classification", 2, "bad")
    with pytest.raises(ValueError):
        Dataset(np.zeros((3, 2)), np.zeros(3), "regression", None, "bad")   # y must be (n, k)
    with pytest.raises(ValueError):
        Dataset(np.zeros((3, 2)), np.zeros(3), "clustering", None, "bad")


# ---------------------------------------------------------------------------- generators

@pytest.mark.parametrize("name", list(GENERATORS))
def test_generator_shapes_dtypes_and_determinism(name):
    ds = GENERATORS[name](n=300, seed=3)
    assert ds.name == name and len(ds) == 300
    assert ds.X.dtype == np.float64 and np.all(np.isfinite(ds.X))
    if name == "sinusoid":
        assert ds.task == "regression" and ds.n_classes is None
        assert ds.X.shape == (300, 1) and ds.y.shape == (300, 1) and ds.y.dtype == np.float64
    else:
        assert ds.task == "classification" and ds.n_classes == 2 and ds.n_outputs == 2
        assert ds.X.shape == (300, 2) and ds.y.shape == (300,) and ds.y.dtype == np.int64
        assert set(ds.y.tolist()) == {0, 1}
        assert abs(np.mean(ds.y) - 0.5) < 0.05                  # roughly balanced
        assert 0.3 < np.mean(ds.y[:100]) < 0.7                  # rows are shuffled, not sorted by class
    again, other = GENERATORS[name](n=300, seed=3), GENERATORS[name](n=300, seed=4)
    assert np.array_equal(ds.X, again.X) and np.array_equal(ds.y, again.y)
    assert not np.array_equal(ds.X, other.X)
    assert len(GENERATORS[name]()) == 1000                      # default n


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_smallest_n_has_both_classes(name):
    assert sorted(GENERATORS[name](n=2).y.tolist()) == [0, 1]


def test_sinusoid_values():
    ds = GENERATORS["sinusoid"](n=500, noise=0)
    assert ds.X.min() >= 0 and ds.X.max() < 2 * np.pi
    assert np.allclose(ds.y, np.sin(ds.X))
    residual = GENERATORS["sinusoid"](n=4000, seed=1).y - np.sin(GENERATORS["sinusoid"](n=4000, seed=1).X)
    assert abs(residual.std() - 0.1) < 0.01                     # default noise 0.1


@settings(max_examples=40, deadline=None)
@given(lo=st.floats(-1e3, 1e3), width=st.floats(1e-3, 1e3), frequency=st.floats(0.01, 100),
       amplitude=st.floats(0.01, 100), seed=st.integers(0, 2**32 - 1))
def test_sinusoid_options_shape_the_curve(lo, width, frequency, amplitude, seed):
    hi = lo + width
    ds = GENERATORS["sinusoid"](n=50, seed=seed, noise=0, range=[lo, hi], frequency=frequency,
                                amplitude=amplitude)
    assert np.all((lo <= ds.X) & (ds.X <= hi))
    assert np.allclose(ds.y, amplitude * np.sin(frequency * ds.X))


@pytest.mark.parametrize("options, option", [
    ({"range": [1, 0]}, "range"), ({"range": [1, 1]}, "range"), ({"range": [0, 1, 2]}, "range"),
    ({"range": [0, float("inf")]}, "range"), ({"range": [0, "1"]}, "range"), ({"range": 3}, "range"),
    ({"range": [True, 2]}, "range"), ({"range": [-1e308, 1e308]}, "range"),
    ({"frequency": 0}, "frequency"), ({"frequency": -1.5}, "frequency"),
    ({"amplitude": float("nan")}, "amplitude"), ({"amplitude": 0}, "amplitude"), ({"noise": -0.1}, "noise"),
])
def test_sinusoid_bad_options_name_the_option(options, option):
    from derivkit.training.datasets import OptionError
    with pytest.raises(OptionError) as info:
        make_dataset({"generator": "sinusoid", **options})
    assert info.value.option == option


def test_ellipse_circle_geometry():
    ds = GENERATORS["ellipse_circle"](n=2000, seed=0)
    (cx, cy), radius = CIRCLE
    (ex, ey), (a, b) = ELLIPSE
    in_circle = (ds.X[:, 0] - cx) ** 2 + (ds.X[:, 1] - cy) ** 2 <= radius ** 2 + 1e-12
    in_ellipse = ((ds.X[:, 0] - ex) / a) ** 2 + ((ds.X[:, 1] - ey) / b) ** 2 <= 1 + 1e-12
    assert np.all(in_circle[ds.y == 0]) and np.all(in_ellipse[ds.y == 1])
    assert np.sum(ds.y == 0) == 1000
    assert 0.1 < np.mean(in_circle[ds.y == 1]) < 0.9            # the shapes really overlap


def test_xor_labels_follow_the_signs():
    exact = GENERATORS["xor"](n=400, noise=0)
    assert set(map(tuple, np.abs(exact.X))) == {(1.0, 1.0)}
    assert np.array_equal(exact.y, (np.sign(exact.X[:, 0]) != np.sign(exact.X[:, 1])).astype(int))
    noisy = GENERATORS["xor"](n=2000, seed=1)
    agree = noisy.y == (np.sign(noisy.X[:, 0]) != np.sign(noisy.X[:, 1]))
    assert 0.9 < agree.mean() < 1.0                             # noise blurs, but not much


def test_moons_lie_on_half_circles_without_noise():
    ds = GENERATORS["moons"](n=101, noise=0)
    upper, lower = ds.X[ds.y == 0], ds.X[ds.y == 1]
    assert len(upper) == 50 and len(lower) == 51
    assert np.allclose(np.hypot(*upper.T), 1) and np.all(upper[:, 1] >= -1e-12)
    assert np.allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1) and np.all(lower[:, 1] <= 0.5 + 1e-12)


def test_spirals_with_more_classes():
    ds = GENERATORS["spirals"](n=301, seed=2, classes=3, noise=0)
    assert ds.n_classes == 3 and ds.n_outputs == 3
    assert np.bincount(ds.y).tolist() == [101, 100, 100]
    assert np.all(np.hypot(*ds.X.T) <= 1)
    with raises(r"data\.n must be at least data\.classes \(5\)"):
        GENERATORS["spirals"](n=3, classes=5)
    with raises(r"data\.classes must be an integer >= 2"):
        GENERATORS["spirals"](classes=1)


# ---------------------------------------------------------------------------- make_dataset

def test_make_dataset_passes_options_through():
    ds = make_dataset({"generator": "moons", "n": 50, "seed": 7, "noise": 0.2})
    direct = GENERATORS["moons"](n=50, seed=7, noise=0.2)
    assert np.array_equal(ds.X, direct.X) and np.array_equal(ds.y, direct.y)
    assert make_dataset({"generator": "spirals", "classes": 4, "n": 40}).n_classes == 4


@pytest.mark.parametrize("spec, message", [
    ({"generator": "circles"}, r"unknown generator 'circles'; known: ellipse_circle, moons, sinusoid, spirals, xor"),
    ({"generator": "moons", "nosie": 0.1}, r"unknown option 'nosie' for generator 'moons'; allowed: n, seed, noise"),
    ({"generator": "ellipse_circle", "noise": 0.1}, r"unknown option 'noise'"),
    ({"generator": "xor", "n": 1}, r"data\.n must be an integer >= 2, got 1"),
    ({"generator": "xor", "n": 10.5}, r"data\.n must be an integer >= 2, got 10\.5"),
    ({"generator": "xor", "n": "100"}, r"data\.n must be an integer"),
    ({"generator": "xor", "n": True}, r"data\.n must be an integer"),
    ({"generator": "xor", "seed": 0.5}, r"data\.seed must be an integer >= 0"),
    ({"generator": "xor", "seed": -1}, r"data\.seed must be an integer >= 0"),
    ({"generator": "moons", "noise": -0.1}, r"data\.noise must be a number >= 0"),
    ({"generator": "moons", "noise": "lots"}, r"data\.noise must be a number >= 0"),
    ({"generator": ["moons"]}, r"unknown generator \['moons'\]"),
    ({"n": 100}, r"exactly one of 'generator' \(.*moons.*\) or 'dataset' \(csv, digits, mnist\)"),
    ({"generator": "moons", "dataset": "mnist"}, r"exactly one of"),
    ({"dataset": "moons"}, r"unknown dataset 'moons'; known: csv, digits, mnist \(did you mean generator: moons\?\)"),
    ({"dataset": "mnist"}, r"dataset 'mnist' needs 'path'"),
    ({"dataset": "mnist", "path": 3}, r"data\.path must be a file or directory name"),
    ({"dataset": "digits", "path": "x"}, r"unknown option 'path' for dataset 'digits'; allowed: limit"),
])
def test_make_dataset_errors(spec, message):
    with raises(message):
        make_dataset(spec)


def test_make_dataset_rejects_a_non_mapping():
    with raises(r"data must be a mapping"):
        make_dataset(["moons"])


def test_registries_are_open():
    GENERATORS["constant"] = lambda n=1000, seed=0, value=1.0: Dataset(
        np.full((n, 1), value), np.full((n, 1), value), "regression", None, "constant")
    try:
        assert make_dataset({"generator": "constant", "n": 3, "value": 2.0}).y.tolist() == [[2.0]] * 3
        with raises(r"allowed: n, seed, value"):
            make_dataset({"generator": "constant", "noise": 1})
    finally:
        del GENERATORS["constant"]


# ---------------------------------------------------------------------------- MNIST: IDX files

@pytest.mark.parametrize("style", ["-", "."])
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_directory(tmp_path, style, gz):
    images, labels = tiny_mnist(5)
    write_mnist(tmp_path / "mnist", images, labels, style=style, gz=gz)
    ds = make_dataset({"dataset": "mnist", "path": "mnist"}, base_dir=tmp_path)
    assert ds.X.shape == (5, 784) and ds.n_classes == 10 and ds.name == "mnist"
    assert ds.X[:, 0].tolist() == pytest.approx([0, 10 / 255, 20 / 255, 30 / 255, 40 / 255])
    assert np.all(ds.X[:, 1:] == 1.0)
    assert ds.y.tolist() == [0, 1, 2, 3, 4] and ds.y.dtype == np.int64


def test_mnist_splits_and_limit(tmp_path):
    write_mnist(tmp_path, *tiny_mnist(6))
    assert load_mnist(tmp_path, split="train").y.tolist() == [0, 1, 2, 3, 4, 5]   # no t10k files needed
    with raises(r"no MNIST t10k images file \(looked for t10k-images-idx3-ubyte, "):
        load_mnist(tmp_path, split="test")
    write_mnist(tmp_path, *tiny_mnist(3, offset=1), prefix="t10k", style=".", gz=True)
    test = load_mnist(tmp_path, split="test")
    assert test.X[:, 0] * 255 == pytest.approx([1, 11, 21])
    assert len(load_mnist(tmp_path, split="all")) == 9
    assert load_mnist(tmp_path, split="all", limit=7).y.tolist() == [0, 1, 2, 3, 4, 5, 0]
    assert len(make_dataset({"dataset": "mnist", "path": str(tmp_path), "limit": 100})) == 6
    with raises(r"data\.split must be one of train, test, all; got 'validation'"):
        load_mnist(tmp_path, split="validation")
    with raises(r"data\.limit must be an integer >= 1, got 0"):
        load_mnist(tmp_path, limit=0)


def test_read_idx_any_shape(tmp_path):
    path = tmp_path / "img"
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path.write_bytes(idx_bytes(array))
    assert np.array_equal(read_idx(path, IMAGES_MAGIC), array)
    with raises(r"bad magic number 0x00000803, expected 0x00000801 \(IDX labels\)"):
        read_idx(path, LABELS_MAGIC)


@pytest.mark.parametrize("images_data, labels_data, message", [
    (idx_bytes(tiny_mnist(3)[0], magic=0x801), None,
     r"train-images-idx3-ubyte: bad magic number 0x00000801, expected 0x00000803 \(IDX images\)"),
    (None, idx_bytes(np.zeros((3, 1)), magic=0x803),
     r"train-labels-idx1-ubyte: bad magic number 0x00000803, expected 0x00000801"),
    (idx_bytes(tiny_mnist(3)[0])[:-10], None,
     r"train-images-idx3-ubyte: truncated: dimensions \(3, 28, 28\) need 2368 bytes, file has 2358"),
    (None, idx_bytes(np.arange(3)) + b"\0", r"train-labels-idx1-ubyte: has extra bytes"),
    (None, idx_bytes(np.arange(3))[:6], r"train-labels-idx1-ubyte: truncated: 6 bytes, the header alone needs 8"),
    (None, b"\0\0", r"train-labels-idx1-ubyte: too short to be an IDX file \(2 bytes\)"),
    (None, idx_bytes(np.arange(4)), r"train-labels-idx1-ubyte: 4 labels but train-images-idx3-ubyte has 3 images"),
    (None, idx_bytes(np.array([0, 10, 2])), r"MNIST labels must be integers 0\.\.9"),
])
def test_mnist_idx_errors(tmp_path, images_data, labels_data, message):
    images, labels = tiny_mnist(3)
    write_mnist(tmp_path, images, labels, images_data=images_data, labels_data=labels_data)
    with raises(message):
        load_mnist(tmp_path)


def test_mnist_bad_gzip(tmp_path):
    write_mnist(tmp_path, *tiny_mnist(3), gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with raises(r"train-images-idx3-ubyte\.gz: cannot read"):
        load_mnist(tmp_path)


def test_mnist_missing_paths(tmp_path):
    with raises(r"data\.path: .*nowhere does not exist"):
        make_dataset({"dataset": "mnist", "path": "nowhere"}, base_dir=tmp_path)
    with raises(r"no MNIST train images file \(looked for train-images-idx3-ubyte, train-images-idx3-ubyte\.gz, "
                r"train-images\.idx3-ubyte, train-images\.idx3-ubyte\.gz\)"):
        load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(tiny_mnist(3)[0]))
    with raises(r"no MNIST train labels file"):
        load_mnist(tmp_path)
    with raises(r"must be a directory of MNIST IDX files or an \.npz file"):
        load_mnist(tmp_path / "train-images-idx3-ubyte")


# ---------------------------------------------------------------------------- MNIST: keras .npz

def test_mnist_npz(tmp_path):
    x_train, y_train = tiny_mnist(4)
    x_test, y_test = tiny_mnist(2, offset=5)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    ds = make_dataset({"dataset": "mnist", "path": "mnist.npz", "limit": 3}, base_dir=tmp_path)
    assert ds.X.shape == (3, 784) and ds.y.tolist() == [0, 1, 2]
    assert ds.X[:, 0] * 255 == pytest.approx([0, 10, 20]) and ds.X.max() == 1.0
    test = make_dataset({"dataset": "mnist", "path": str(tmp_path / "mnist.npz"), "split": "test"})
    assert test.X[:, 0] * 255 == pytest.approx([5, 15])
    assert len(load_mnist(tmp_path / "mnist.npz", split="all")) == 6


def test_mnist_npz_flat_float_pixels_are_kept(tmp_path):
    x = np.linspace(0, 1, 2 * 784).reshape(2, 784)
    np.savez(tmp_path / "m.npz", x_train=x, y_train=np.array([[3.0], [7.0]]))
    ds = load_mnist(tmp_path / "m.npz")
    assert np.array_equal(ds.X, x) and ds.y.tolist() == [3, 7]


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": np.zeros((2, 28, 28))}, r"m\.npz: no array 'y_train' \(found: x_train\)"),
    ({"x_train": np.zeros((2, 28, 28)), "y_train": np.zeros(3)}, r"x_train \(2, 28, 28\) and y_train \(3,\)"),
    ({"x_train": np.full((1, 4), 300.0), "y_train": np.zeros(1)}, r"pixel values must lie in 0\.\.255"),
    ({"x_train": np.zeros((1, 4)), "y_train": np.array([0.5])}, r"labels must be integers 0\.\.9"),
])
def test_mnist_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "m.npz", **arrays)
    with raises(message):
        load_mnist(tmp_path / "m.npz")


def test_mnist_npz_test_split_missing_and_garbage(tmp_path):
    np.savez(tmp_path / "m.npz", x_train=np.zeros((1, 4)), y_train=np.zeros(1, dtype=np.uint8))
    with raises(r"no array 'x_test'"):
        load_mnist(tmp_path / "m.npz", split="test")
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file")
    with raises(r"junk\.npz: not a readable \.npz file"):
        load_mnist(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with raises(r"single\.npz: holds a single array"):
        load_mnist(tmp_path / "single.npz")


# ---------------------------------------------------------------------------- digits

def test_digits_with_real_sklearn():
    pytest.importorskip("sklearn")
    ds = make_dataset({"dataset": "digits"})
    assert ds.X.shape == (1797, 64) and ds.n_classes == 10
    assert ds.X.min() == 0 and ds.X.max() == 1 and set(ds.y.tolist()) == set(range(10))


def test_digits_scaling_with_stub_sklearn(monkeypatch):
    stub = types.ModuleType("sklearn.datasets")
    stub.load_digits = lambda: types.SimpleNamespace(data=np.array([[0.0, 16.0], [8.0, 4.0], [16.0, 16.0]]),
                                                     target=np.array([3, 9, 0]))
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.datasets", stub)
    ds = make_dataset({"dataset": "digits", "limit": 2})
    assert ds.X.tolist() == [[0.0, 1.0], [0.5, 0.25]] and ds.y.tolist() == [3, 9]
    assert ds.name == "digits" and ds.n_outputs == 10


def test_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)           # makes the import fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with raises(r"^dataset 'digits' needs scikit-learn: pip install scikit-learn$"):
        make_dataset({"dataset": "digits"})


def test_dataset_registry_names():
    assert sorted(DATASETS) == ["csv", "digits", "mnist"]


# ---------------------------------------------------------------------------- split and standardize

def indexed(n, task="classification", classes=3):
    """A dataset whose single feature is the row number, so rows can be traced through a split."""
    X = np.arange(n, dtype=float)[:, None]
    if task == "classification":
        return Dataset(X, np.arange(n) % classes, task, classes, "idx")
    return Dataset(X, X * 2, task, None, "idx")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_split_sizes_disjoint_deterministic(task):
    ds = indexed(100, task)
    train, val = train_val_split(ds, 0.25, seed=1)
    assert (len(train), len(val)) == (75, 25)
    rows_train, rows_val = train.X[:, 0].astype(int), val.X[:, 0].astype(int)
    assert set(rows_train).isdisjoint(rows_val) and sorted([*rows_train, *rows_val]) == list(range(100))
    assert np.array_equal(train.y, ds.y[rows_train])            # features and targets stay paired
    again, _ = train_val_split(ds, 0.25, seed=1)
    other, _ = train_val_split(ds, 0.25, seed=2)
    assert np.array_equal(again.X, train.X) and not np.array_equal(other.X, train.X)
    assert not np.array_equal(np.sort(rows_train), rows_train)  # shuffled
    assert train.task == task and train.name == "idx"


def test_split_is_stratified():
    y = np.repeat([0, 1, 2], [80, 15, 5])
    ds = Dataset(np.zeros((100, 1)), y, "classification", 3, "skewed")
    _, val = train_val_split(ds, 0.2, seed=0)
    assert np.bincount(val.y, minlength=3).tolist() == [16, 3, 1]


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.2, True, "0.2", None])
def test_split_rejects_bad_fraction(fraction):
    with raises(r"val_fraction must be a number strictly between 0 and 1"):
        train_val_split(indexed(10), fraction)


def test_split_rejects_tiny_dataset_and_bad_seed():
    with raises(r"dataset 'idx' has 1 sample\(s\)"):
        train_val_split(indexed(1), 0.5)
    with raises(r"seed must be an integer >= 0"):
        train_val_split(indexed(10), 0.5, seed=1.5)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 300), fraction=st.floats(0.01, 0.99), classes=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1), regression=st.booleans())
def test_split_partitions_any_dataset(n, fraction, classes, seed, regression):
    ds = indexed(n, "regression" if regression else "classification", classes)
    train, val = train_val_split(ds, fraction, seed)
    rows = np.concatenate([train.X[:, 0], val.X[:, 0]]).astype(int)
    assert sorted(rows) == list(range(n))                       # a partition: nothing lost, nothing twice
    assert len(val) == min(max(round(n * fraction), 1), n - 1) and len(train) >= 1
    if not regression:                                          # each class within 1 of its fair share
        share = np.bincount(ds.y, minlength=classes) * len(val) / n
        assert np.all(np.abs(np.bincount(val.y, minlength=classes) - share) < 1)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(3, 300), test=st.floats(0.01, 0.99), val=st.floats(0.01, 0.99),
       classes=st.integers(1, 5), seed=st.integers(0, 2**32 - 1), regression=st.booleans())
def test_test_then_validation_split_partitions_the_data(n, test, val, classes, seed, regression):
    """split_off the test part, then train_val_split the rest: three disjoint parts covering the data,
    the sizes part_size promises, each classification part stratified."""
    ds = indexed(n, "regression" if regression else "classification", classes)
    rest, test_ds = split_off(ds, test, seed)
    assert len(test_ds) == part_size(n, test) and len(rest) == n - len(test_ds)
    if len(rest) < 2:
        return
    train, val_ds = train_val_split(rest, val, seed)
    rows = [part.X[:, 0].astype(int).tolist() for part in (train, val_ds, test_ds)]
    assert sorted(sum(rows, [])) == list(range(n)) and len(train) >= 1
    if not regression:
        share = np.bincount(ds.y, minlength=classes) * len(test_ds) / n
        assert np.all(np.abs(np.bincount(test_ds.y, minlength=classes) - share) < 1)


def test_split_off_names_its_fraction():
    with raises(r"test.fraction must be a number strictly between 0 and 1"):
        split_off(indexed(10), 1.0, 0, "test.fraction")


def test_compatibility_compares_features_task_and_classes():
    sin, moons = GENERATORS["sinusoid"](n=10), GENERATORS["moons"](n=10)
    assert check_compatible(sin, GENERATORS["sinusoid"](n=5, seed=2, range=[3, 4])) is None
    assert check_compatible(moons, GENERATORS["xor"](n=8)) is None
    two_d = Dataset(np.zeros((4, 2)), np.zeros((4, 1)), "regression", None, "r")
    three = GENERATORS["spirals"](n=9, classes=3)
    for a, b in [(sin, moons), (moons, two_d), (moons, three)]:
        assert check_compatible(a, b) is not None and check_compatible(b, a) is not None


def test_source_shape_without_loading(tmp_path):
    assert source_shape({"generator": "spirals", "classes": 4, "n": 10**5}) == (2, "classification", 4, None)
    assert source_shape({"generator": "sinusoid"}) == (1, "regression", None, None)
    (tmp_path / "t.csv").write_text("a,b,c,y\n1,2,3,4\n", encoding="utf-8")
    assert source_shape({"dataset": "csv", "path": "t.csv", "target": "y"}, tmp_path) == (3, None, None,
                                                                                        ("a", "b", "c"))
    assert source_shape({"dataset": "mnist", "path": "nowhere"}) == (None, None, None, None)
    assert source_shape({"dataset": "digits"}) == (64, "classification", 10, None)
    assert source_shape({"dataset": "digits", "limit": 5}) == (64, "classification", None, None)


def test_a_test_table_with_other_columns_is_refused(tmp_path):
    """Same number of features but other names: a test table of another experiment."""
    (tmp_path / "d.csv").write_text("a,b,c,label\n" + "1,2,3,0\n2,3,4,1\n" * 5, encoding="utf-8")
    (tmp_path / "t.csv").write_text("a,b,d,label\n" + "1,2,3,0\n2,3,4,1\n", encoding="utf-8")
    data = {"dataset": "csv", "path": "d.csv", "target": "label"}
    test = {"dataset": "csv", "path": "t.csv", "target": "label"}
    from derivkit.training.datasets import shape_error
    assert "(a, b, d)" in shape_error(source_shape(data, tmp_path), source_shape(test, tmp_path))
    with pytest.raises(UserError, match="feature columns"):
        load_test(test, make_dataset(data, tmp_path), tmp_path)
    assert shape_error(source_shape(data, tmp_path), source_shape(data, tmp_path)) is None


def test_standardize_uses_training_statistics_only():
    train = Dataset(np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]]), [0, 1, 0], "classification", 2, "t")
    val = Dataset(np.array([[100.0, 7.0]]), [1], "classification", 2, "v")
    before = train.X.copy()
    s_train, s_val = standardize(train, val)
    std = np.std([1.0, 3.0, 5.0])
    assert np.allclose(s_train.X[:, 0], np.array([-2.0, 0.0, 2.0]) / std)
    assert np.allclose(s_train.X.mean(axis=0), 0) and np.allclose(s_train.X[:, 0].std(), 1)
    assert np.allclose(s_val.X, [[(100 - 3) / std, 2.0]])       # constant feature: shifted, not scaled
    assert np.array_equal(train.X, before)                      # inputs untouched
    assert s_val.y.tolist() == [1] and s_val.name == "v" and s_train.n_classes == 2


def test_standardize_scales_every_other_set_by_the_training_statistics():
    train = Dataset(np.array([[0.0], [2.0]]), np.zeros((2, 1)), "regression", None, "t")
    val, test = (Dataset(np.array([[v]]), np.zeros((1, 1)), "regression", None, n) for v, n in ((4.0, "v"), (1.0, "s")))
    s_train, s_val, s_test = standardize(train, val, test)
    assert s_train.X.ravel().tolist() == [-1.0, 1.0] and s_val.X.item() == 3.0 and s_test.X.item() == 0.0


def test_standardize_constant_feature_with_rounding_noise():
    train = Dataset(np.full((7, 1), 0.1), np.zeros((7, 1)), "regression", None, "c")
    s_train, s_val = standardize(train, train)
    assert np.all(np.abs(s_train.X) < 1e-12)


# ---------------------------------------------------------------------------- limits on data files
def _gzip_stream(header: bytes, zeros: int) -> bytes:
    """A gzip file of ``header`` then ``zeros`` zero bytes, built without holding them in memory."""
    import zlib
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)            # 31: gzip framing
    parts = [comp.compress(header)]
    chunk = bytes(1 << 20)
    for _ in range(zeros >> 20):
        parts.append(comp.compress(chunk))
    parts.append(comp.flush())
    return b"".join(parts)


def test_a_gzip_bomb_fails_fast_with_little_memory(tmp_path):
    import tracemalloc
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    # a header declaring 1000 labels, then 256 MiB of zeros (about 250 KiB compressed)
    path.write_bytes(_gzip_stream(struct.pack(">II", LABELS_MAGIC, 1000), 256 << 20))
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with no_hang(10), raises(r"train-labels-idx1-ubyte\.gz: has extra bytes"):
            read_idx(path, LABELS_MAGIC)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_declared_sizes_beyond_the_limit_are_refused_before_reading(tmp_path, monkeypatch):
    import derivkit.training.datasets as datasets
    path = tmp_path / "big"
    path.write_bytes(struct.pack(">IIII", IMAGES_MAGIC, 10**6, 28, 28))     # 784 MB declared, none there
    with raises(r"big: dimensions \(1000000, 28, 28\) declare 784000000 bytes of data; at most"):
        read_idx(path, IMAGES_MAGIC)
    monkeypatch.setattr(datasets, "MAX_DATA_BYTES", 10)
    small = tmp_path / "small"
    small.write_bytes(idx_bytes(np.arange(11)))
    with raises(r"declare 11 bytes of data; at most 10"):
        read_idx(small, LABELS_MAGIC)


def test_declared_size_is_checked_against_the_file_before_reading(tmp_path):
    """The file's real size (from the file system) decides; the body is never read."""
    path = tmp_path / "labels"
    path.write_bytes(struct.pack(">II", LABELS_MAGIC, 5 * 10**7) + bytes(10))
    with raises(r"labels: truncated: dimensions \(50000000,\) need 50000008 bytes, file has 18$"):
        read_idx(path, LABELS_MAGIC)
    path.write_bytes(struct.pack(">II", LABELS_MAGIC, 3) + bytes(10))
    with raises(r"labels: has extra bytes: dimensions \(3,\) need 11 bytes, file has 18$"):
        read_idx(path, LABELS_MAGIC)


def test_bad_data_options_carry_the_option_not_a_message_to_match():
    from derivkit.training.datasets import OptionError
    with pytest.raises(OptionError) as err:
        make_dataset({"generator": "moons", "n": 1})
    assert err.value.option == "n"
    where = []
    with pytest.raises(UserError) as err:
        make_dataset({"generator": "moons", "n": 1}, at=lambda *option: where.append(option) or None)
    assert where == [("n",)]


# ---------------------------------------------------------------------------- CSV tables

from pathlib import Path  # noqa: E402

from derivkit.errors import UserErrors  # noqa: E402
from derivkit.problem import load_problem  # noqa: E402
from derivkit.training import datasets as datasets_module  # noqa: E402
from derivkit.training.datasets import CSV_AUTO_CLASSES, OptionError, load_csv  # noqa: E402
from helpers import ROOT  # noqa: E402


def write_csv(tmp_path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def csv_error(tmp_path, text: str, target: str = "y", **options) -> UserError:
    with pytest.raises(UserError) as info:
        load_csv(write_csv(tmp_path, text), target, **options)
    return info.value


def test_csv_reads_features_and_a_class_target_by_name(tmp_path):
    path = write_csv(tmp_path, "a, label ,b\n1,2,3\n\n4,1,-5.5e1\n7,2,.5\n")
    ds = make_dataset({"dataset": "csv", "path": path.name, "target": "label"}, base_dir=tmp_path)
    assert (ds.task, ds.n_classes, ds.name) == ("classification", 2, "t.csv")
    np.testing.assert_array_equal(ds.X, [[1, 3], [4, -55], [7, 0.5]])     # blank line skipped
    np.testing.assert_array_equal(ds.y, [1, 0, 1])                        # labels 1, 2 become 0, 1


def test_csv_real_target_is_regression_with_one_output(tmp_path):
    ds = load_csv(write_csv(tmp_path, '"x","y"\n1,0.25\n2,"3"\n'), "y")
    assert (ds.task, ds.n_outputs) == ("regression", 1)
    np.testing.assert_array_equal(ds.y, [[0.25], [3.0]])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-5, 30), min_size=1, max_size=40), st.data())
def test_csv_whole_number_targets_are_classes_when_few(tmp_path_factory, labels, data):
    """The documented rule: whole numbers with at most CSV_AUTO_CLASSES values are classes, numbered in
    increasing order of value; anything else is regression (and `task` overrides the guess)."""
    tmp = tmp_path_factory.mktemp("csv")
    as_float = data.draw(st.booleans())
    cells = [f"{v}.0" if as_float else str(v) for v in labels]
    path = write_csv(tmp, "x,y\n" + "".join(f"{i},{c}\n" for i, c in enumerate(cells)))
    values = sorted(set(labels))
    ds = load_csv(path, "y")
    if len(values) <= CSV_AUTO_CLASSES:
        assert ds.task == "classification" and ds.n_classes == len(values)
        assert [values[k] for k in ds.y] == labels
    else:
        assert ds.task == "regression" and ds.y[:, 0].tolist() == labels
    assert load_csv(path, "y", task="regression").y[:, 0].tolist() == labels
    forced = load_csv(path, "y", task="classification")
    assert forced.n_classes == len(values) and [values[k] for k in forced.y] == labels


def test_csv_fractional_target_cannot_be_forced_to_classes(tmp_path):
    assert load_csv(write_csv(tmp_path, "x,y\n1,0\n2,0.5\n"), "y").task == "regression"
    err = csv_error(tmp_path, "x,y\n1,0\n2,0.5\n", task="classification")
    assert err.where.file.endswith("t.csv")


def test_csv_limit_keeps_the_first_rows(tmp_path):
    path = write_csv(tmp_path, "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(10)) + "oops\n")
    ds = load_csv(path, "y", limit=3)                 # the bad last line is never read
    assert ds.X[:, 0].tolist() == [0, 1, 2]


def test_csv_ragged_row_is_located_at_its_line(tmp_path):
    err = csv_error(tmp_path, "a,b,y\n1,2,0\n\n3,4\n")
    assert (Path(err.where.file).name, err.where.line) == ("t.csv", 4)


@pytest.mark.parametrize("cell", ["x", "", "nan", "inf", "1_000", "0x10", "1,5", "(1)", "2**3"])
def test_csv_non_number_names_its_row_and_column(tmp_path, cell):
    text = f'a,b,y\n1,2,0\n3,"{cell}",1\n'
    err = csv_error(tmp_path, text)
    assert (Path(err.where.file).name, err.where.line) == ("t.csv", 3)
    assert "'b'" in err.message


def test_csv_overflowing_number_is_an_error(tmp_path):
    assert "'a'" in csv_error(tmp_path, "a,y\n1e999,0\n2,1\n").message


def test_csv_missing_target_column_suggests_a_header_name(tmp_path):
    err = csv_error(tmp_path, "x1,x2,label\n1,2,0\n", target="lable")
    assert isinstance(err, OptionError) and err.option == "target"
    assert "'label'" in err.message


@pytest.mark.parametrize("text, line", [
    ("", None), ("\n \n", None),                  # nothing, or only blank lines
    ("a,y\n", None),                              # a header, no rows
    ("a,,y\n1,2,3\n", 1), ("a,y,a\n1,2,3\n", 1),  # an unnamed or repeated column
    ("y\n1\n2\n", None),                          # nothing but the target
    ('a,y\n"1,2\n', 2),                           # an unterminated quote
])
def test_csv_bad_tables_are_user_errors_at_the_file(tmp_path, text, line):
    err = csv_error(tmp_path, text)
    if not isinstance(err, OptionError):
        assert Path(err.where.file).name == "t.csv" and err.where.line == line


def test_csv_not_utf8_is_an_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,y\n1,\xff\n")
    with raises("UTF-8"):
        load_csv(path, "y")


def test_csv_utf8_byte_order_mark_is_skipped_and_utf16_is_refused_by_name(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffa,y\n1,2\n3,4\n".encode("utf-8"))
    assert load_csv(path, "a").X.ravel().tolist() == [2.0, 4.0]      # the first name is 'a', not BOM+'a'
    for codec in ("utf-16-le", "utf-16-be"):
        path.write_bytes("\ufeffa,y\n1,2\n".encode(codec))
        with raises("UTF-16") as info:
            load_csv(path, "a")
        assert (info.value.where.file, info.value.where.line) == (str(path), 1)


def test_csv_over_the_size_limit_is_refused_unopened(tmp_path, monkeypatch):
    path = write_csv(tmp_path, "a,y\n" + "1,0\n" * 50)
    monkeypatch.setattr(datasets_module, "MAX_DATA_BYTES", 100)
    monkeypatch.setattr(Path, "open", lambda *a, **k: pytest.fail("opened a file over the limit"))
    with pytest.raises(UserError) as info:
        load_csv(path, "y")
    assert info.value.where.file == str(path)


def test_csv_cell_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets_module, "MAX_CSV_CELLS", 10)
    err = csv_error(tmp_path, "a,y\n" + "1,0\n" * 6)
    assert err.where.line == 7                       # row 6 would make 12 numbers
    assert len(load_csv(tmp_path / "t.csv", "y", limit=5)) == 5


@pytest.mark.parametrize("options, option", [
    ({"path": "nope.csv", "target": "y"}, "path"),
    ({"path": ".", "target": "y"}, "path"),
    ({"path": "/dev/null", "target": "y"}, "path"),
    ({"path": "t.csv"}, None),                              # target is required
    ({"path": "t.csv", "target": 3}, "target"),
    ({"path": "t.csv", "target": "y", "task": "clustering"}, "task"),
    ({"path": "t.csv", "target": "y", "limit": 0}, "limit"),
])
def test_csv_bad_options(tmp_path, options, option):
    write_csv(tmp_path, "a,y\n1,0\n")
    with pytest.raises(OptionError) as info:
        make_dataset({"dataset": "csv", **options}, base_dir=tmp_path)
    assert info.value.option == option


# ------------------------------------------------- csv in a problem file: validation and training

CSV_PROBLEM = ROOT / "tests" / "problems" / "train_csv_tanh_regression.yaml"


def problem_errors(tmp_path, data: str, epochs: int = 5) -> list[UserError]:
    """The errors of the CSV test problem with another ``data:`` mapping (CSV files beside it)."""
    text = CSV_PROBLEM.read_text(encoding="utf-8")
    text = text.replace("data: {dataset: csv, path: train_csv_tanh_regression.csv, target: response}",
                        f"data: {data}").replace("epochs: 40", f"epochs: {epochs}")
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    try:
        load_problem(tmp_path / "p.yaml")
    except UserErrors as exc:
        return exc.errors
    except UserError as exc:
        return [exc]
    return []


def test_validate_csv_source(tmp_path):
    write_csv(tmp_path, "x1,x2,response\n" + "1,2,3\n" * 10)
    (tmp_path / "folder").mkdir()
    assert problem_errors(tmp_path, "{dataset: csv, path: t.csv, target: response}") == []
    # a 10-row file trains 1000 epochs within the step limit: its rows are counted, not assumed
    assert problem_errors(tmp_path, "{dataset: csv, path: t.csv, target: response}", epochs=1000) == []
    for data, at in [("{dataset: csv, path: t.csv, target: respons}", "respons"),
                     ("{dataset: csv, path: gone.csv, target: response}", "gone.csv"),
                     ("{dataset: csv, path: folder, target: response}", "folder"),
                     ("{dataset: csv, path: t.csv}", "{dataset"),
                     ("{dataset: csv, path: t.csv, target: response, task: clas}", "clas")]:
        errors = problem_errors(tmp_path, data)
        assert len(errors) == 1, data
        text = (tmp_path / "p.yaml").read_text(encoding="utf-8")
        line, col = next((i + 1, l.index(at) + 1) for i, l in enumerate(text.splitlines())
                         if l.startswith("  data:"))
        assert (errors[0].where.line, errors[0].where.column) == (line, col), data


def test_validate_reports_an_empty_csv_at_the_file(tmp_path):
    write_csv(tmp_path, "")
    [error] = problem_errors(tmp_path, "{dataset: csv, path: t.csv, target: response}")
    assert Path(error.where.file).name == "t.csv"


def test_csv_problem_trains_through_solve_to_a_finite_loss():
    from click.testing import CliRunner
    from derivkit.cli import main
    result = CliRunner().invoke(main, ["solve", str(CSV_PROBLEM), "--format", "json"])
    assert result.exit_code == 0, result.output
    train = json.loads(result.stdout)["train"]
    assert train["data"]["task"] == "regression" and train["data"]["features"] == 2
    assert all(np.isfinite(train["loss"])) and train["final_loss"] < train["loss"][0]
