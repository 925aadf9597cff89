"""NumPy evaluation and test vectors: against finite differences, PyTorch, and per-sample sums."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import ALL_PROBLEMS, ROOT, close, evaluate, graph_from_text, loaded, problem_params
from derivkit.expr import concrete, make, num, sym
from derivkit.numeric import Program, forward_values, random_leaves
from derivkit.vectors import vectors

MLP = ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml"
KINK_OPS = ("relu", "relu_prime", "abs")


def _shape(g, name):
    return concrete(g.shape(name), g.dims)


def _discrete(g, name) -> bool:
    spec = g.problem.symbols.get(name)
    return spec is not None and (bool(spec.values) or spec.kind in ("class", "onehot", "binary"))


def loss_with(g, leaves, override=None):
    """The loss, nodes recomputed in order except those held at ``override`` values."""
    override = override or {}
    if not override:
        return float(forward_values(g, leaves)[g.loss])
    values = dict(leaves)
    for name, e in g.nodes.items():
        values[name] = override[name] if name in override else evaluate(e, values, g.dims)
    return float(values[g.loss])


def _near_a_kink(g, values) -> bool:
    for e in g.nodes.values():
        for n in e.walk():
            if n.op in KINK_OPS:
                arg = np.asarray(evaluate(n.args[0], values, g.dims), dtype=float)
                if np.any(np.abs(arg) < 1e-3):
                    return True
    return False


def vectors_away_from_kinks(g, d, start_seed=0):
    for seed in range(start_seed, start_seed + 50):
        doc = vectors(g, d, seed)
        leaves = {n: (np.int64(v) if g.kind(n) == "class" else np.asarray(v, dtype=float))
                  for n, v in doc["leaves"].items()}
        values = {**leaves, **forward_values(g, leaves)}
        if not _near_a_kink(g, values):
            return doc, leaves, values
    raise AssertionError("no point away from the kinks")


# ====================================================================== vectors vs finite differences
@pytest.mark.parametrize("path", problem_params())
def test_vectors_gradients_match_central_differences(path):
    _, g, d = loaded(path)
    doc, leaves, values = vectors_away_from_kinks(g, d)
    h = 1e-6
    assert doc["loss"] == pytest.approx(float(values[g.loss]), rel=1e-12, abs=1e-12)
    for name in g.names:
        if name == g.loss or (name in g.leaves and _discrete(g, name)):
            continue
        got = np.asarray(doc["gradients"][name], dtype=float)
        assert got.shape == _shape(g, name), name
        fd = np.zeros(got.shape)
        base = np.asarray(values[name], dtype=float)
        for idx in np.ndindex(*got.shape):
            up, down = base.copy(), base.copy()
            up[idx] += h
            down[idx] -= h
            if name in g.leaves:
                lu = loss_with(g, {**leaves, name: up})
                ld = loss_with(g, {**leaves, name: down})
            else:
                fixed = {n: values[n] for n in list(g.nodes)[:list(g.nodes).index(name)]}
                lu = loss_with(g, leaves, {**fixed, name: up})
                ld = loss_with(g, leaves, {**fixed, name: down})
            fd[idx] = (lu - ld) / (2 * h)
        scale = max(1.0, float(np.max(np.abs(got))) if got.size else 1.0)
        assert np.max(np.abs(fd - got)) <= 1e-6 * scale, (name, fd, got)


# ====================================================================== vectors vs PyTorch autodiff
def _torch_eval(g, torch, tensors: dict, e, dims, memo):
    """The value of ``e`` as a float64 torch tensor, built op by op from the expression tree."""
    def shape(x):
        return tuple(concrete(x.shape, dims))

    for n in e.walk():
        if n in memo:
            continue
        a = [memo[x] for x in n.args]
        op = n.op
        if op == "sym":
            v = tensors[n.attr]
        elif op == "num":
            v = torch.tensor(float(n.attr), dtype=torch.float64)
        elif op == "dim":
            v = torch.tensor(float(dims[n.attr]), dtype=torch.float64)
        elif op == "ones":
            v = torch.ones(shape(n), dtype=torch.float64)
        elif op == "eye":
            v = torch.eye(shape(n)[0], dtype=torch.float64)
        elif op in ("add", "sub", "mul", "div", "pow"):
            f = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow}[op]
            v = f(a[0], a[1])
        elif op == "neg":
            v = -a[0]
        elif op in ("exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu"):
            v = getattr(torch, op)(a[0])
        elif op == "softplus":
            v = torch.nn.functional.softplus(a[0])
        elif op == "sigmoid_prime":
            v = torch.sigmoid(a[0]) * (1 - torch.sigmoid(a[0]))
        elif op == "tanh_prime":
            v = 1 - torch.tanh(a[0]) ** 2
        elif op == "relu_prime":
            v = (a[0] > 0).to(torch.float64)
        elif op == "softmax":
            v = torch.softmax(a[0], dim=0)
        elif op == "log_softmax":
            v = torch.log_softmax(a[0], dim=0)
        elif op == "matmul":
            x, y = a
            x2 = x.reshape(-1, 1) if x.dim() == 1 else x
            y2 = y.reshape(-1, 1) if y.dim() == 1 else y
            v = (x2 @ y2).reshape(shape(n))
        elif op == "T":
            x = a[0]
            v = x.T if x.dim() == 2 and x.shape[0] != 1 else x.reshape(shape(n))
        elif op == "sum":
            v = a[0].sum()
        elif op == "mean":
            v = a[0].mean()
        elif op == "diag":
            v = torch.diag(a[0])
        elif op == "diagonal":
            v = torch.diagonal(a[0]).clone()
        elif op == "index":
            v = a[0][tuple(int(i) for i in a[1:])]
        elif op == "onehot":
            v = torch.zeros(shape(n), dtype=torch.float64)
            v[int(a[0])] = 1.0
        else:
            raise AssertionError(f"no torch mapping for {op}")
        memo[n] = v
    return memo[e]


@pytest.mark.parametrize("path", problem_params())
def test_vectors_gradients_match_pytorch_autodiff(path):
    torch = pytest.importorskip("torch")
    _, g, d = loaded(path)
    doc, leaves, _ = vectors_away_from_kinks(g, d)
    tensors = {}
    for name, v in leaves.items():
        if g.kind(name) == "class":
            tensors[name] = torch.tensor(int(v))
        else:
            tensors[name] = torch.tensor(np.asarray(v, dtype=float), dtype=torch.float64, requires_grad=True)
    memo = {}
    for name, e in g.nodes.items():
        t = _torch_eval(g, torch, tensors, e, g.dims, memo)
        if t.requires_grad:
            t.retain_grad()
        tensors[name] = t
    loss = tensors[g.loss]
    assert float(loss.detach()) == pytest.approx(doc["loss"], rel=1e-12, abs=1e-12)
    loss.backward()
    for name in g.names:
        if name == g.loss or g.kind(name) == "class":
            continue
        t = tensors[name]
        ref = np.zeros(t.shape) if t.grad is None else t.grad.detach().numpy()
        got = np.asarray(doc["gradients"][name], dtype=float)
        assert got.shape == ref.shape, name
        scale = max(1.0, float(np.max(np.abs(ref))))
        assert np.max(np.abs(got - ref)) <= 1e-9 * scale, (name, got, ref)


# ====================================================================== the vectors document
@pytest.mark.parametrize("path", problem_params())
def test_vectors_document_shapes(path):
    _, g, d = loaded(path)
    doc = vectors(g, d, seed=3)
    assert doc["seed"] == 3 and doc["id"] == g.problem.id and doc["dims"] == g.dims
    assert set(doc["leaves"]) == set(g.leaves)
    assert set(doc["nodes"]) == set(g.nodes) - {g.loss}
    assert isinstance(doc["loss"], float) and np.isfinite(doc["loss"])
    for name, v in doc["leaves"].items():
        if g.kind(name) == "class":
            assert type(v) is int
        else:
            assert np.shape(v) == _shape(g, name), name
    for name, v in {**doc["nodes"], **doc["gradients"]}.items():
        assert np.shape(v) == _shape(g, name), name
        assert isinstance(v, (float, list)), name
    assert set(doc["gradients"]) == {n for n in g.names if g.kind(n) != "class"}


def test_vectors_are_deterministic_per_seed_and_differ_between_seeds():
    _, g, d = loaded(MLP)
    assert vectors(g, d, 5) == vectors(g, d, 5)
    assert vectors(g, d, 5)["leaves"]["x"] != vectors(g, d, 6)["leaves"]["x"]


def test_vectors_nodes_are_the_forward_pass_by_hand():
    _, g, d = loaded(MLP)
    doc = vectors(g, d, 1)
    L = {n: np.asarray(v, dtype=float) for n, v in doc["leaves"].items()}
    z = L["W"] @ L["x"] + L["b"]
    h = 1 / (1 + np.exp(-z))
    o = L["V"] @ h + L["c"]
    y = np.exp(o) / np.exp(o).sum()
    assert close(doc["nodes"]["z"], z) and close(doc["nodes"]["h"], h)
    assert close(doc["nodes"]["o"], o) and close(doc["nodes"]["y"], y)
    assert doc["loss"] == pytest.approx(-np.sum(L["t"] * np.log(y)), rel=1e-12)
    assert close(doc["gradients"]["o"], y - L["t"])
    assert close(doc["gradients"]["V"], np.outer(y - L["t"], h))
    dz = (L["V"].T @ (y - L["t"])) * h * (1 - h)
    assert close(doc["gradients"]["W"], np.outer(dz, L["x"]))


# ====================================================================== random leaves
def test_random_leaves_respect_kinds_and_domains():
    for path in ALL_PROBLEMS:
        _, g, _ = loaded(path)
        rng = np.random.default_rng(0)
        for _ in range(5):
            leaves = random_leaves(g, rng)
            for name, spec in g.problem.symbols.items():
                v = leaves[name]
                if spec.kind == "class":
                    assert int(v) == v and v >= 0
                else:
                    assert np.shape(v) == _shape(g, name)
                if spec.values:
                    assert set(np.ravel(v)) <= set(spec.values)
                elif spec.kind == "onehot":
                    assert sorted(np.ravel(v)) == [0.0] * (np.size(v) - 1) + [1.0]
                elif spec.kind == "binary":
                    assert set(np.ravel(v)) <= {0.0, 1.0}


def test_class_index_is_below_the_number_of_classes():
    path = ROOT / "problems" / "multinomial_regression_index.yaml"
    _, g, _ = loaded(path)
    rng = np.random.default_rng(0)
    seen = {int(random_leaves(g, rng)["t"]) for _ in range(60)}
    assert seen == set(range(g.dims["C"]))


# ====================================================================== batched evaluation
def _batch(g, d, path_seed, B=6):
    rng = np.random.default_rng(path_seed)
    samples = [random_leaves(g, rng) for _ in range(B)]
    params = [n for n in g.leaves if g.role(n) == "param"]
    for s in samples[1:]:
        for p in params:
            s[p] = samples[0][p]
    data = [n for n in g.leaves if n not in params]
    batch = {n: (np.stack([s[n] for s in samples]) if n in data else samples[0][n]) for n in g.leaves}
    nodes = forward_values(g, batch, batched=set(data))
    return samples, params, data, batch, nodes


@pytest.mark.parametrize("path", problem_params())
def test_batched_program_equals_per_sample_results(path):
    _, g, d = loaded(path)
    samples, params, data, batch, nodes = _batch(g, d, 0)
    names = [n for n in g.names if g.kind(n) != "class"]
    batched = set(data) | {n for n in g.nodes if any(s in data for s in _upstream(g, n))}
    prog = Program({n: d.full[n] for n in names}, g.dims, batch_sum=set(params))
    out = prog.run({**batch, **nodes}, batched)
    per = []
    for s in samples:
        vals = {**s, **forward_values(g, s)}
        per.append(Program({n: d.full[n] for n in names}, g.dims).run(vals))
    for n in names:
        if n in params:
            want = sum(np.broadcast_to(p[n], _shape(g, n)) for p in per)
            if not (_upstream_leaves(d.full[n]) & set(data)):
                continue        # a data-free gradient: the caller scales it (see compile_problem)
            assert close(out[n], want, rtol=1e-10, atol=1e-12), n
        elif n in batched:
            want = np.stack([np.broadcast_to(p[n], _shape(g, n)) for p in per])
            assert close(np.broadcast_to(out[n], want.shape), want, rtol=1e-10, atol=1e-12), n


def _upstream(g, name):
    """Leaves a node depends on."""
    seen, stack = set(), [name]
    while stack:
        n = stack.pop()
        if n in g.leaves:
            seen.add(n)
        elif n in g.nodes:
            stack.extend(m.attr for m in g.nodes[n].walk() if m.op == "sym")
    return seen


def _upstream_leaves(e):
    return {m.attr for m in e.walk() if m.op == "sym"}


def test_batch_sum_uses_the_outer_product_fast_path():
    _, g, d = loaded(MLP)
    samples, params, data, batch, nodes = _batch(g, d, 1, B=7)
    prog = Program({"W": d.full["W"], "V": d.full["V"]}, g.dims, batch_sum={"W", "V"})
    kinds = [s.expr.attr for s in prog.steps if s.expr.op == "batch_sum"]
    assert kinds.count("outer") == 2
    out = prog.run({**batch, **nodes}, set(data) | set(g.nodes))
    X, T = batch["x"], batch["t"]
    Y = nodes["y"]
    H = nodes["h"]
    assert close(out["V"], (Y - T).T @ H)
    dZ = ((Y - T) @ batch["V"]) * H * (1 - H)
    assert close(out["W"], dZ.T @ X)


@pytest.mark.parametrize("ba, bb", [(True, True), (True, False), (False, True)])
def test_outer_product_batch_sum_with_one_side_shared(ba, bb):
    u, v = sym("u", ("N",)), sym("v", ("M",))
    dims = {"N": 2, "M": 3}
    rng = np.random.default_rng(0)
    B = 4
    U = rng.normal(size=(B, 2)) if ba else rng.normal(size=2)
    V = rng.normal(size=(B, 3)) if bb else rng.normal(size=3)
    out = Program({"g": u @ v.T}, dims, batch_sum={"g"}).run({"u": U, "v": V},
                                                              {n for n, b in (("u", ba), ("v", bb)) if b})
    want = sum(np.outer(U[i] if ba else U, V[i] if bb else V) for i in range(B))
    assert close(out["g"], want)


def test_scaled_and_negated_batch_sums():
    u, v, s = sym("u", ("N",)), sym("v", ("M",)), sym("s")
    dims = {"N": 2, "M": 3}
    rng = np.random.default_rng(1)
    U, V = rng.normal(size=(5, 2)), rng.normal(size=(5, 3))
    outs = {"a": num(2) * (u @ v.T), "b": -(u @ v.T), "c": (u @ v.T) / num(4), "d": u * s}
    got = Program(outs, dims, batch_sum=set(outs)).run({"u": U, "v": V, "s": np.float64(3.0)}, {"u", "v"})
    outer = sum(np.outer(U[i], V[i]) for i in range(5))
    assert close(got["a"], 2 * outer) and close(got["b"], -outer) and close(got["c"], outer / 4)
    assert close(got["d"], 3.0 * U.sum(axis=0))


def test_unbatched_outer_product_batch_sum_is_consistent():
    u, v = sym("u", ("N",)), sym("v", ("M",))
    dims = {"N": 2, "M": 3}
    U, V = np.array([1.0, 2.0]), np.array([1.0, 10.0, 100.0])
    summed = Program({"g": u @ v.T}, dims, batch_sum={"g"}).run({"u": U, "v": V}, set())["g"]
    plain_sum = Program({"g": u * num(1)}, {"N": 2}, batch_sum={"g"}).run({"u": U}, set())["g"]
    assert close(plain_sum, U)                      # the 'sum' kind: the value itself
    assert close(summed, np.outer(U, V))


def test_forward_values_batched_matches_per_sample():
    _, g, d = loaded(MLP)
    samples, params, data, batch, nodes = _batch(g, d, 2, B=5)
    for i, s in enumerate(samples):
        one = forward_values(g, s)
        for n in g.nodes:
            assert close(nodes[n][i], one[n]), n


# ====================================================================== constants
RELU_PRIME_CONST = """\
id: relu-prime-const
dims: {D: 3}
symbols:
  x: {shape: [D], role: input}
  w: {shape: [D], role: param}
