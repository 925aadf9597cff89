"""Layouts (numerator / denominator) and answers in a chosen vocabulary (``using:``).

Held-out-style networks are written here (not in problems/), solved in numerator layout
and with restricted vocabularies, and compared with PyTorch autograd (transposed as the
layout says) to 1e-9.
"""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ACTIVATIONS, LOSSES, close, evaluate, leaf_values, mlp_problem_dict
from derivkit.derive import derive
from derivkit.errors import UserError, UserErrors
from derivkit.expr import symbols_in
from derivkit.graph import build_graph
from derivkit.layout import NUMERATOR, absorb, present, shape_in, transpose
from derivkit.problem import parse_problem
from derivkit.questions import answer_all
from derivkit.report import latex_fragments, text_report
from derivkit.solve import solve
from derivkit.verify import Derivative, Verifier, compare
from derivkit.vocabulary import expand


# ====================================================================== problems
def network(depth: int, acts: list[str], loss: str, sizes: list[int], layout: str | None,
            using: bool = True) -> dict:
    """A generated MLP with grad questions for every parameter, plainly and in a vocabulary.

    The vocabulary: the leaves, ∂l/∂(output), and the Jacobian of each activation
    (dA_dZ questions), as a course that asks "in terms of x, W, b, ∂ℓ/∂ŷ, ∂a/∂z" would.
    """
    d = mlp_problem_dict(depth, acts, loss, sizes)
    if layout:
        d["layout"] = layout
    out = "p" if "p" in d["forward"] else f"z{depth}"
    atoms = [{"id": "dl_dout", "kind": "grad", "wrt": out}]
    atoms += [{"id": f"da{i}_dz{i}", "kind": "jacobian", "of": f"a{i}", "wrt": f"z{i}"}
              for i in range(1, depth)]
    if out == "p":
        atoms.append({"id": "dp_dz", "kind": "jacobian", "of": "p", "wrt": f"z{depth}"})
    vocab = list(d["symbols"]) + [a["id"] for a in atoms]
    questions = list(atoms)
    for i in range(1, depth + 1):
        for leaf in (f"W{i}", f"b{i}"):
            questions.append({"id": f"dl_d{leaf}", "kind": "grad", "wrt": leaf, "points": 2,
                              "prompt": f"Give the gradient with respect to {leaf}."})
            if using:
                questions.append({"id": f"dl_d{leaf}_using", "kind": "grad", "wrt": leaf,
                                  "using": vocab})
    questions.append({"id": "dl_dx", "kind": "grad", "wrt": "x"})
    d["questions"] = questions
    return d


def answered(d: dict, points: int = 2):
    g = build_graph(parse_problem(yaml.safe_dump(d, sort_keys=False), "held_out.yaml"))
    der = derive(g)
    return g, der, answer_all(g, der, Verifier(g, points=points))


# ====================================================================== PyTorch
def torch_gradients(d: dict, leaves: dict) -> dict[str, np.ndarray]:
    """∂l/∂leaf by PyTorch autograd (float64) for a network of :func:`mlp_problem_dict`."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "softplus": F.softplus}
    T = {n: torch.tensor(np.asarray(v, dtype=float), dtype=torch.float64, requires_grad=True)
         for n, v in leaves.items() if n != "t" or d["symbols"]["t"]["kind"] != "class"}
    depth = sum(1 for n in d["symbols"] if n.startswith("W"))
    h = T["x"]
    for i in range(1, depth + 1):
        z = T[f"W{i}"] @ h + T[f"b{i}"]
        if i < depth:
            h = act[d["forward"][f"a{i}"].split("(")[0]](z)
    loss = d["loss"]["l"]
    if loss.startswith("0.5"):
        l = 0.5 * ((z - T["y"]) ** 2).sum()
    elif "softmax" in d["forward"].get("p", ""):
        l = -(T["t"] * torch.log(torch.softmax(z, 0))).sum()
    elif "sigmoid" in d["forward"].get("p", ""):
        p = torch.sigmoid(z)
        l = -(T["y"] * torch.log(p) + (1 - T["y"]) * torch.log(1 - p)).mean()
    else:
        l = -torch.log_softmax(z, 0)[int(leaves["t"])]
    l.backward()
    return {n: t.grad.numpy() for n, t in T.items() if t.grad is not None}


def in_layout(value: np.ndarray, layout: str) -> np.ndarray:
    """A gradient of the variable's shape as the layout writes it (a row, or the transpose)."""
    value = np.asarray(value)
    if layout != NUMERATOR or value.ndim == 0:
        return value
    return value.reshape(1, -1) if value.ndim == 1 else value.T


HELD_OUT = [
    (1, [], "squared_error", [3, 2]),
    (2, ["tanh"], "softmax_ce", [3, 4, 3]),
    (2, ["relu"], "mean_bce", [2, 3, 2]),
    (3, ["sigmoid", "softplus"], "class_log_softmax", [2, 3, 2, 3]),
    (3, ["tanh", "relu"], "squared_error", [3, 2, 3, 2]),
]


