"""How long each shipped problem's `check:` experiment takes, and what the extras of #10 cost.

For every problems/*.yaml with a check: section: the runs it trains (settings × repeats, plus a
retraining), the in-process time of `run_check` (variants derived and gradient-checked,
training, evaluation) and of drawing every picture (`write_plots`, when matplotlib is there).
Then the cost of logging: the seed-001 network on 5000 ellipse/circle samples, 2 epochs of
per-sample SGD, without `log_every` and with `log_every` 1000 / 100 (each evaluation of the
validation set is one extra pass over it).
Run: python benchmarks/experiments.py [--best N]
"""
from __future__ import annotations

import argparse
import glob
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from derivkit.derive import derive  # noqa: E402
from derivkit.graph import build_graph  # noqa: E402
from derivkit.problem import load_problem, parse_problem  # noqa: E402
from derivkit.training import run_check  # noqa: E402


def timed(fn, best: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(best):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def pictures(result) -> float | None:
    try:
        from derivkit.training.plots import write_plots
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_plots(result, tmp)
        return time.perf_counter() - t


def experiments(best: int) -> None:
    print("| problem | runs | `run_check` s | pictures s |")
    print("|---|---|---|---|")
    for path in sorted(glob.glob(str(ROOT / "problems" / "*.yaml"))):
        problem = load_problem(path)
        if problem.settings is None:
            continue
        g = build_graph(problem)
        d = derive(g)
        seconds, result = timed(lambda: run_check(g, d), best)
        runs = len(result.runs) + (result.retrained is not None)
        drawn = pictures(result)
        print(f"| {Path(path).name} | {runs} | {seconds:.2f} | {'—' if drawn is None else f'{drawn:.2f}'} |")


LOGGED = (ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml").read_text().split("\ncheck:")[0] + """
check:
  dims: {H: 30}
  data: {generator: ellipse_circle, n: 5000, seed: 0}
  train: {lr: 0.01, batch_size: 1, epochs: 2, seed: 0LOG}
"""


def logging_cost(best: int) -> None:
    print("\n| log_every | `run_check` s (5000 samples, 2 epochs) | logged points |")
    print("|---|---|---|")
    for every in (None, 1000, 100):
        text = LOGGED.replace("LOG", "" if every is None else f", log_every: {every}")
        g = build_graph(parse_problem(text, "logged.yaml"))
        d = derive(g, readable_forms=False)
        seconds, result = timed(lambda: run_check(g, d), best)
        points = len((result.iterations or {}).get("step", []))
        print(f"| {every or 'off'} | {seconds:.2f} | {points} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--best", type=int, default=1, help="best of N runs (default 1)")
    args = parser.parse_args()
    print(f"# CPython {platform.python_version()}, {platform.machine()}, best of {args.best}")
    experiments(args.best)
    logging_cost(args.best)


if __name__ == "__main__":
    main()
