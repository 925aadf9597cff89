"""Training numbers written out: the curves (one CSV row per epoch of every run) and the sweep
table (CSV or JSON), written atomically by :mod:`derivkit.outputs` (regular files only).
The pictures are :mod:`.plots`."""
from __future__ import annotations

import csv
import io
import json


from ..outputs import write_atomic


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
    columns = [c for c in TABLE_COLUMNS                 # none that is empty in every row (accuracy on regression)
               if any(row.get(c) is not None for row in result.sweep) or c in ("final_loss", "diverged")]
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