@pytest.mark.parametrize("depth, acts, loss, sizes", HELD_OUT)
@pytest.mark.parametrize("layout", ["numerator", "denominator"])
def test_held_out_networks_agree_with_autograd(depth, acts, loss, sizes, layout):
    """Every answer, plain and in the vocabulary, is verified and equals autograd (in layout)."""
    d = network(depth, acts, loss, sizes, layout)
    g, _, answers = answered(d)
    assert all(a.verified for a in answers.values()), [q for q, a in answers.items() if not a.verified]
    leaves, values = leaf_values(g, seed=3)
    expected = torch_gradients(d, leaves)
    for qid, a in answers.items():
        if a.kind != "grad" or qid == "dl_dout":
            continue
        wrt = qid[len("dl_d"):].removesuffix("_using")
        want = in_layout(expected[wrt], layout)
        assert list(want.shape) == [g.dims.get(s, s) for s in a.extra["shape"]], qid
        assert close(evaluate(a.reference, values, g.dims), want), qid
        if a.using is not None:
            got = evaluate(expand(a.using, a.atoms), values, g.dims)
            assert close(got, want), qid


@pytest.mark.parametrize("depth, acts, loss, sizes", HELD_OUT)
def test_vocabulary_forms_use_only_the_listed_names(depth, acts, loss, sizes):
    d = network(depth, acts, loss, sizes, "numerator")
    g, _, answers = answered(d, points=1)
    for qid, a in answers.items():
        if not qid.endswith("_using"):
            continue
        allowed = set(next(q["using"] for q in d["questions"] if q["id"] == qid))
        assert symbols_in(a.using) <= allowed, qid
        assert symbols_in(a.using) & set(a.atoms), qid       # written with the named derivatives
        for atom in symbols_in(a.using) & set(a.atoms):
            assert atom in a.expr                           # ASCII: the question id


def test_seed_004_form_is_the_courses_product_of_jacobians():
    """∂ℓ/∂W(1) = x ∂ℓ/∂ŷ ∂ŷ/∂z₃ W(2) ∂z₂/∂z₁ in numerator layout (seed 004, 1.2 (c))."""
    from conftest import ROOT
    sol = solve(ROOT / "problems" / "relu_regression.yaml", train=False)
    a = sol.answers["dl_dW1"]
    assert a.expr == "x @ dl_dyhat @ dyhat_dz3 @ W2 @ dz2_dz1"
    assert a.latex.startswith(r"\boldsymbol{x} \frac{\partial \ell}{\partial \hat{\boldsymbol{y}}}")
    assert a.extra["shape"] == ["D", "H"] and a.verified
    assert sol.answers["dl_dyhat"].extra["shape"] == [1, "K"]


# ====================================================================== the verification is real
def test_a_wrong_layout_is_not_verified():
    """The numerator form is proved only through absorb(): as it stands it has the wrong shape."""
    d = network(2, ["tanh"], "softmax_ce", [3, 2, 3], "numerator", using=False)
    g, der, answers = answered(d, points=1)
    v = Verifier(g, points=1)
    ref = answers["dl_dW1"].reference
    assert compare(absorb(ref, g.shape("W1"), NUMERATOR), Derivative(g.loss, "W1"), v) < 1e-25
    assert compare(ref, Derivative(g.loss, "W1"), v) == float("inf")


def test_a_wrong_atom_value_fails_the_proof():
    """The vocabulary form is proved with its atoms substituted: a wrong atom is caught."""
    d = network(2, ["sigmoid"], "squared_error", [2, 3, 2], "numerator")
    g, der, answers = answered(d, points=1)
    a = answers["dl_dW1_using"]
    v = Verifier(g, points=1)
    good = absorb(expand(a.using, a.atoms), g.shape("W1"), NUMERATOR)
    assert compare(good, Derivative(g.loss, "W1"), v) < 1e-25
    bad_atoms = {**a.atoms, "da1_dz1": 2 * a.atoms["da1_dz1"]}
    bad = absorb(expand(a.using, bad_atoms), g.shape("W1"), NUMERATOR)
    assert compare(bad, Derivative(g.loss, "W1"), v) > 1e-6


# ====================================================================== property: transposes
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(1, 3), acts=st.lists(st.sampled_from(ACTIVATIONS), min_size=2, max_size=2),
       loss=st.sampled_from(LOSSES), sizes=st.lists(st.integers(2, 3), min_size=4, max_size=4))
