"""Training a problem's network with its *derived* gradients: the numeric check of ``check:``.

Nothing here knows how to backpropagate.  One module per job:

* the ``check:`` section is read and checked with the problem (:mod:`derivkit.checkspec`);
* :mod:`.datasets` — toy generators, MNIST and digits (:func:`make_dataset`);
* :mod:`.binding` — the data bound to the graph's dims, its leaves and targets;
* :mod:`.compile` — the problem compiled into the executor; the node that predicts;
* :mod:`.init` — initial weights;
* :mod:`.loop` — SGD epochs and evaluation;
* :mod:`.sweep` — the settings of a sweep and the network (variant) each one trains;
* :mod:`.run` — splits, repeats, selection, retraining, summaries, expectations:
  :func:`run_check` → :class:`TrainResult`;
* :mod:`.curves` — the curves and the sweep table as CSV/JSON, output paths checked first;
* :mod:`.model` — a trained network (:class:`~.model.Fitted`) evaluated again in data units;
* :mod:`.series` — the numbers each picture shows; :mod:`.plots` — the pictures as PNG
  (:func:`write_plots`).
"""
import importlib

#: public name -> the module that holds it; imported on first use, so that reading a problem
#: (which knows the dataset names) does not import the whole training machinery
_HOME = {
    "Binding": "binding", "bind_data": "binding",
    "Compiled": "compile", "compile_problem": "compile",
    "write_curve": "curves",
    "write_table": "curves",
    "init_params": "init",
    "sgd_epoch": "loop",
    "TrainResult": "run", "planned_epochs": "run", "run_check": "run",
    "settings_of": "run",
    "plot_curve": "plots", "require_matplotlib": "plots", "plot_accuracy": "plots", "plot_fit": "plots", "plot_hidden": "plots", "plot_losses": "plots",
    "plot_regions": "plots", "plot_sweep": "plots", "write_plots": "plots",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'derivkit.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
