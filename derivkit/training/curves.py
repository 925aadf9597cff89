"""Training curves written out: one CSV row per epoch of every run, or a PNG plot; the sweep table.

Both outputs are checked before any training starts and written atomically by
:mod:`derivkit.outputs` (regular files only).
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np

from ..errors import UserError
from ..outputs import check_output, write_atomic


CURVE_COLUMNS = ("run", "lr", "epoch", "train_loss", "val_loss", "accuracy", "width", "seed", "train_accuracy")

#: the sweep table's columns after the swept keys: each final value's mean and std over repeats
TABLE_COLUMNS = ("runs", "final_loss", "final_loss_std", "final_val_loss", "final_val_loss_std",
                 "accuracy", "accuracy_std", "train_accuracy", "train_accuracy_std",
                 "test_loss", "test_loss_std", "test_accuracy", "test_accuracy_std", "diverged", "best")


def write_curve(result, path) -> None:
    """One CSV row per epoch of every run: run, lr, epoch, train_loss, val_loss, accuracy, width, seed,
    train_accuracy.

    ``result`` is a :class:`~derivkit.training.run.TrainResult`.  Empty cells for values that
    do not exist (accuracy on regression data, epochs after a run diverged).
    """
    fh = io.StringIO(newline="")
    w = csv.writer(fh)
    w.writerow(CURVE_COLUMNS)
    for run in result.runs:
        none = [None] * len(run["loss"])
        accs = run.get("val_accuracy") or none
        train_accs = run.get("train_accuracy") or none
        for epoch, (lo, vl, acc, tacc) in enumerate(zip(run["loss"], run["val_loss"], accs, train_accs), start=1):
            w.writerow([run["run"], _cell(run["lr"]), epoch, _cell(lo), _cell(vl), _cell(acc),
                        "" if run.get("width") is None else run["width"], run.get("seed", ""), _cell(tacc)])
    write_atomic(path, fh.getvalue().encode(), "curve")


def write_table(result, path) -> None:
    """The sweep table: one row per setting, each swept key a column, then :data:`TABLE_COLUMNS`.

    CSV (empty cells for values that do not exist), or JSON (a list of rows) when ``path``
    ends in ``.json``; written atomically.
    """
    keys = list(result.sweep[0]["setting"]) if result.sweep else ["lr"]
    columns = [c for c in TABLE_COLUMNS if any(c in row for row in result.sweep)]
    rows = [{**row["setting"], **{c: row.get(c) for c in columns}} for row in result.sweep]
    if str(path).lower().endswith(".json"):
        write_atomic(path, json.dumps(rows, indent=2, allow_nan=False) + "\n", "table")
        return
    fh = io.StringIO(newline="")
    w = csv.writer(fh)
    w.writerow(keys + columns)
    for row in rows:
        w.writerow([_table_cell(row[c]) for c in keys + columns])
    write_atomic(path, fh.getvalue().encode(), "table")


def _table_cell(v) -> str:
    if isinstance(v, bool) or isinstance(v, (int, str)):
        return str(v).lower() if isinstance(v, bool) else str(v)
    return _cell(v)


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
    write_atomic(path, buf.getvalue(), "plot")