def test_numerator_answers_are_transposes_of_denominator_answers(depth, acts, loss, sizes):
    num = network(depth, acts[: depth - 1], loss, sizes[: depth + 1], "numerator")
    den = network(depth, acts[: depth - 1], loss, sizes[: depth + 1], "denominator")
    g, _, a_num = answered(num, points=1)
    _, _, a_den = answered(den, points=1)
    _, values = leaf_values(g, seed=1)
    for qid, an in a_num.items():
        if an.kind != "grad":
            continue
        ad = a_den[qid]
        assert an.verified and ad.verified, qid
        vn = np.asarray(evaluate(an.reference, values, g.dims))
        vd = np.asarray(evaluate(ad.reference, values, g.dims))
        assert close(vn, in_layout(vd, NUMERATOR)), qid
        if an.using is not None:
            un = evaluate(expand(an.using, an.atoms), values, g.dims)
            ud = evaluate(expand(ad.using, ad.atoms), values, g.dims)
            assert close(un, in_layout(ud, NUMERATOR)), qid


@settings(max_examples=30, deadline=None)
@given(m=st.sampled_from([(), ("D",), ("H", "D")]))
def test_present_and_absorb_are_inverse(m):
    from derivkit.expr import sym
    e = sym("G", m)
    for layout in ("numerator", "denominator"):
        shown = present(e, m, layout)
        assert shown.shape == shape_in(m, layout)
        assert absorb(shown, m, layout) == e
    assert transpose(transpose(e)) == e


# ====================================================================== scalar by matrix
def test_jacobian_of_the_loss_with_respect_to_a_matrix_is_defined():
    d = network(2, ["relu"], "squared_error", [2, 3, 2], "numerator", using=False)
    d["questions"].append({"id": "J", "kind": "jacobian", "of": "l", "wrt": "W1"})
    g, _, answers = answered(d, points=1)
    assert answers["J"].verified and answers["J"].reference.shape == ("D", "H1")
    _, values = leaf_values(g)
    assert close(evaluate(answers["J"].reference, values, g.dims),
                 evaluate(answers["dl_dW1"].reference, values, g.dims))


# ====================================================================== errors
def _errors(d: dict) -> list[UserError]:
    try:
        answered(d, points=1)
    except UserErrors as exc:
        return list(exc.errors)
    except UserError as exc:
        return [exc]
    return []


def test_an_unknown_name_in_using_is_located():
    d = network(1, [], "squared_error", [2, 2], "numerator", using=False)
    d["questions"].append({"id": "q", "kind": "grad", "wrt": "W1", "using": ["x", "dl_dotu"]})
    text = yaml.safe_dump(d, sort_keys=False)
    errs = _errors(d)
    assert len(errs) == 1 and errs[0].where.line == text.count("\n", 0, text.index("dl_dotu")) + 1


def test_a_vocabulary_that_cannot_express_the_answer_is_a_located_error():
    d = network(2, ["tanh"], "squared_error", [2, 3, 2], "numerator", using=False)
    d["questions"].append({"id": "q", "kind": "grad", "wrt": "W1", "using": ["W2", "dl_dout"]})
    errs = _errors(d)
    assert len(errs) == 1 and errs[0].where.line > 1 and "'x'" in errs[0].message


def test_a_bad_layout_is_located():
    d = network(1, [], "squared_error", [2, 2], None, using=False)
    d["layout"] = "sideways"
    with pytest.raises(UserErrors) as exc:
        parse_problem(yaml.safe_dump(d, sort_keys=False), "f.yaml")
    assert exc.value.errors[0].where.line > 1


# ====================================================================== outputs
def test_every_output_carries_prompts_points_and_left_hand_sides(tmp_path):
    d = network(2, ["tanh"], "softmax_ce", [2, 3, 2], "numerator")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    sol = solve(path, train=False, points=1)
    js = sol.to_json()
    assert js["layout"] == "numerator"
    assert js["questions"]["dl_dW1"]["points"] == 2
    assert js["questions"]["dl_dW1"]["prompt"] == "Give the gradient with respect to W1."
    assert js["questions"]["dl_dW1"]["shape"] == ["D", "H1"]
    assert js["gradients"]["x"]["shape"] == [1, "D"]
    latex = latex_fragments(sol)
    assert r"\frac{\partial l}{\partial W_{1}} &=" in latex or r"\frac{\partial l}{\partial W_1} &=" in latex
    assert "Give the gradient with respect to W1." in latex and "(2 points)" in latex
    text = text_report(sol)
    assert "Give the gradient with respect to W1." in text and "2 points" in text


def test_limits_print_their_substitutions_and_meaning():
    from conftest import ROOT
    sol = solve(ROOT / "problems" / "sigmoid_output_nll_saturation.yaml", train=False)
    limits = [a for a in sol.answers.values() if a.kind == "limit"]
    assert limits
    for a in limits:
        for name, value in a.extra["subs"].items():
            assert f"{name} = {value}" in a.extra["approach"]
        vanishes = a.extra["value"] == 0
        assert ("vanishes" in a.extra["meaning"]) == vanishes
        if a.extra["subs"]:
            assert r"\right|_{" in a.latex
