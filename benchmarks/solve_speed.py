"""How long `derivkit solve --no-train` takes, and how derivation scales with depth.

Part 1: wall time of the real command (start-up included) for every problems/*.yaml.
Part 2: for sigmoid MLPs of depth 1..10 (width 3, softmax + cross-entropy), the time
of the symbolic reverse pass (derive) and of the proof against SymPy (verify).
Run: python benchmarks/solve_speed.py
"""
from __future__ import annotations

import glob
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from derivkit.derive import derive  # noqa: E402
from derivkit.graph import build_graph  # noqa: E402
from derivkit.problem import parse_problem  # noqa: E402
from derivkit.verify import Verifier  # noqa: E402


def mlp_yaml(depth: int, width: int = 3) -> str:
    lines = ["id: mlp-depth", f"dims: {{D: {width}, H: {width}, C: {width}}}", "symbols:",
             "  x: {shape: [D], role: input}", "  t: {shape: [C], role: target, kind: onehot}"]
    prev, prev_dim = "x", "D"
    forward = []
    for i in range(1, depth + 1):
        lines.append(f"  W{i}: {{shape: [H, {prev_dim}], role: param}}")
        lines.append(f"  b{i}: {{shape: [H], role: param}}")
        forward += [f"  z{i}: W{i} @ {prev} + b{i}", f"  h{i}: sigmoid(z{i})"]
        prev, prev_dim = f"h{i}", "H"
    lines += ["  V: {shape: [C, H], role: param}", "  c: {shape: [C], role: param}", "forward:"]
    lines += forward + [f"  o: V @ {prev} + c", "  y: softmax(o)", "loss:", "  l: -sum(t * log(y))"]
    return "\n".join(lines) + "\n"


def main() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}, {sys.platform}")
    print("\n== derivkit solve --no-train, wall time including start-up ==")
    print(f"{'problem':<48} {'seconds':>8}")
    for path in sorted(glob.glob(str(ROOT / "problems" / "*.yaml"))):
        t = time.perf_counter()
        r = subprocess.run(["derivkit", "solve", path, "--no-train", "--format", "json"],
                           capture_output=True, text=True)
        dt = time.perf_counter() - t
        status = "" if r.returncode == 0 else f"  (exit {r.returncode})"
        print(f"{Path(path).name:<48} {dt:8.2f}{status}")

    print("\n== sigmoid MLP of depth k, width 3: derive vs verify (seconds) ==")
    print(f"{'depth':>5} {'derive':>8} {'per layer':>10} {'verify':>8}")
    for depth in range(1, 11):
        problem = parse_problem(mlp_yaml(depth), f"depth{depth}.yaml")
        t = time.perf_counter()
        g = build_graph(problem)
        d = derive(g)
        t_derive = time.perf_counter() - t
        t_verify = float("nan")
        if depth <= 4:     # the SymPy ground truth grows much faster than the derivation
            t = time.perf_counter()
            v = Verifier(g, points=2)
            for name in g.names:
                v.error(d.full[name], g.loss, name)
            t_verify = time.perf_counter() - t
        print(f"{depth:>5} {t_derive:8.3f} {t_derive / depth:10.4f} {t_verify:8.2f}")


if __name__ == "__main__":
    main()
