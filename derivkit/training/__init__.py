"""Training a problem's network with its *derived* gradients: the numeric check of ``check:``.

Nothing here knows how to backpropagate.  One module per job:

* :mod:`.settings` — the ``check:`` section read into :class:`Settings`;
* :mod:`.datasets` — toy generators, MNIST and digits (:func:`make_dataset`);
* :mod:`.binding` — the data bound to the graph's dims, its leaves and targets;
* :mod:`.compile` — the problem compiled into the executor; the node that predicts;
* :mod:`.init` — initial weights;
* :mod:`.loop` — SGD epochs and evaluation;
* :mod:`.run` — sweeps, repeats, summaries, expectations: :func:`run_check` → :class:`TrainResult`;
* :mod:`.curves` — the curves as CSV or PNG, output paths checked first.
"""
from .binding import Binding, bind_data
from .compile import Compiled, compile_problem
from .curves import check_output, plot_curve, require_matplotlib, write_curve
from .init import init_params
from .loop import sgd_epoch
from .run import TrainResult, planned_epochs, run_check
from .settings import Settings, read_settings

__all__ = ["Binding", "Compiled", "Settings", "TrainResult", "bind_data", "check_output", "compile_problem",
           "init_params", "planned_epochs", "plot_curve", "read_settings", "require_matplotlib", "run_check",
           "sgd_epoch", "write_curve"]
