"""Gradient check: the compiled derived gradients against extrapolated central differences.

For every continuous leaf (parameters, inputs, real-valued targets) and every named node θ,
the derived gradient g = ``derivation.full[name]`` is compared along a few directions uᵏ
with the loss's directional derivative, estimated by central differences in float64 and
refined by Richardson extrapolation:

    D(t) = (l(θ + t u) − l(θ − t u)) / 2t,   t = ε = 1e-6
    ⟨g, u⟩ ≈ (4 D(t/2) − D(t)) / 3          (truncation error O(t⁴) instead of O(t²))

Directions.  A leaf or node of at most ``COORDINATES`` entries is checked entry by entry
(uᵢ = sᵢ eᵢ); a larger one along ``directions`` random directions uᵏ = vᵏ ⊙ s, vᵏ standard
normal.  The scale sᵢ = max(|θᵢ|, SCALE_FLOOR) makes every entry's step relative to its size
(|θᵢ| alone where a step would reach past a singularity: ``log`` of a softmax output of 1e-30).
A random projection keeps a mistake visible: a gradient off by a factor, of the wrong sign,
transposed or missing a term differs from the true one along almost every direction (the
chance that k Gaussian directions all miss a difference of relative size δ is of order δᵏ),
while the cost is O(k) loss evaluations per leaf instead of O(entries): a 64 × 64 weight
costs 4k evaluations, not 4 · 4096.

All perturbed losses of one leaf are one batched call of the executor (the leaf takes a
batch axis).  A node is perturbed with the nodes before it held fixed and the nodes after it
recomputed, so its check is the check of the total derivative the reverse pass claims.
Class-index, one-hot and binary targets and leaves with a declared finite domain
(``values:``) are not perturbed (no derivative exists).  The derived gradients are evaluated
once per point from the leaves' and nodes' values, as the reverse pass would.

Never crying wolf.  Each estimate carries its own noise: the rounding error of the loss
(a few ulps of the largest |l| seen, or of Σ|value · gradient| when that is larger, divided
by the step) plus the disagreement of the two step sizes.  The error is relative with that
noise as an absolute floor, so a loss with a large constant (``+ 1e6``) or tiny entries does
not fail; and a point is drawn again when the loss is ill-conditioned there: not finite, an
intermediate near overflow, the input of an op with a kink (``OPS[op].kink``) within ``KINK``
of it, or differences that are not finite or disagree between the two steps by more than
``ILL``.

Points: ``points`` usable random points (seeds ``seed``, ``seed + 1``, ...; leaves drawn as
:func:`~derivkit.numeric.random_leaves` does, then positive values after half the tries), at
the problem's ``dims`` unless given.  A weight matrix of more than ``FAN_IN`` columns n is
scaled to entries of standard deviation 1/√n, as networks are initialised: drawn at 0.5, a
deep 64-wide tanh network is chaotic (its gradient grows by about 4 per layer and the loss
bends within a step of 1e-6), and differences tell nothing there.

Measures, per leaf or node and point, over its k directional derivatives a = (⟨g, uᵏ⟩) and
their estimates â:

* ``max_rel_error`` — ‖a − â‖ / max(‖a‖ + ‖â‖, ‖noise‖ / THRESHOLD, 1e-8), the largest over
  all leaves, nodes and points.  It lies in [0, 1] (1 = unrelated, of the wrong shape, or
  not a number).
* ``max_entry_rel_error`` — the same per direction (per entry when checked entry by entry);
  reported, it does not decide.

The check passes when ``max_rel_error <= THRESHOLD = 1e-6``: estimation noise alone stays
below it by construction, and any real mistake — a sign, a transpose, a missing factor, a
gradient 1 % off — gives 1e-3 to 1.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .expr import sym
from .graph import Graph
from .numeric import Program, distinct_atoms, inline_nodes, random_leaves
from .ops import OPS

THRESHOLD = 1e-6
EPS = 1e-6
SCALE_FLOOR = 0.1      # an entry near 0 is stepped as if it were this large (rounding would swamp its step)
FLOOR = 1e-8
KINK = 1e-4
OVERFLOW = 1e100        # an intermediate this large: the point is too close to overflow
ILL = 1e-3              # the two steps disagree by more than this (relative): ill-conditioned
ROUNDING = 8 * np.finfo(np.float64).eps   # rounding of one loss value, relative to |l|
QUIET = 1e-5            # noise this small (relative to the estimate) needs no larger step
STEP_GROWTH = 1e4       # steps grow at most this much when rounding swamps them
STEP_SHRINK = 1e6       # steps shrink at most this much when curvature or a singularity bends them
MAX_TRIES = 50
CHUNK = 1 << 20         # at most this many numbers per batched loss call
FAN_IN = 4              # a weight matrix with more columns is drawn with entries of std 1/sqrt(columns)
COORDINATES = 16        # a leaf or node with at most this many entries is checked entry by entry
DIRECTIONS = 6          # random directions for a larger one


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
    """The inputs of the kinks in ``exprs`` that can move (a constant ``relu(0)`` never crosses)."""
    seen: dict = {}
    for e in exprs:
        for node in e.walk():
            if OPS[node.op].kink and node.args and _varies(node.args[0]):
                seen.setdefault(node.args[0], None)
    return list(seen)


def _varies(e) -> bool:
    return any(n.op in ("sym", "grad") for n in e.walk())


@dataclass
class _Programs:
    """Everything the check evaluates, compiled once per problem."""

    forward: Program           # every node (and the loss) from the leaves
    grads: Program             # the derived gradient of every checked leaf and inner node, from all values
    kinks: Program | None      # the input of every kink in the nodes and the gradients, from all values
    loss: Program              # the loss from the leaves (for perturbing a leaf)
    node_loss: dict            # per node: the loss from that node and what it does not depend on


def _compile(graph: Graph, derivation, leaves, node_names, dims) -> _Programs:
    full_map = inline_nodes(graph)
    inner = [n for n in graph.nodes if n != graph.loss]
    grad_exprs = {n: derivation.full[n] for n in [*leaves, *inner]}
    kinks = _kink_args([*graph.nodes.values(), *grad_exprs.values()])
    node_loss = {}
    for n in node_names:
        after = inline_nodes(graph, after=n)
        node_loss[n] = _fd_program(after[sym(graph.loss)] if after else sym(graph.loss), dims)
    return _Programs(
        forward=_program({n: full_map[sym(n, e.shape)] for n, e in graph.nodes.items()}, dims),
        grads=_program(grad_exprs, dims),
        kinks=_program(dict(enumerate(kinks)), dims) if kinks else None,
        loss=_fd_program(full_map[sym(graph.loss)], dims),
        node_loss=node_loss)


def gradcheck(graph: Graph, derivation, *, points: int = 3, seed: int = 0, dims: dict | None = None,
              eps: float = EPS, nodes: bool = True, directions: int = DIRECTIONS) -> GradcheckResult:
    """Check every derived gradient of the loss against central differences; see the module doc."""
    dims = dict(graph.dims if dims is None else dims)
    leaves = checked_leaves(graph)
    node_names = [n for n in graph.nodes if n != graph.loss] if nodes else []
    progs = _compile(graph, derivation, leaves, node_names, dims)

    per_leaf = {n: 0.0 for n in leaves}
    per_node = {n: 0.0 for n in node_names}
    entry_max = 0.0
    used = 0
    for p in range(points):
        rng = np.random.default_rng(seed + p)
        measured = None
        for attempt in range(MAX_TRIES):
            values = _draw(graph, progs, dims, rng, attempt)
            if values is not None:
                measured = _point(progs, values, leaves, node_names, eps, rng, directions)
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


def _draw(graph, progs: _Programs, dims, rng, attempt: int) -> dict | None:
    """Random values of every leaf and node (positive leaves after half the tries), or None
    where the loss is ill-conditioned: not finite, an intermediate near overflow, or a kink
    within reach."""
    values = random_leaves(graph, rng, dims, positive=attempt >= MAX_TRIES // 2)
    values = {k: (np.asarray(v, dtype=np.float64) if not isinstance(v, np.integer) else v)
              for k, v in values.items()}
    for k, v in values.items():
        spec = graph.problem.symbols.get(k)
        if spec is not None and spec.role == "param" and np.ndim(v) == 2 and v.shape[1] > FAN_IN:
            values[k] = v * np.sqrt(FAN_IN / v.shape[1])
    with np.errstate(all="ignore"):
        try:
            nodes = progs.forward.run(values)
            if not all(_tame(v) for v in nodes.values()):
                return None
            allv = {**values, **nodes}
            if progs.kinks is not None:
                ks = progs.kinks.run(allv)
                if any(_near_kink(v) for v in ks.values()):
                    return None
        except (ValueError, IndexError, ZeroDivisionError):
            return None
    return allv


def _near_kink(v) -> bool:
    """An entry within ``KINK`` of a kink, but not exactly on it: an input that is 0 at a random
    point is 0 by construction (``abs(w - w)``), stays there under every step (the sign check
    of :func:`_richardson` says when it does not) and has the derivative both sides agree on."""
    a = np.abs(np.asarray(v, dtype=np.float64))
    return bool(np.any((a > 0) & (a < KINK)))


def _tame(v) -> bool:
    a = np.asarray(v, dtype=np.float64)
    return bool(np.all(np.isfinite(a)) and (a.size == 0 or np.max(np.abs(a)) < OVERFLOW))


def _point(progs: _Programs, allv: dict, leaves, node_names, eps, rng, directions) -> dict | None:
    """``{name: (error, entry error)}`` at one point, or None when the loss is ill-conditioned there:
    a derived gradient that is not finite (∂l/∂y = −t/y at a softmax output of 1e-314) or
    differences that are not."""
    out = {}
    with np.errstate(all="ignore"):
        analytic = progs.grads.run(allv)
        if not all(np.all(np.isfinite(np.asarray(g, dtype=np.float64))) for g in analytic.values()):
            return None
        scale = _sensitivity(allv, analytic)
        for n in [*leaves, *node_names]:
            prog = progs.loss if n in leaves else progs.node_loss[n]
            base = np.asarray(allv[n], dtype=np.float64)
            est = _differences(prog, allv, n, _directions(base.size, rng, directions), eps, scale)
            if est is None:
                return None
            out[n] = _compare(analytic[n], base.shape, *est)
    return out


def _directions(size: int, rng, k: int) -> np.ndarray:
    """The directions (rows) to check along: the coordinates when there are few, else k random ones."""
    if size <= max(COORDINATES, k):
        return np.eye(size)
    return rng.standard_normal((k, size))


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


def _differences(prog: Program, values: dict, name: str, v: np.ndarray, eps: float, scale: float = 0.0):
    """(directions, estimate, noise): the derivatives of l along the directions; None where ill-conditioned.

    The directions are the rows of ``v`` scaled entry by entry by max(|θᵢ|, SCALE_FLOOR), the
    step is ``eps``.  When that estimate is noisy, the larger steps up to eps · ``STEP_GROWTH``
    (where rounding swamps the step, as with a loss with a large constant) or the smaller ones
    down to eps / ``STEP_SHRINK`` (where curvature bends it, as in a deep network) are tried in
    one batched call, and the well-conditioned estimate with the least noise is kept.  When
    none is well-conditioned, a step reaches past a singularity (``log`` of a softmax output of
    1e-30, next to an entry of 0.1): then the directions are scaled by |θᵢ| alone, so no entry
    changes sign, and the same is done with the steps up to eps.
    """
    if v.size == 0:
        return v, np.zeros(len(v)), np.zeros(len(v))
    theta = np.abs(np.asarray(values[name], dtype=np.float64).ravel())
    signs = {key: np.sign(x) for key, x in prog.run(values).items() if key != "l"}
    u = v * np.maximum(theta, SCALE_FLOOR)
    (first,) = _richardson(prog, values, name, u, np.array([eps]), scale, signs)
    if first is not None and _conditioned(*first) and \
            np.linalg.norm(first[1] + first[2]) <= QUIET * np.linalg.norm(first[0]):
        return u, first[0], first[1] + first[2]
    ladder = eps * 10.0 ** np.arange(-round(np.log10(STEP_SHRINK)), round(np.log10(STEP_GROWTH)) + 1)
    if first is not None and np.linalg.norm(first[2]) > np.linalg.norm(first[1]):
        steps = ladder[ladder >= eps]         # rounding dominates: only larger steps can help
    elif first is not None:
        steps = ladder[ladder <= eps]         # curvature dominates: only smaller steps can help
    else:
        steps = ladder
    for dirs, tries in ((u, steps), (v * theta, ladder[ladder <= eps])):
        good = [est for est in _richardson(prog, values, name, dirs, tries, scale, signs)
                if est is not None and _conditioned(*est)]
        if good:
            est = min(good, key=lambda e: float(np.linalg.norm(e[1] + e[2])))
            return dirs, est[0], est[1] + est[2]
    return None


def _conditioned(estimate, spread, rounding) -> bool:
    """The two steps agree, up to rounding, within ``ILL`` of the estimate."""
    return bool(np.linalg.norm(spread) <= ILL * np.linalg.norm(estimate) + 100 * np.linalg.norm(rounding))


def _richardson(prog: Program, values: dict, name: str, u: np.ndarray, steps: np.ndarray, scale: float,
                signs: dict) -> list:
    """For each step t: (estimate, spread, rounding) from central differences along each row of u
    at steps t and t/2, or None when a loss is not finite or a step carries the input of a kink
    across it (its sign differs from ``signs``).  All steps are one batched evaluation."""
    base = np.asarray(values[name], dtype=np.float64)
    k, m = u.shape
    per = np.stack([steps, -steps, steps / 2, -steps / 2], axis=1)       # rows: +t, -t, +t/2, -t/2
    coef = np.repeat(per.ravel(), k)                                     # ... along every direction
    n = len(coef)
    losses = np.empty(n)
    crossed = np.zeros(n, dtype=bool)
    rows_per_call = max(1, CHUNK // m)
    for start in range(0, n, rows_per_call):
        stop = min(start + rows_per_call, n)
        idx = np.arange(start, stop) % k
        batch = base.ravel() + coef[start:stop, None] * u[idx]
        out = prog.run({**values, name: batch.reshape((stop - start,) + base.shape)}, {name})
        losses[start:stop] = np.broadcast_to(np.asarray(out.pop("l"), dtype=np.float64), (stop - start,))
        for key, x in out.items():
            if np.shape(x) != np.shape(signs[key]):          # batched: one row per perturbed value
                moved = np.sign(x) != signs[key]
                crossed[start:stop] |= moved.reshape(stop - start, -1).any(axis=1)
    results = []
    for i, t in enumerate(steps):
        rows = slice(4 * k * i, 4 * k * (i + 1))
        if crossed[rows].any() or not np.all(np.isfinite(losses[rows])):
            results.append(None)
            continue
        lp, lm, lp2, lm2 = losses[rows].reshape(4, k)
        d1 = (lp - lm) / (2 * t)
        d2 = (lp2 - lm2) / t
        rounding = np.full(k, ROUNDING * max(float(np.max(np.abs(losses[rows]))), scale) / t)
        results.append(((4 * d2 - d1) / 3, np.abs(d2 - d1), rounding))
    return results


def _compare(analytic, shape: tuple, u: np.ndarray, numeric: np.ndarray, noise: np.ndarray) -> tuple[float, float]:
    """Norm-based and largest per-direction relative error of the derived gradient projected on
    the rows of ``u``, estimation noise as the absolute floor.  1.0 for a wrong shape or a non-number.
    """
    a = np.asarray(analytic, dtype=np.float64)
    if a.shape != shape:
        if a.size == 1 and int(np.prod(shape)) == 1:
            a = a.reshape(shape)
        elif a.ndim == 0:          # a scalar spread over every entry (a zero gradient, say)
            a = np.broadcast_to(a, shape)
        else:
            return 1.0, 1.0
    if not np.all(np.isfinite(a)):
        return 1.0, 1.0
    if numeric.size == 0:
        return 0.0, 0.0
    a = u @ a.ravel()
    diff = np.abs(a - numeric)
    floor = max(float(np.linalg.norm(noise)) / THRESHOLD, FLOOR)
    err = float(np.linalg.norm(diff)) / max(float(np.linalg.norm(a) + np.linalg.norm(numeric)), floor)
    entry = float(np.max(diff / np.maximum(np.abs(a) + np.abs(numeric), np.maximum(noise / THRESHOLD, FLOOR))))
    return min(err, 1.0), min(entry, 1.0)
