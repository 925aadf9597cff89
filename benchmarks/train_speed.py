"""How fast does derivkit train with its *derived* gradients?

One epoch of minibatch SGD (batch 128, float64) of the seed's 784-300-10 sigmoid/softmax MLP
over 60 000 synthetic samples (uniform random "pixels", random labels), three ways, side by
side in one process:

* derivkit — the problem below, derived symbolically and compiled by
  ``derivkit.training.compile_problem``, trained by ``derivkit.training.sgd_epoch`` (what
  ``derivkit solve`` runs);
* numpy — the same network with a backward pass written by hand (in this file);
* torch — PyTorch autograd on the CPU, when installed (skipped otherwise).

All start from the same weights and visit the samples in the same order; derivkit and the
hand-written NumPy backprop must end the epoch with the same weights (checked, printed).
Each timing is the best of ``--repeats`` epochs (interleaved).  The last line is
``derivkit/numpy epoch time ratio: X.XX``.

Run:  python benchmarks/train_speed.py [--samples 60000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from derivkit.derive import derive                      # noqa: E402
from derivkit.graph import build_graph                  # noqa: E402
from derivkit.problem import load_problem               # noqa: E402
from derivkit.training import compile_problem, sgd_epoch   # noqa: E402

#: the seed-001 network, as shipped (its check: section is not used here)
PROBLEM = ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml"

D, H, C = 784, 300, 10
BATCH = 128
LR = 0.1


# ---------------------------------------------------------------------- hand-written NumPy backprop
def numpy_epoch(params: dict, X: np.ndarray, T: np.ndarray, order: np.ndarray, lr: float, batch: int) -> float:
    """Textbook minibatch backprop: rows are samples, gradients averaged over the batch."""
    W, b, V, c = params["W"], params["b"], params["V"], params["c"]
    total = 0.0
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        x, t = X[idx], T[idx]
        z = x @ W.T + b
        h = 1.0 / (1.0 + np.exp(-z))
        o = h @ V.T + c
        o = o - o.max(axis=1, keepdims=True)
        e = np.exp(o)
        y = e / e.sum(axis=1, keepdims=True)
        total += -np.sum(t * np.log(y))
        do = y - t                       # dl/do for softmax + cross-entropy
        dV = do.T @ h
        dc = do.sum(axis=0)
        dz = (do @ V) * h * (1.0 - h)    # dl/dz = V^T dl/do * sigma'(z)
        dW = dz.T @ x
        db = dz.sum(axis=0)
        s = lr / len(idx)
        W -= s * dW
        b -= s * db
        V -= s * dV
        c -= s * dc
    return total


# ---------------------------------------------------------------------- PyTorch (optional)
def torch_epoch_fn():
    try:
        import torch
    except ImportError:
        return None

    def run(params: dict, X: np.ndarray, T: np.ndarray, order: np.ndarray, lr: float, batch: int) -> float:
        torch.set_num_threads(os.cpu_count() or 1)
        P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
        Xt = torch.from_numpy(X)
        labels = torch.from_numpy(T.argmax(axis=1))
        total = 0.0
        for start in range(0, len(order), batch):
            idx = torch.from_numpy(order[start:start + batch])
            x, t = Xt[idx], labels[idx]
            h = torch.sigmoid(x @ P["W"].T + P["b"])
            o = h @ P["V"].T + P["c"]
            loss = torch.nn.functional.cross_entropy(o, t, reduction="sum")
            for p in P.values():
                p.grad = None
            loss.backward()
            with torch.no_grad():
                s = lr / len(idx)
                for p in P.values():
                    p -= s * p.grad
            total += loss.item()
        for k, v in P.items():
            params[k][...] = v.detach().numpy()
        return total
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=60_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    t0 = time.perf_counter()
    g = build_graph(load_problem(PROBLEM))
    comp = compile_problem(g, derive(g), {"D": D, "H": H, "C": C})
    compile_s = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    X = rng.random((args.samples, D))
    T = np.eye(C)[rng.integers(C, size=args.samples)]
    init = {"W": rng.normal(0, 1 / np.sqrt(D), (H, D)), "b": np.zeros(H),
            "V": rng.normal(0, 1 / np.sqrt(H), (C, H)), "c": np.zeros(C)}
    orders = [rng.permutation(args.samples) for _ in range(args.repeats)]

    def dk(params, X, T, order, lr, batch):
        with np.errstate(all="ignore"):
            return sgd_epoch(comp, params, X, T, order=order, lr=lr, batch_size=batch, input="x", target="t")

    impls = {"derivkit": dk, "numpy (hand-written)": numpy_epoch}
    torch_run = torch_epoch_fn()
    if torch_run is not None:
        impls["torch (CPU, autograd)"] = torch_run

    # warm-up: BLAS threads, caches (a few batches each)
    for fn in impls.values():
        fn({k: v.copy() for k, v in init.items()}, X, T, orders[0][:BATCH * 4], LR, BATCH)

    times: dict[str, list[float]] = {name: [] for name in impls}
    finals: dict[str, tuple[float, dict]] = {}
    for rep in range(args.repeats):
        for name, fn in impls.items():
            params = {k: v.copy() for k, v in init.items()}
            t1 = time.perf_counter()
            loss = fn(params, X, T, orders[rep], LR, BATCH)
            times[name].append(time.perf_counter() - t1)
            if rep == 0:
                finals[name] = (loss / args.samples, params)

    ref = finals["numpy (hand-written)"][1]
    base = min(times["numpy (hand-written)"])
    print(f"784-300-10 sigmoid/softmax MLP, one epoch of {args.samples} samples, batch {BATCH}, float64, "
          f"{os.cpu_count()} cores; best of {args.repeats} (derivkit compile: {compile_s:.2f} s)")
    print(f"{'implementation':24} {'best s':>8} {'median s':>9} {'ratio':>6} {'mean loss':>10} "
          f"{'max |dθ| vs numpy':>18}  all epochs (s)")
    for name in impls:
        best, med = min(times[name]), float(np.median(times[name]))
        loss, params = finals[name]
        diff = max(float(np.max(np.abs(params[k] - ref[k]))) for k in ref)
        print(f"{name:24} {best:8.3f} {med:9.3f} {best / base:6.2f} {loss:10.5f} {diff:18.2e}  "
              + " ".join(f"{t:.2f}" for t in times[name]))
    if torch_run is None:
        print("torch (CPU, autograd)    skipped: PyTorch is not installed")
    print(f"derivkit/numpy epoch time ratio: {min(times['derivkit']) / base:.2f}")


if __name__ == "__main__":
    main()
