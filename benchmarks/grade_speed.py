"""How fast the grader judges: 1 000 submissions x 10 questions, and `derivkit check` wall time.

A realistic mix per answer: correct forms (ASCII and LaTeX), each kind of mistake the
judge diagnoses (sign, scale, transpose, a dropped local derivative, σ for σ', a wrong
node), unparseable text and blanks, drawn with a fixed seed for problems/
sigmoid_chain_squared_error.yaml.  Reported: answers per second per worker after
start-up (the judge prepared once), the speed-up of --workers 2, and the wall time of
one `derivkit check` (start-up included) as a student sees it.
Run: python benchmarks/grade_speed.py [--students N]
"""
from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = ROOT / "problems" / "sigmoid_chain_squared_error.yaml"


def answer_pool(judge, qid: str) -> list[str]:
    """Texts a class might write for one question: right, each kind of wrong, and garbage."""
    from derivkit.expr import make, num
    from derivkit.grade.mistakes import variants
    from derivkit.printing import to_ascii, to_latex
    ans, ref = judge.answers[qid], judge.refs[qid]
    pool = [ans.expr, ans.latex] * 3
    if ref.expr is not None and not ref.index:
        e = ref.expr
        pool += [to_ascii(make("neg", e)), to_latex(make("mul", num(2), e), judge.problem.latex)]
        if e.shape:
            pool.append(to_ascii(make("T", e)))
        pool += [to_ascii(v.expr) for v in variants(judge, ref)[:6]]
    pool += ["y - ", r"\frac{\partial l}{", "W @ @ x", ""]
    return pool


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=1000)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from derivkit.grade.answers import Submission
    from derivkit.grade.judge import Judge
    from derivkit.grade.runner import grade

    t0 = time.perf_counter()
    judge = Judge(PROBLEM)
    judge.prepare()
    prep = time.perf_counter() - t0
    qids = list(judge.refs)[:10]
    rng = random.Random(0)
    pools = {q: answer_pool(judge, q) for q in qids}
    subs = [Submission(f"s{i}", {q: rng.choice(pools[q]) for q in qids}) for i in range(args.students)]
    n = len(subs) * len(qids)
    print(f"problem {PROBLEM.name}: {len(qids)} questions, judge prepared in {prep:.2f} s")
    rates = {}
    for workers in (1, 2):
        t = time.perf_counter()
        results = grade(judge, subs, workers=workers, qids=qids)
        dt = time.perf_counter() - t
        rates[workers] = n / dt
        counts: dict[str, int] = {}
        for r in results:
            for v in r.verdicts:
                counts[v.verdict] = counts.get(v.verdict, 0) + 1
        print(f"--workers {workers}: {n} answers in {dt:.2f} s = {n / dt:.0f} answers/s "
              f"({n / dt / workers:.0f} per worker)  {counts}")
    print(f"speed-up of --workers 2: {rates[2] / rates[1]:.2f}x")
    walls = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "derivkit.cli", "check", str(PROBLEM), qids[0], "x"],
                       capture_output=True, check=False)
        walls.append(time.perf_counter() - t)
    print(f"derivkit check, start-up included: median {statistics.median(walls):.2f} s "
          f"(min {min(walls):.2f} s) over 5 runs")


if __name__ == "__main__":
    main()
