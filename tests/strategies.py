"""Hypothesis strategies: random small MLP problems and random expression trees over the registry."""
from __future__ import annotations

import yaml
from hypothesis import strategies as st

from derivkit.expr import sym

ACTIVATIONS = ("sigmoid", "tanh", "relu", "softplus")
LOSSES = ("squared_error", "softmax_ce", "mean_bce", "class_log_softmax")


def mlp_problem_dict(depth: int, acts: list[str], loss: str, sizes: list[int]) -> dict:
    """A ``depth``-layer MLP as a problem-file dict: ``sizes`` = [D, H1, ..., C]."""
    dims = {"D": sizes[0], **{f"H{i}": sizes[i] for i in range(1, depth)}, "C": sizes[-1]}
    layer_dims = ["D"] + [f"H{i}" for i in range(1, depth)] + ["C"]
    symbols = {"x": {"shape": ["D"], "role": "input"}}
    if loss == "squared_error":
        symbols["y"] = {"shape": ["C"], "role": "target", "kind": "real"}
    elif loss == "softmax_ce":
        symbols["t"] = {"shape": ["C"], "role": "target", "kind": "onehot"}
    elif loss == "mean_bce":
        symbols["y"] = {"shape": ["C"], "role": "target", "kind": "binary"}
    else:
        symbols["t"] = {"shape": [], "role": "target", "kind": "class"}
    forward = {}
    prev = "x"
    for i in range(1, depth + 1):
        symbols[f"W{i}"] = {"shape": [layer_dims[i], layer_dims[i - 1]], "role": "param"}
        symbols[f"b{i}"] = {"shape": [layer_dims[i]], "role": "param"}
        forward[f"z{i}"] = f"W{i} @ {prev} + b{i}"
        if i < depth:
            forward[f"a{i}"] = f"{acts[i - 1]}(z{i})"
            prev = f"a{i}"
    out = f"z{depth}"
    if loss == "squared_error":
        loss_entry = {"l": f"0.5 * sum(({out} - y)**2)"}
    elif loss == "softmax_ce":
        forward["p"] = f"softmax({out})"
        loss_entry = {"l": "-sum(t * log(p))"}
    elif loss == "mean_bce":
        forward["p"] = f"sigmoid({out})"
        loss_entry = {"l": "-mean(y*log(p) + (1 - y)*log(1 - p))"}
    else:
        loss_entry = {"l": f"-log_softmax({out})[t]"}
    return {"id": "gen-mlp", "title": "generated MLP", "dims": dims, "symbols": symbols,
            "forward": forward, "loss": loss_entry}


@st.composite
def mlp_problems(draw):
    """YAML text of a random small MLP problem (depth 1-3, dims 2-3)."""
    depth = draw(st.integers(1, 3))
    acts = [draw(st.sampled_from(ACTIVATIONS)) for _ in range(depth - 1)]
    loss = draw(st.sampled_from(LOSSES))
    sizes = [draw(st.integers(2, 3)) for _ in range(depth + 1)]
    return yaml.safe_dump(mlp_problem_dict(depth, acts, loss, sizes), sort_keys=False)


def tanh_mlp_text(depth: int, width: int) -> str:
    """A tanh MLP of ``depth`` hidden layers, all ``width`` wide, softmax + cross-entropy (dims D, H, C)."""
    lines = ["id: deep", f"dims: {{D: {width}, H: {width}, C: {width}}}", "symbols:",
             "  x: {shape: [D], role: input}", "  t: {shape: [C], role: target, kind: onehot}"]
    forward, prev, prev_dim = [], "x", "D"
    for i in range(1, depth + 1):
        lines += [f"  W{i}: {{shape: [H, {prev_dim}], role: param}}", f"  b{i}: {{shape: [H], role: param}}"]
        forward += [f"  z{i}: W{i} @ {prev} + b{i}", f"  h{i}: tanh(z{i})"]
        prev, prev_dim = f"h{i}", "H"
    lines += ["  V: {shape: [C, H], role: param}", "forward:", *forward,
              f"  y: softmax(V @ {prev})", "loss:", "  l: -sum(t * log(y))"]
    return "\n".join(lines) + "\n"


