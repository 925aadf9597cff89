"""Gradient check: the compiled derived gradients against extrapolated central differences.

For every continuous leaf (parameters, inputs, real-valued targets) and every named node,
each entry of the loss's gradient is estimated by central differences in float64 with a
step chosen per entry from the value's scale, refined by Richardson extrapolation:

    D(h) = (l(θ + h eᵢ) − l(θ − h eᵢ)) / 2h,   hᵢ = ε · max(|θᵢ|, SCALE_FLOOR),   ε = 1e-6
    ĝᵢ = (4 D(hᵢ/2) − D(hᵢ)) / 3                 (truncation error O(h⁴) instead of O(h²))

and compared with ``derivation.full[name]`` compiled and evaluated there.  All perturbed
losses of one leaf are one batched call of the executor (the leaf takes a batch axis).  A
node is perturbed with the nodes before it held fixed and the nodes after it recomputed, so
its check is the check of the total derivative the reverse pass claims.  Class-index,
one-hot and binary targets and leaves with a declared finite domain (``values:``) are not
perturbed (no derivative exists).

Never crying wolf.  Each estimate carries its own noise: the rounding error of the loss
(a few ulps of the largest |l| seen, divided by the step) plus the disagreement of the two
step sizes.  The error is relative with that noise as an absolute floor, so a loss with a
large constant (``+ 1e6``) or tiny entries does not fail; and a point is drawn again when
the loss is ill-conditioned there: not finite, an intermediate near overflow, the input of
an op with a kink (``OPS[op].kink``) within ``KINK`` of it, or differences that are not
finite or disagree between the two steps by more than ``ILL``.

Points: ``points`` usable random points (seeds ``seed``, ``seed + 1``, ...; leaves drawn as
:func:`~derivkit.numeric.random_leaves` does, then positive values after half the tries), at
the problem's ``dims`` unless given.

Measures, per leaf or node and point:

* ``max_rel_error`` — norm-based, ‖g − ĝ‖ / max(‖g‖ + ‖ĝ‖, ‖noise‖ / THRESHOLD, 1e-8), the
  largest over all leaves, nodes and points.  It lies in [0, 1] (1 = unrelated, of the
  wrong shape, or not a number).
* ``max_entry_rel_error`` — the same per entry; reported, it does not decide.

The check passes when ``max_rel_error <= THRESHOLD = 1e-6``: estimation noise alone stays
below it by construction, and any real mistake — a sign, a transpose, a missing factor, a
gradient 1 % off — gives 1e-3 to 1.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .expr import substitute, sym
from .graph import Graph
from .numeric import Program, distinct_atoms, forward_values, inline_nodes, random_leaves
from .ops import OPS

THRESHOLD = 1e-6
EPS = 1e-6
SCALE_FLOOR = 0.1      # steps never shrink below EPS * SCALE_FLOOR (rounding would swamp them)
FLOOR = 1e-8
KINK = 1e-4
OVERFLOW = 1e100        # an intermediate this large: the point is too close to overflow
ILL = 1e-3              # the two steps disagree by more than this (relative): ill-conditioned
ROUNDING = 8 * np.finfo(np.float64).eps   # rounding of one loss value, relative to |l|
QUIET = 1e-5            # noise this small (relative to the estimate) needs no larger step
STEP_GROWTH = 1e4       # steps grow at most this much when rounding swamps them
MAX_TRIES = 50
CHUNK = 1 << 20         # at most this many numbers per batched loss call


@dataclass
class GradcheckResult:
    """The outcome of :func:`gradcheck`; :meth:`to_json` gives the contract's ``gradcheck`` object."""

    max_rel_error: float
    max_entry_rel_error: float
    passed: bool
    threshold: float
    points: int
    eps: float
    per_leaf: dict[str, float]
    per_node: dict[str, float]
    worst: str | None

    def to_json(self) -> dict:
        return asdict(self)


def checked_leaves(graph: Graph) -> list[str]:
    """Leaves with a derivative: not class/onehot/binary targets, not finite domains."""
    out = []
    for name in graph.leaves:
        spec = graph.problem.symbols.get(name)
        if spec is not None and (getattr(spec, "values", None) or spec.kind in ("class", "onehot", "binary")):
            continue
        out.append(name)
    return out


def _program(outputs: dict, dims: dict) -> Program:
    memo: dict = {}
    return Program({k: distinct_atoms(e, memo) for k, e in outputs.items()}, dims)


def _fd_program(loss, dims: dict) -> Program:
    """The loss (``"l"``) and the input of every kink in it (``("kink", i)``), for differences."""
    return _program({"l": loss, **{("kink", i): a for i, a in enumerate(_kink_args([loss]))}}, dims)


def _kink_args(exprs) -> list:
    seen: dict = {}
    for e in exprs:
        for node in e.walk():
            if OPS[node.op].kink and node.args:
                seen.setdefault(node.args[0], None)
    return list(seen)


