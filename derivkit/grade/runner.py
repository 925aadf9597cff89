"""Judging where it can be stopped: worker processes with a wall-clock limit per answer.

SymPy and mpmath calls on hostile input can run for hours and C code does not
see Python signals, so every answer is judged in a forked worker process that
holds the prepared :class:`~derivkit.grade.judge.Judge` (fork shares it, so a
worker starts in milliseconds).  The parent gives each worker one answer at a
time; a worker that exceeds ``timeout`` seconds is killed and replaced, and the
answer gets the verdict ``error``; an exception in a worker is an ``error``
verdict too.  Nothing a submission does can stop the batch.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from multiprocessing.connection import wait

from .judge import Judge, Verdict

TIMEOUT = 5.0                   # seconds per answer
MEMORY = 2 * 1024 ** 3          # bytes of address space a worker may add to what it inherits

_JUDGE: Judge | None = None     # the judge a forked worker inherits


def _serve(conn) -> None:
    """A worker: judge (index, qid, text) requests until told to stop."""
    _limit_memory(MEMORY)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        i, qid, text = msg
        try:
            verdict = _JUDGE.judge(qid, text)
        except MemoryError:
            verdict = _error(_JUDGE, qid, "the answer needed too much memory to judge")
        except Exception as exc:            # noqa: BLE001 — a verdict, never a crash
            verdict = _error(_JUDGE, qid, f"the answer could not be judged ({type(exc).__name__})")
        conn.send((i, verdict))


def _limit_memory(extra: int) -> None:
    """Let this process map at most ``extra`` bytes more than it has now (best effort, Linux)."""
    try:
        import resource
        with open("/proc/self/statm") as f:
            now = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = now + extra if hard == resource.RLIM_INFINITY else min(now + extra, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


def _error(judge: Judge, qid: str, why: str) -> Verdict:
    ref = judge.refs[qid] if qid in judge.refs else None
    return Verdict(qid, "error", 0, ref.points if ref else 0, None, why + "; please tell your instructor.")


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.task: tuple | None = None
        self.started = 0.0

    def give(self, task: tuple) -> None:
        self.task, self.started = task, time.monotonic()
        self.conn.send(task)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(1)
        if self.proc.is_alive():
            self.kill()


def judge_all(judge: Judge, tasks: list[tuple[str, object]], workers: int = 1,
              timeout: float = TIMEOUT, progress=None, prepare: bool = True) -> list[Verdict]:
    """Verdicts for ``tasks`` ((question id, answer text) pairs), in order.

    Each answer has at most ``timeout`` seconds of wall-clock time in one of
    ``workers`` forked processes.
    """
    global _JUDGE
    _JUDGE = judge
    if prepare:
        judge.prepare(sorted({qid for qid, _ in tasks}))   # mutations made once, before the workers fork
    ctx = mp.get_context("fork")
    results: list[Verdict | None] = [None] * len(tasks)
    todo = list(enumerate(tasks))[::-1]
    pool = [_Worker(ctx) for _ in range(max(1, min(workers, len(tasks) or 1)))]
    done = 0
    try:
        while done < len(tasks):
            for w in pool:
                if w.task is None and todo:
                    i, (qid, text) = todo.pop()
                    w.give((i, qid, text))
            busy = [w for w in pool if w.task is not None]
            deadline = min(w.started for w in busy) + timeout
            ready = wait([w.conn for w in busy], max(0.0, deadline - time.monotonic()))
            for k, w in enumerate(pool):
                if w.task is None:
                    continue
                if w.conn in ready:
                    try:
                        i, verdict = w.conn.recv()
                    except (EOFError, OSError):       # the worker died (memory limit, signal)
                        i, verdict = w.task[0], _error(judge, w.task[1], "the answer could not be judged")
                        w.kill()
                        pool[k] = w = _Worker(ctx)
                    results[i] = verdict
                elif time.monotonic() - w.started >= timeout:
                    i = w.task[0]
                    results[i] = _error(judge, w.task[1], f"judging took longer than {timeout:g} s")
                    w.kill()
                    pool[k] = w = _Worker(ctx)
                else:
                    continue
                w.task = None
                done += 1
                if progress is not None:
                    progress(done, len(tasks))
    finally:
        for w in pool:
            w.stop() if w.task is None else w.kill()
    return results


def judge_one(judge: Judge, qid: str, text, timeout: float = TIMEOUT) -> Verdict:
    """One answer, with the same wall-clock limit (``check``)."""
    return judge_all(judge, [(qid, text)], 1, timeout, prepare=False)[0]


__all__ = ["TIMEOUT", "judge_all", "judge_one"]


def grade(judge: Judge, submissions, workers: int = 1, timeout: float = TIMEOUT, progress=None,
          qids: list[str] | None = None):
    """A :class:`~derivkit.grade.export.Result` per submission, every question of the problem judged
    (unreadable submission files: every answer ``error``, with the file's mistake as feedback)."""
    from .export import Result
    qids = qids or list(judge.refs)
    tasks, slots = [], []
    for n, sub in enumerate(submissions):
        if sub.error is None:
            for q in qids:
                tasks.append((q, sub.answers.get(q)))
                slots.append(n)
    verdicts = judge_all(judge, tasks, workers, timeout, progress) if tasks else []
    per: list[list[Verdict]] = [[] for _ in submissions]
    for n, v in zip(slots, verdicts):
        per[n].append(v)
    results = []
    for sub, vs in zip(submissions, per):
        if sub.error is not None:
            vs = [Verdict(q, "error", 0, judge.refs[q].points, None, sub.error) for q in qids]
        results.append(Result(sub.student, vs, sub.source))
    return results
