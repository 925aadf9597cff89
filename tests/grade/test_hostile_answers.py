"""Hostile answers: each ends with a verdict within the time limit, nothing runs, nothing crashes."""
from __future__ import annotations

import json
import random
import time

from click.testing import CliRunner

from derivkit.cli import main
from derivkit.grade.judge import VERDICTS
from derivkit.grade.runner import judge_all, judge_one
from judges import ROOT, judge_for

MLP = ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml"
TIMEOUT = 3.0

FRAGMENTS = [
    "__import__('os').system('touch /tmp/pwned')", "eval('1')", "exec('x=1')", "open('/etc/passwd').read()",
    "().__class__.__bases__[0].__subclasses__()", "lambda: 0", "[x for x in ()]", "x.__dict__", "y - t",
    "x**(10**10**10)", "y**(10**15)**(10**15)", "exp(exp(exp(exp(exp(y)))))", "10**15**15", "1/0", "log(0*y)",
    "sqrt(-1 - y*y)", r"\input{/etc/passwd}", r"\write18{rm -rf /}", r"\def\x{\x}\x", r"\csname x\endcsname",
    r"\catcode`\^=12", r"\begin{verbatim}", r"\end{cases}", r"\frac{\partial l}{\partial", r"\sum_{j=1}^{10^{10}} y_j",
    r"\sigma'''(z)", "\x00", "\x1b[31m", "\u202e", "\ufeff", "\r\n", "\t", "σ(z) ⊙ ", "∂l/∂o", "$$", "%",
    "{", "}", "(", ")", "[", "]", "^", "_", "'", "\\", "&", "#", "~", "@", "y @ @ t", "h.T.T.T", "W[99]",
    "softmax(softmax(softmax(y)))", "diag(diag(diag(y)))", "9" * 5000, "1e308*1e308", "nan", "inf",
]


def hostile_inputs(n: int = 1100) -> list[str]:
    rng = random.Random(0)
    out = list(FRAGMENTS)
    out += ["(" * 5000 + "y" + ")" * 5000, "{" * 5000 + "y" + "}" * 5000, r"\left(" * 2000 + "y",
            "y" * 1_000_000, "y - t" + " " * 1_000_000, "-" * 10000 + "y", "x" + "**x" * 3000,
            "".join(chr(c) for c in range(32)) * 10, r"\frac{" * 3000, "h" + "'" * 5000]
    while len(out) < n:
        k = rng.randint(1, 6)
        out.append(" ".join(rng.choice(FRAGMENTS) for _ in range(k)))
    return out


def test_a_thousand_hostile_answers_each_get_a_verdict_in_time():
    j = judge_for("mlp_sigmoid_softmax_ce")
    texts = hostile_inputs()
    assert len(texts) >= 1000
    qids = list(j.refs)
    tasks = [(qids[i % len(qids)], t) for i, t in enumerate(texts)]
    start = time.monotonic()
    verdicts = judge_all(j, tasks, workers=2, timeout=TIMEOUT)
    elapsed = time.monotonic() - start
    assert len(verdicts) == len(tasks)
    assert all(v.verdict in VERDICTS and v.question == q for v, (q, _) in zip(verdicts, tasks))
    assert elapsed < len(tasks) * TIMEOUT / 2 + 10
    assert not (ROOT / "pwned").exists()


def test_the_time_limit_holds_and_the_batch_goes_on(monkeypatch):
    j = judge_for("mlp_sigmoid_softmax_ce")
    original = j.judge

    def slow(qid, text):
        if text == "slow":
            while True:          # a pure-Python loop and a C call alike end with the process
                sum(range(10**7))
        return original(qid, text)
    monkeypatch.setattr(j, "judge", slow)
    start = time.monotonic()
    verdicts = judge_all(j, [("dl_do", "slow"), ("dl_do", "y - t"), ("dl_do", "slow")], workers=1, timeout=0.5)
    assert time.monotonic() - start < 5
    assert [v.verdict for v in verdicts] == ["error", "correct", "error"]


def test_a_crash_in_judging_is_an_error_verdict(monkeypatch):
    j = judge_for("mlp_sigmoid_softmax_ce")
    monkeypatch.setattr(j, "judge", lambda qid, text: 1 / 0)
    assert judge_one(j, "dl_do", "y - t", timeout=5).verdict == "error"


def test_hostile_answers_through_check():
    runner = CliRunner()
    for text in hostile_inputs(40)[::4] + ["(" * 5000 + "y" + ")" * 5000, "x**(10**10**10)"]:
        r = runner.invoke(main, ["check", "--format", "json", "--timeout", str(TIMEOUT), "--", str(MLP), "dl_do", text])
        assert r.exit_code in (0, 1), r.output
        assert json.loads(r.output)["verdict"] in VERDICTS


def test_hostile_csv_through_grade(tmp_path):
    import csv
    path = tmp_path / "class.csv"
    texts = hostile_inputs(60)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "dl_do", "dl_dV", "dl_dW"])
        for i in range(0, 60, 3):
            w.writerow([f"=HYPERLINK(\"x\") {i}"] + [t.replace("\x00", "")[:3000] for t in texts[i:i + 3]])
    (tmp_path / "broken.yaml").write_text("student: [\n")
    (tmp_path / "bomb.yaml").write_text('a: &a ["x","x","x","x","x","x","x","x","x"]\n'
                                        + "".join(f'b{i}: &b{i} [*{"a" if i == 0 else f"b{i - 1}"}'
                                                  f'{(", *" + ("a" if i == 0 else f"b{i - 1}")) * 8}]\n'
                                                  for i in range(9)))
    out = tmp_path / "feedback"
    r = CliRunner().invoke(main, ["grade", str(MLP), str(tmp_path), "--format", "csv", "--out", str(out),
                                  "--workers", "2", "--timeout", str(TIMEOUT)])
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(r.output.splitlines()))
    assert len(rows) == 1 + 20 + 2
    assert all(not row[0].startswith("=") for row in rows[1:])
    assert len(list(out.glob("*.md"))) == 22


def test_a_memory_bomb_is_an_error_verdict_and_the_batch_goes_on(monkeypatch):
    j = judge_for("mlp_sigmoid_softmax_ce")
    original = j.judge

    def greedy(qid, text):
        if text == "bomb":
            return bytearray(3 * 1024 ** 3)     # more than a worker may add
        return original(qid, text)
    monkeypatch.setattr(j, "judge", greedy)
    verdicts = judge_all(j, [("dl_do", "bomb"), ("dl_do", "y - t")], workers=1, timeout=10)
    assert [v.verdict for v in verdicts] == ["error", "correct"]