def gradcheck(graph: Graph, derivation, *, points: int = 3, seed: int = 0, dims: dict | None = None,
              eps: float = EPS, nodes: bool = True) -> GradcheckResult:
    """Check every derived gradient of the loss against central differences; see the module doc."""
    dims = dict(graph.dims if dims is None else dims)
    leaves = checked_leaves(graph)
    full_map = inline_nodes(graph)
    loss_expr = full_map[sym(graph.loss)]
    loss_prog = _fd_program(loss_expr, dims)
    leaf_grads = {n: substitute(distinct_atoms(derivation.full[n]), full_map) for n in leaves}
    grads_prog = _program(leaf_grads, dims) if leaves else None
    node_names = [n for n in graph.nodes if n != graph.loss] if nodes else []
    node_loss = {}
    for n in node_names:
        after = inline_nodes(graph, after=n)
        node_loss[n] = _fd_program(after[sym(graph.loss)] if after else sym(graph.loss), dims)
    inner = [n for n in graph.nodes if n != graph.loss]
    node_grads = _program({n: derivation.full[n] for n in inner}, dims) if inner else None
    kinks = _kink_args([loss_expr, *leaf_grads.values(),
                        *(substitute(distinct_atoms(derivation.full[n]), full_map) for n in node_names)])
    kink_prog = _program(dict(enumerate(kinks)), dims) if kinks else None
    check = _Checker(graph, dims, loss_prog, kink_prog, eps)

    per_leaf = {n: 0.0 for n in leaves}
    per_node = {n: 0.0 for n in node_names}
    entry_max = 0.0
    used = 0
    for p in range(points):
        rng = np.random.default_rng(seed + p)
        measured = None
        for attempt in range(MAX_TRIES):
            values = _draw(graph, loss_prog, kink_prog, dims, rng, attempt)
            if values is not None:
                measured = check.point(values, leaves, grads_prog, node_names, node_grads, node_loss)
                if measured is not None:
                    break
        if measured is None:
            continue
        used += 1
        for n, (err, entry) in measured.items():
            target = per_leaf if n in per_leaf else per_node
            target[n] = max(target[n], err)
            entry_max = max(entry_max, entry)
    everything = {**per_leaf, **per_node}
    worst = max(everything.values(), default=0.0) if used else 1.0
    return GradcheckResult(
        max_rel_error=float(worst), max_entry_rel_error=float(entry_max),
        passed=bool(used > 0 and worst <= THRESHOLD), threshold=THRESHOLD, points=used, eps=eps,
        per_leaf={k: float(v) for k, v in per_leaf.items()},
        per_node={k: float(v) for k, v in per_node.items()},
        worst=max(everything, key=everything.get) if everything else None)