_LEAVES = {(): ["s", "r"], ("D",): ["x", "u"], ("H",): ["v"], ("D", "D"): ["M"], ("H", "D"): ["W"]}
_UNARY = ("exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu", "softplus",
          "sigmoid_prime", "tanh_prime", "relu_prime")
_NUMBERS = (1, 2, 3, -1, -2, 0.5, 0.25, 1.5)


def _leaf(draw, shape):
    from derivkit.expr import make, num
    if shape == (1, "D"):
        return make("T", sym(draw(st.sampled_from(_LEAVES[("D",)])), ("D",)))
    if shape == ("D", "H"):
        return make("T", sym("W", ("H", "D")))
    if shape == () and draw(st.booleans()):
        return num(draw(st.sampled_from(NUMBERS)))
    return sym(draw(st.sampled_from(_LEAVES[shape])), shape)


NUMBERS = _NUMBERS


def _expr(draw, shape, depth, numbers):
    from derivkit.expr import make, num
    if depth <= 0 or draw(st.integers(0, 4)) == 0:
        if shape == () and draw(st.booleans()):
            return num(draw(st.sampled_from(numbers)))
        return _leaf(draw, shape)
    kinds = ["binary", "binary", "scalar_binary", "unary", "neg", "pow", "transpose"]
    if shape == ():
        kinds += ["reduce", "dot", "index"]
    if shape == ("D",):
        kinds += ["softmax", "matvec", "diag_matvec"]
    if shape == ("H",):
        kinds += ["Wx"]
    if shape == ("D", "D"):
        kinds += ["outer", "diag", "matmat"]
    kind = draw(st.sampled_from(kinds))
    sub = lambda s: _expr(draw, s, depth - 1, numbers)  # noqa: E731
    if kind == "binary":
        op = draw(st.sampled_from(["add", "sub", "mul", "div"]))
        return make(op, sub(shape), sub(shape))
    if kind == "scalar_binary":
        op = draw(st.sampled_from(["add", "sub", "mul", "div"]))
        a, b = sub(shape), sub(())
        return make(op, a, b) if draw(st.booleans()) else make(op, b, a)
    if kind == "unary":
        return make(draw(st.sampled_from(_UNARY)), sub(shape))
    if kind == "neg":
        return make("neg", sub(shape))
    if kind == "pow":
        return make("pow", sub(shape), num(draw(st.sampled_from([2, 3, -1, 0.5]))))
    if kind == "transpose":
        if shape == () or shape in (("D", "D"),):
            return make("T", sub(shape))
        if shape == (1, "D"):
            return make("T", sub(("D",)))
        if shape == ("D",):
            return make("T", make("T", sub(shape)))
        return make("T", make("T", sub(shape)))
    if kind == "reduce":
        arg_shape = draw(st.sampled_from([("D",), ("H",), ("D", "D")]))
        return make(draw(st.sampled_from(["sum", "mean"])), sub(arg_shape))
    if kind == "dot":
        return make("matmul", make("T", sub(("D",))), sub(("D",)))
    if kind == "index":
        return make("index", sub(("D",)), num(draw(st.integers(0, 2))))
    if kind == "softmax":
        return make(draw(st.sampled_from(["softmax", "log_softmax"])), sub(("D",)))
    if kind == "matvec":
        return make("matmul", sub(("D", "D")), sub(("D",)))
    if kind == "diag_matvec":
        return make("matmul", make("diag", sub(("D",))), sub(("D",)))
    if kind == "Wx":
        return make("matmul", sym("W", ("H", "D")), sub(("D",)))
    if kind == "outer":
        return make("matmul", sub(("D",)), make("T", sub(("D",))))
    if kind == "diag":
        return make("diag", sub(("D",)))
    if kind == "matmat":
        return make("matmul", sub(("D", "D")), sub(("D", "D")))
    raise AssertionError(kind)


@st.composite
def expressions(draw, shape=None, depth=3, numbers=_NUMBERS):
    """A random well-shaped expression over the SHAPES leaves (built with ``make``)."""
    if shape is None:
        shape = draw(st.sampled_from([(), ("D",), ("D", "D"), ("H",)]))
    return _expr(draw, shape, depth, numbers)
