"""How `derivkit solve --no-train` scales with depth and width.

Generated tanh MLPs (softmax + cross-entropy): depth 1..20 at widths 8 and 64, and width
4..64 at depths 2 and 20, plus the shapes issue 11 named (a shared weight repeated 12 times,
a 12-step scalar chain, five stacked softmaxes of width 8 and 16, the seed's sigmoid/softmax
MLP with its questions at 32-32-32 and 64-64-64).  Each row: wall time of the real command
(start-up included) and, from `--format json`, where the time went (derive / verify /
gradcheck).  The growth rate is the slope of log(work) against log(size), work being
derive + verify + gradcheck (the start-up, about 0.5 s, would hide it), fitted over the
larger half of each sweep.
Each size runs ``--best N`` times (default 1) and keeps the fastest, since other jobs on a shared
machine only ever add time.
Run: python benchmarks/scaling.py [--quick] [--best N]
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from strategies import tanh_mlp_text as mlp  # noqa: E402   (the networks the tests prove, timed here)


def shared(depth: int, width: int = 3) -> str:
    forward = [f"  h{i}: tanh(W @ h{i - 1})" for i in range(1, depth + 1)]
    return (f"id: shared\ndims: {{D: {width}}}\nsymbols:\n  h0: {{shape: [D], role: input}}\n"
            "  W: {shape: [D, D], role: param}\nforward:\n" + "\n".join(forward) +
            f"\nloss:\n  l: sum(h{depth} ** 2)\n")


def chain(depth: int) -> str:
    forward = [f"  h{i}: tanh(h{i - 1}) * h{i - 1}" for i in range(1, depth + 1)]
    return ("id: chain\nsymbols:\n  h0: {shape: [], role: param}\nforward:\n" + "\n".join(forward) +
            f"\nloss:\n  l: h{depth} ** 2\n")


def softmaxes(depth: int, width: int = 16) -> str:
    forward = [f"  y{i}: softmax(y{i - 1})" for i in range(1, depth + 1)]
    return (f"id: softmaxes\ndims: {{C: {width}}}\nsymbols:\n  y0: {{shape: [C], role: input}}\n"
            "  t: {shape: [C], role: target, kind: onehot}\nforward:\n" + "\n".join(forward) +
            f"\nloss:\n  l: -sum(t * log(y{depth}))\n")


SEED_MLP = Path(__file__).resolve().parent.parent / "problems" / "mlp_sigmoid_softmax_ce.yaml"


def seed_mlp(width: int) -> str:
    """The seed's two-layer sigmoid/softmax MLP, with its questions, at D = H = C = width."""
    text = SEED_MLP.read_text(encoding="utf-8")
    assert "dims: {D: 3, H: 4, C: 3}" in text
    return text.replace("dims: {D: 3, H: 4, C: 3}", f"dims: {{D: {width}, H: {width}, C: {width}}}")


def run(text: str, timeout: float = 120.0) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    t = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "derivkit.cli", "solve", "--no-train", "--format", "json",
                            f.name], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"wall": math.inf, "status": f"timeout {timeout:.0f}s"}
    finally:
        Path(f.name).unlink()
    out = {"wall": time.perf_counter() - t, "status": f"exit {r.returncode}"}
    if r.stdout.strip():
        sol = json.loads(r.stdout)
        out.update(sol.get("timings", {}))
        out["work"] = sum(sol.get("timings", {}).values())
        out["status"] = "ok" if r.returncode == 0 else f"exit {r.returncode}"
        out["verified"] = sol.get("verified")
    return out


BEST = 1


def best_run(text: str) -> dict:
    """The fastest of ``BEST`` runs (by work), each stage's time its own minimum."""
    runs = [run(text) for _ in range(BEST)]
    out = min(runs, key=lambda r: r.get("work", math.inf))
    for key in ("wall", "derive", "verify", "gradcheck", "work"):
        if all(key in r for r in runs):
            out[key] = min(r[key] for r in runs)
    return out


def table(title: str, label: str, sizes, make) -> None:
    print(f"\n== {title} ==")
    print(f"{label:>6} {'wall s':>8} {'derive':>8} {'verify':>8} {'gradchk':>8}  status")
    rows = []
    for n in sizes:
        r = best_run(make(n))
        rows.append((n, r.get("work", math.inf)))
        print(f"{n:>6} {r['wall']:8.2f} {r.get('derive', math.nan):8.2f} {r.get('verify', math.nan):8.2f} "
              f"{r.get('gradcheck', math.nan):8.2f}  {r['status']}", flush=True)
    big = [(n, w) for n, w in rows[len(rows) // 2:] if math.isfinite(w)]
    if len(big) >= 2:
        (n0, w0), (n1, w1) = big[0], big[-1]
        print(f"growth: work ~ {label}^{math.log(w1 / w0) / math.log(n1 / n0):.2f} over {n0}..{n1}")


def main() -> None:
    global BEST
    quick = "--quick" in sys.argv
    if "--best" in sys.argv:
        BEST = int(sys.argv[sys.argv.index("--best") + 1])
    depths = [1, 2, 5, 10, 20] if quick else [1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    widths = [4, 16, 64] if quick else [4, 8, 16, 32, 48, 64]
    table("tanh MLP, width 8: time against depth", "depth", depths, lambda n: mlp(n, 8))
    table("tanh MLP, width 64: time against depth", "depth", depths, lambda n: mlp(n, 64))
    table("tanh MLP, depth 2: time against width", "width", widths, lambda n: mlp(2, n))
    table("tanh MLP, depth 20: time against width", "width", widths, lambda n: mlp(20, n))
    table("one shared W (width 3), repeated", "depth", [4, 12, 20], shared)
    table("scalar chain h = tanh(h) * h", "depth", [4, 8, 12], chain)
    table("stacked softmaxes, width 8", "depth", [1, 3, 5], lambda n: softmaxes(n, 8))
    table("stacked softmaxes, width 16", "depth", [1, 3, 5], softmaxes)
    table("seed sigmoid/softmax MLP with its questions, D = H = C", "width", [3, 32, 64], seed_mlp)


if __name__ == "__main__":
    main()