def _draw(graph, loss_prog, kink_prog, dims, rng, attempt: int) -> dict | None:
    """Random leaf values (positive ones after half the tries), or None where the loss is
    ill-conditioned: not finite, an intermediate near overflow, or a kink within reach."""
    values = random_leaves(graph, rng, dims, positive=attempt >= MAX_TRIES // 2)
    values = {k: (np.asarray(v, dtype=np.float64) if not isinstance(v, np.integer) else v)
              for k, v in values.items()}
    with np.errstate(all="ignore"):
        try:
            loss = loss_prog.run(values)["l"]
            nodes = forward_values(graph, values, dims)
        except (ValueError, IndexError, ZeroDivisionError):
            return None
        if not (np.all(np.isfinite(loss)) and all(_tame(v) for v in nodes.values())):
            return None
        if kink_prog is not None:
            ks = kink_prog.run(values)
            if any(np.size(v) and np.min(np.abs(v)) < KINK for v in ks.values()):
                return None
    return values


def _tame(v) -> bool:
    a = np.asarray(v, dtype=np.float64)
    return bool(np.all(np.isfinite(a)) and (a.size == 0 or np.max(np.abs(a)) < OVERFLOW))


class _Checker:
    """Finite differences and comparisons at one point."""

    def __init__(self, graph, dims, loss_prog, kink_prog, eps):
        self.graph, self.dims, self.loss_prog, self.eps = graph, dims, loss_prog, eps

    def point(self, values, leaves, grads_prog, node_names, node_grads, node_loss) -> dict | None:
        """``{name: (error, entry error)}``, or None when the loss is ill-conditioned at ``values``."""
        out = {}
        with np.errstate(all="ignore"):
            analytic = grads_prog.run(values) if grads_prog else {}
            allv = {**values, **forward_values(self.graph, values, self.dims)}
            an_nodes = node_grads.run(allv) if node_grads else {}
            scale = _sensitivity(allv, {**analytic, **an_nodes})
            for n in leaves:
                est = _differences(self.loss_prog, values, n, self.eps, scale)
                if est is None:
                    return None
                out[n] = _compare(analytic[n], *est)
            for n in node_names:
                est = _differences(node_loss[n], allv, n, self.eps, scale)
                if est is None:
                    return None
                out[n] = _compare(an_nodes[n], *est)
        return out


def _sensitivity(values: dict, grads: dict) -> float:
    """Σ |value · ∂l/∂value| over every node and leaf: the size of the loss's rounding error in ulps.

    A loss computed as ``−log(y)`` with ``y ≈ 1 − 1e-5`` is small, but its rounding error is that
    of ``y``, about one ulp of 1, amplified by ∂l/∂y; first-order propagation says so.
    """
    total = 0.0
    for name, g in grads.items():
        v = values.get(name)
        if v is None or isinstance(v, np.integer):
            continue
        with np.errstate(all="ignore"):
            term = float(np.sum(np.abs(np.asarray(v, dtype=np.float64) * np.asarray(g, dtype=np.float64))))
        if np.isfinite(term):
            total += term
    return total


def _differences(prog: Program, values: dict, name: str, eps: float, scale: float = 0.0):
    """(estimate, noise) of ∂l/∂values[name], entry by entry; None where ill-conditioned.

    Steps start at ``hᵢ = eps · max(|θᵢ|, SCALE_FLOOR)``; when the loss's rounding error
    swamps them (a loss with a large constant) they grow by 10 up to ``STEP_GROWTH`` times,
    and the estimate with the least noise is kept.
    """
    base = np.asarray(values[name], dtype=np.float64)
    if base.size == 0:
        return np.zeros(base.shape), np.zeros(base.shape)
    h0 = eps * np.maximum(np.abs(base.ravel()), SCALE_FLOOR)
    best = None
    factor = 1.0
    while factor <= STEP_GROWTH:
        est = _richardson(prog, values, name, base, h0 * factor, scale)
        if est is None:
            break
        estimate, spread, rounding = est
        noise = float(np.linalg.norm(spread + rounding))
        if best is None or noise < best[0]:
            best = (noise, estimate, spread, rounding)
        if noise <= QUIET * float(np.linalg.norm(estimate)):
            break
        factor *= 10
    if best is None:
        return None
    _, estimate, spread, rounding = best
    if np.linalg.norm(spread) > ILL * np.linalg.norm(estimate) + 100 * np.linalg.norm(rounding):
        return None
    return estimate.reshape(base.shape), (spread + rounding).reshape(base.shape)


def _richardson(prog: Program, values: dict, name: str, base: np.ndarray, h: np.ndarray, scale: float):
    """(estimate, spread, rounding) from central differences at steps h and h/2.

    None when a loss is not finite or a step carries the input of a kink across it.
    """
    m = base.size
    flat = base.ravel()
    steps = np.concatenate([h, -h, h / 2, -h / 2])     # rows: +h, -h, +h/2, -h/2 for every entry
    cols = np.tile(np.arange(m), 4)
    losses = np.empty(4 * m)
    signs = {k: np.sign(v) for k, v in prog.run(values).items() if k != "l"}
    rows_per_call = max(1, CHUNK // m)
    for start in range(0, 4 * m, rows_per_call):
        stop = min(start + rows_per_call, 4 * m)
        batch = np.broadcast_to(flat, (stop - start, m)).copy()
        batch[np.arange(stop - start), cols[start:stop]] += steps[start:stop]
        out = prog.run({**values, name: batch.reshape((stop - start,) + base.shape)}, {name})
        losses[start:stop] = np.broadcast_to(np.asarray(out.pop("l"), dtype=np.float64), (stop - start,))
        if any(np.any(np.sign(v) != signs[k]) for k, v in out.items()):
            return None
    if not np.all(np.isfinite(losses)):
        return None
    lp, lm, lp2, lm2 = losses.reshape(4, m)
    d1 = (lp - lm) / (2 * h)
    d2 = (lp2 - lm2) / h
    return (4 * d2 - d1) / 3, np.abs(d2 - d1), ROUNDING * max(float(np.max(np.abs(losses))), scale) / h


def _compare(analytic, numeric: np.ndarray, noise: np.ndarray) -> tuple[float, float]:
    """Norm-based and largest per-entry relative error, estimation noise as the absolute floor.

    1.0 for a wrong shape or a non-number.
    """
    a = np.asarray(analytic, dtype=np.float64)
    if a.shape != numeric.shape:
        if a.size == 1 and numeric.size == 1:
            a = a.reshape(numeric.shape)
        elif a.ndim == 0:          # a scalar spread over every entry (a zero gradient, say)
            a = np.broadcast_to(a, numeric.shape)
        else:
            return 1.0, 1.0
    if not np.all(np.isfinite(a)):
        return 1.0, 1.0
    if a.size == 0:
        return 0.0, 0.0
    diff = np.abs(a - numeric)
    floor = max(float(np.linalg.norm(noise)) / THRESHOLD, FLOOR)
    err = float(np.linalg.norm(diff)) / max(float(np.linalg.norm(a) + np.linalg.norm(numeric)), floor)
    entry = float(np.max(diff / np.maximum(np.abs(a) + np.abs(numeric), np.maximum(noise / THRESHOLD, FLOOR))))
    return min(err, 1.0), min(entry, 1.0)
