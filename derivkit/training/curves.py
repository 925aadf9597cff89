"""Training curves written out: one CSV row per epoch of every run, or a PNG plot.

Both outputs are checked before any training starts (:func:`check_output`: only a regular
file or a new name in an existing directory; never a directory, a device or a FIFO) and
written atomically (a temporary file in the same directory, then renamed over the target).
"""
from __future__ import annotations

import csv
import io
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from ..errors import Location, UserError


def check_output(path, what: str) -> Path:
    """``path`` as a place to write ``what``: a regular file or a new name in an existing directory."""
    path = Path(path)
    where = Location(str(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise UserError(f"cannot write the {what}: the directory {parent} does not exist", where) from None
        if not os.access(parent, os.W_OK):
            raise UserError(f"cannot write the {what}: the directory {parent} is not writable", where) from None
        return path
    except OSError as exc:
        raise UserError(f"cannot write the {what}: {exc.strerror or exc}", where) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise UserError(f"cannot write the {what}: {path} is {kind}", where)
    if not os.access(path, os.W_OK):
        raise UserError(f"cannot write the {what}: {path} is not writable", where)
    return path


def write_atomically(path, data: bytes, what: str) -> None:
    """Write ``data`` to ``path`` (checked by :func:`check_output`) through a renamed temporary file."""
    path = check_output(path, what)
    directory = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise UserError(f"cannot write the {what}: {exc.strerror or exc}", Location(str(path))) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


CURVE_COLUMNS = ("run", "lr", "epoch", "train_loss", "val_loss", "accuracy", "width", "seed")


def write_curve(result, path) -> None:
    """One CSV row per epoch of every run: run, lr, epoch, train_loss, val_loss, accuracy, width, seed.

    ``result`` is a :class:`~derivkit.training.run.TrainResult`.  Empty cells for values that
    do not exist (accuracy on regression data, epochs after a run diverged).
    """
    fh = io.StringIO(newline="")
    w = csv.writer(fh)
    w.writerow(CURVE_COLUMNS)
    for run in result.runs:
        accs = run.get("val_accuracy") or [None] * len(run["loss"])
        for epoch, (lo, vl, acc) in enumerate(zip(run["loss"], run["val_loss"], accs), start=1):
            w.writerow([run["run"], _cell(run["lr"]), epoch, _cell(lo), _cell(vl), _cell(acc),
                        "" if run.get("width") is None else run["width"], run.get("seed", "")])
    write_atomically(path, fh.getvalue().encode(), "curve")


def _cell(v) -> str:
    if v is None:
        return ""
    return repr(float(v))


def require_matplotlib():
    """matplotlib's pyplot (Agg back end), or a UserError naming the extra to install."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plotting the loss curve needs matplotlib: pip install 'derivkit[plot]'") from None
    return plt


def plot_curve(result, path) -> None:
    """Training and validation loss per epoch (one line per setting) as a PNG; needs matplotlib."""
    plt = require_matplotlib()
    check_output(path, "plot")
    rows: dict[tuple, list[dict]] = {}
    for run in result.runs:
        rows.setdefault((run["lr"], run.get("width")), []).append(run)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (lr, width), group in rows.items():
        label = f"lr={lr:g}" + ("" if width is None else f", width={width}")
        for key, style in (("loss", "-"), ("val_loss", "--")):
            L = np.array([[np.nan if v is None else v for v in g[key]] for g in group], dtype=float)
            mean = np.nanmean(L, axis=0) if np.isfinite(L).any() else L[0]
            epochs = np.arange(1, L.shape[1] + 1)
            line = ax.plot(epochs, mean, style, label=f"{label} ({'train' if key == 'loss' else 'val'})")
            if len(group) > 1:
                std = np.nanstd(L, axis=0)
                ax.fill_between(epochs, mean - std, mean + std, alpha=0.15, color=line[0].get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=120)
    finally:
        plt.close(fig)
    write_atomically(path, buf.getvalue(), "plot")