loss:
  l: sum(w * x) * relu_prime(1)
"""


def test_relu_prime_of_a_constant_evaluates():
    g, d = graph_from_text(RELU_PRIME_CONST)
    assert float(evaluate(make("relu_prime", num(1)), {}, {})) == 1.0
    doc = vectors(g, d, 0)
    assert close(doc["gradients"]["w"], doc["leaves"]["x"])


TWO_BIASES = """\
id: two-biases
dims: {H: 2, K: 3}
symbols:
  a: {shape: [H], role: param}
  b: {shape: [K], role: param}
loss:
  l: sum(a) + 2 * sum(b)
"""


def test_vectors_with_constant_gradients_of_different_sizes():
    g, d = graph_from_text(TWO_BIASES)
    doc = vectors(g, d, 0)
    assert doc["gradients"]["a"] == [1.0, 1.0]
    assert doc["gradients"]["b"] == [2.0, 2.0, 2.0]


def test_program_keeps_atoms_of_different_shapes_apart():
    from derivkit.expr import eye, ones
    out = Program({"a": ones(("H",)), "b": ones(("K",)), "i": eye("H"), "j": eye("K")},
                  {"H": 2, "K": 3}).run({})
    assert np.shape(out["a"]) == (2,) and np.shape(out["b"]) == (3,)
    assert np.shape(out["i"]) == (2, 2) and np.shape(out["j"]) == (3, 3)


# ====================================================================== the executor's plans
@pytest.mark.parametrize("path", problem_params())
def test_plans_free_every_intermediate_once_after_its_last_use(path):
    _, g, d = loaded(path)
    params = {n for n in g.leaves if g.role(n) == "param"}
    names = [n for n in g.names if g.kind(n) != "class"]
    prog = Program({n: d.full[n] for n in names}, g.dims, batch_sum=params & set(names))
    plan = prog.plan(frozenset(n for n in g.leaves if n not in params))
    kept = set(plan.outputs.values()) | {i for i, _ in plan.inputs} | \
        {i for i, v in enumerate(plan.template) if v is not None}
    computed = [i for i, _, _ in plan.calls]
    freed = [j for _, _, free in plan.calls for j in free]
    assert len(freed) == len(set(freed))                     # each once
    assert set(freed) == set(computed) - kept                # every intermediate, nothing kept
    uses = [set(prog.steps[i].args) for i in computed]
    for k, (_, _, free) in enumerate(plan.calls):
        later = set().union(*uses[k + 1:]) if k + 1 < len(uses) else set()
        assert not (set(free) & later)                      # never read after being freed


def test_one_plan_per_batching_and_it_is_reused():
    _, g, d = loaded(MLP)
    prog = Program({"W": d.full["W"]}, g.dims, batch_sum={"W"})
    assert prog.plan({"x", "t"}) is prog.plan(frozenset({"t", "x"}))
    assert prog.plan({"x", "t"}) is not prog.plan(set())


def test_per_sample_and_batched_runs_agree_sample_by_sample():
    """The same Program, run on one sample and on a batch, gives the batch's rows."""
    _, g, d = loaded(MLP)
    samples, params, data, batch, nodes = _batch(g, d, 4, B=5)
    prog = Program({"h": d.full["h"], "z": d.full["z"]}, g.dims)
    batched = prog.run({**batch, **nodes}, set(data) | set(g.nodes))
    for i, s in enumerate(samples):
        one = prog.run({**s, **forward_values(g, s)})
        assert close(batched["h"][i], one["h"]) and close(batched["z"][i], one["z"])
