"""The judge: verdicts and diagnoses on a corpus of realistic answers, and properties of both."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


from derivkit.grade.judge import VERDICTS, Verdict
from derivkit.printing import to_ascii

from judges import ALL_PROBLEMS, judge_for

MLP = "mlp_sigmoid_softmax_ce"
RELU = "relu_regression"
INDEX = "two_layer_classifier_index"
GRADED = "sigmoid_sigmoid_graded"
SAT = "sigmoid_output_nll_saturation"

# (problem, question, answer, verdict, diagnosis)
CORPUS = [
    # correct, in the notations students use
    (MLP, "dl_do", "y - t", "correct", None),
    (MLP, "dl_do", r"\mathbf{y} - \mathbf{t}", "correct", None),
    (MLP, "dl_dV", r"(\mathbf{y}-\mathbf{t})\mathbf{h}^\top", "correct", None),
    (MLP, "dl_dV", "(y - t) @ h.T", "correct", None),
    (MLP, "dl_dV", r"\frac{\partial l}{\partial o} h^T", "correct", None),
    (MLP, "dl_dV", "dl/do @ h.T", "correct", None),
    (MLP, "dl_dh", r"V^\top (y - t)", "correct", None),
    (MLP, "dl_dz", r"V^\top (y - t) \odot \sigma'(z)", "correct", None),
    (MLP, "dl_dz", r"\frac{\partial l}{\partial h} * h * (1 - h)", "correct", None),
    (MLP, "dl_dz", r"(V^T(\mathbf{y}-\mathbf{t})) \odot \mathbf{h} \odot (1-\mathbf{h})", "correct", None),
    (MLP, "dl_dW", r"\frac{\partial l}{\partial z} x^T", "correct", None),
    (MLP, "dl_dW", r"(V^\top \delta \odot \sigma'(z)) x^T".replace(r"\delta", "(y - t)"), "correct", None),
    (MLP, "dl_db", r"\frac{\partial \ell}{\partial \mathbf{z}}", "correct", None),
    (MLP, "dl_dy", r"-\mathbf{t} \oslash \mathbf{y}", "correct", None),
    (MLP, "dl_dy", r"-\frac{t}{y}", "correct", None),
    (MLP, "dy_do", r"\operatorname{diag}(\mathbf{y}) - \mathbf{y}\mathbf{y}^\top", "correct", None),
    (RELU, "dz2_dz1", r"\operatorname{diag}(\mathbb{1}[z_1 > 0])", "correct", None),
    (RELU, "dz2_dz1", r"\operatorname{diag}(\mathbb{I}(z_1 \ge 0))", "correct", None),
    # seed 004 is in numerator layout: a gradient by a column is a row
    (RELU, "dl_db2", r"2(\hat{y} - y)^T", "correct", None),
    (RELU, "dl_db2", r"2(\hat{y} - y)", "incorrect", "transpose"),
    (RELU, "dyhat_dz3", "I", "correct", None),
    (RELU, "dyhat_dz3", r"2 I", "incorrect", "scale"),
    ("softsign_exp_sqrt_abs", "dq_de",
     r"\operatorname{diag}(\frac{\mathbf{1}}{\sum e}) - \frac{e}{(\sum e)^{2}} \mathbf{1}^{\top}", "correct", None),
    (RELU, "dl_db1", r"2(\hat{y} - y)^T W_2 \operatorname{diag}(\mathbb{1}[z_1 > 0])", "correct", None),
    (RELU, "dl_db1", r"(\mathbb{1}[z_1 > 0] \odot W_2^\top 2(\hat{y} - y))^T", "correct", None),
    (RELU, "dl_db1", r"\mathbb{1}[z_1 > 0] \odot W_2^\top 2(\hat{y} - y)", "incorrect", "transpose"),
    (INDEX, "dl_db", r"\delta_{jt} - p_j", "correct", None),
    (INDEX, "dl_db", r"\begin{cases} 1 - p_j & j = t \\ -p_j & \text{otherwise}\end{cases}", "correct", None),
    (INDEX, "dl_dw", r"(\delta_{jt} - p_j) \mathbf{h}", "correct", None),
    (INDEX, "dh_ds", r"h_k(1 - h_k)", "correct", None),
    (INDEX, "dl_dh", r"\sum_j \frac{\partial \ell}{\partial u_j} w_{jk}", "correct", None),
    # each kind of mistake
    (MLP, "dl_do", "t - y", "incorrect", "sign"),
    (MLP, "dl_dV", "-(y - t) h^T", "incorrect", "sign"),
    (MLP, "dl_dV", "h (y - t)^T", "incorrect", "transpose"),
    (MLP, "dl_dV", "2 (y - t) h^T", "incorrect", "scale"),
    (MLP, "dl_dc", r"\frac{1}{2}(y - t)", "incorrect", "scale"),
    (MLP, "dl_dV", "(y - t) x^T", "incorrect", "shape"),
    (MLP, "dl_dh", "V (y - t)", "unparseable", None),
    (MLP, "dl_dW", r"(V^\top (y - t)) x^T", "incorrect", "missing_factor"),
    (MLP, "dl_dz", r"V^\top (y - t) \odot (1 - h)", "incorrect", "missing_factor"),
    (MLP, "dl_dz", r"V^\top (y - t) \odot \sigma(z)", "incorrect", "activation_for_derivative"),
    (MLP, "dl_dV", "(y - t) z^T", "incorrect", "wrong_node"),
    (MLP, "dl_dV", "(o - t) h^T", "incorrect", "wrong_node"),
    (RELU, "dl_db1", r"2(\hat{y} - y)^T W_2", "incorrect", "missing_factor"),
    (RELU, "dl_dW1", r"x 2(\hat{y} - y)^T W_2", "incorrect", "missing_factor"),
    (INDEX, "dl_db", r"p_j - \delta_{jt}", "incorrect", "sign"),
    (INDEX, "dl_dw", r"2(\delta_{jt} - p_j) \mathbf{h}", "incorrect", "scale"),
    (INDEX, "dl_dw", r"(\delta_{jt} - p_j) \mathbf{s}", "incorrect", "wrong_node"),
    (INDEX, "dl_dw", r"(\delta_{jt} - p_j) \mathbf{x}", "incorrect", "shape"),
    (INDEX, "dl_dv", r"(\sum_j (\delta_{jt} - p_j) w_{jk}) \mathbf{x}", "incorrect", "missing_factor"),
    (INDEX, "dl_dv", r"(\sum_j (\delta_{jt} - p_j) w_{jk}) h_k \mathbf{x}", "incorrect", "activation_for_derivative"),
    (INDEX, "dl_da", r"\sum_j (\delta_{jt} - p_j) w_{jk}", "incorrect", "missing_factor"),
    (INDEX, "dh_ds", r"h_k", "incorrect", "missing_factor"),
    (MLP, "dl_db", "(V.T @ (y - t)) * h * (1 + h)", "incorrect", None),
    (GRADED, "dl_dh", r"W_2^\top \frac{\partial l}{\partial z_2}", "incorrect", "not_allowed"),
    (SAT, "sigmoid_derivative", r"\sigma(s)(1 - \sigma(s))", "correct", None),
    (SAT, "sigmoid_derivative", r"\sigma'(s) = \sigma(s)(1 - \sigma(s))", "correct", None),
    (SAT, "sigmoid_derivative", r"\sigma'(s)", "incorrect", "restates_question"),
    (SAT, "sigmoid_neg", "sigmoid(-s)", "incorrect", "restates_question"),
    (SAT, "lim_zpos_y0", "1", "correct", None),
    (SAT, "lim_zpos_y0", r"\lim_{z \to \infty} \frac{\partial J}{\partial z} = 1", "correct", None),
    (SAT, "lim_zpos_y0", "-1", "incorrect", "sign"),
    (SAT, "lim_zpos_y0", r"\infty", "incorrect", None),
    # not answers
    (MLP, "dl_do", "", "missing", None),
    (MLP, "dl_do", None, "missing", None),
    (MLP, "dl_do", "y -", "unparseable", None),
    (MLP, "dl_do", "q - t", "unparseable", None),
    (MLP, "dl_do", "__import__('os').system('true')", "unparseable", None),
]


@pytest.mark.parametrize("problem,qid,answer,verdict,diagnosis", CORPUS)
def test_corpus(problem, qid, answer, verdict, diagnosis):
    v = judge_for(problem).judge(qid, answer)
    assert (v.verdict, v.diagnosis) == (verdict, diagnosis), v.feedback
    assert v.feedback
    if verdict == "correct":
        assert v.score == v.max_score > 0
    elif diagnosis is None or diagnosis not in judge_for(problem).questions[qid].partial:
        assert v.score == 0


def test_partial_credit_follows_the_question():
    j = judge_for(MLP)
    v = j.judge("dl_dV", "h (y - t)^T")
    assert v.diagnosis == "transpose" and v.score == j.questions["dl_dV"].partial["transpose"] * v.max_score


def test_scale_names_the_factor():
    v = judge_for(MLP).judge("dl_dV", "3 (y - t) h^T")
    assert v.detail["factor"] == 3 and "3 times" in v.feedback


def test_shape_names_both_shapes():
    v = judge_for(MLP).judge("dl_dV", "(y - t) x^T")
    assert v.detail["shapes"] == [["C", "D"], ["C", "H"]]


def test_missing_factor_names_the_local_derivative():
    v = judge_for(MLP).judge("dl_dW", r"(V^\top (y - t)) x^T")
    assert "∂h/∂z" in v.feedback


def test_unparseable_points_at_the_position():
    v = judge_for(MLP).judge("dl_do", "y - t +* 2")
    assert v.verdict == "unparseable" and v.detail["position"] >= 5 and "^" in v.feedback


def test_forbidden_name_is_named():
    v = judge_for(GRADED).judge("dl_dh", r"W_2^\top \frac{\partial l}{\partial z_2}")
    assert "∂" in v.detail["name"] and v.detail["name"] in v.feedback


def test_verdict_json_is_the_contract():
    doc = Verdict("q", "correct", 2, 2, None, "Correct.").to_json()
    assert list(doc) == ["question", "verdict", "score", "max_score", "diagnosis", "feedback"]
    assert doc["verdict"] in VERDICTS


def test_judging_does_not_pile_up_memory():
    j = judge_for(MLP)
    j.prepare()
    sizes = [len(m) for m in j.domain._memos]
    for k in range(50):
        j.judge("dl_dW", f"{k + 2} * ((V.T @ (y - t)) * h * (1 - h)) @ x.T")
    assert [len(m) for m in j.domain._memos] == sizes


def test_relu_points_cover_both_sides_of_the_kink():
    import numpy as np
    j = judge_for(RELU)
    signs = np.stack([np.sign(np.asarray(p.floats["x"], dtype=float)) for p in j.domain.points])
    z1 = np.stack([np.asarray(j.domain.value(j.g.ref("z1"), k), dtype=float) for k in range(len(j.domain.points))])
    assert signs.size and ((z1 > 0).any(axis=0) & (z1 < 0).any(axis=0)).all()


def test_class_targets_take_every_value():
    j = judge_for(INDEX)
    assert {int(p.floats["t"]) for p in j.domain.points} == {0, 1, 2}


# ---------------------------------------------------------------------- properties
MANY = ["mlp_sigmoid_softmax_ce", "relu_regression", "sigmoid_chain_squared_error", "sigmoid_bce_classifier",
        "three_layer_mlp", "tanh_softmax_ce", "mean_bce_sigmoid", "matrix_input_batch"]


def _grad_questions():
    out = []
    for name in MANY:
        j = judge_for(name)
        out += [(name, q.id) for q in j.problem.questions if q.kind == "grad" and not q.index]
    return out

EQUIVALENT = [
    lambda a: f"({a})",
    lambda a: f"({a}) + 0",
    lambda a: f"1 * ({a})",
    lambda a: f"({a}) * 3 / 3",
    lambda a: f"-(-({a}))",
    lambda a: f"({a}) - ({a}) + ({a})",
    lambda a: f"2 * ({a}) - ({a})",
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_grad_questions()), st.lists(st.sampled_from(range(len(EQUIVALENT))), min_size=1, max_size=3))
def test_equivalent_rewrites_stay_correct(case, rewrites):
    name, qid = case
    j = judge_for(name)
    text = to_ascii(j.refs[qid].expr)
    for r in rewrites:
        text = EQUIVALENT[r](text)
    assert j.judge(qid, text).verdict == "correct", text


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_grad_questions()), st.sampled_from([-1, 2, 3, -2, 0.5, 0.25, 10]))
def test_a_factor_is_sign_or_scale(case, k):
    name, qid = case
    j = judge_for(name)
    v = j.judge(qid, f"{k} * ({to_ascii(j.refs[qid].expr)})")
    assert v.verdict == "incorrect"
    if k == -1:
        assert v.diagnosis == "sign"
    else:
        assert v.diagnosis == "scale" and v.detail["factor"] == pytest.approx(k)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([c for c in _grad_questions() if judge_for(c[0]).refs[c[1]].shape]))
def test_a_transpose_is_transpose(case):
    name, qid = case
    j = judge_for(name)
    v = j.judge(qid, f"({to_ascii(j.refs[qid].expr)}).T")
    assert (v.verdict, v.diagnosis) == ("incorrect", "transpose")


def _factors(e):
    """Each (product node, the product without one factor) pair whose shape allows it."""
    from derivkit.grade.mistakes import _droppable
    return [(f, node, keep) for f, (node, keep) in _droppable(e)]


def _droppable_cases():
    return [c for c in _grad_questions() if any(f.op != "num" for f, _, _ in _factors(judge_for(c[0]).refs[c[1]].expr))]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_droppable_cases()), st.data())
def test_a_dropped_factor_is_missing_factor(case, data):
    from derivkit.expr import substitute
    name, qid = case
    j = judge_for(name)
    ref = j.refs[qid].expr
    options = [(f, node, keep) for f, node, keep in _factors(ref) if f.op != "num"]
    f, node, keep = data.draw(st.sampled_from(options))
    text = to_ascii(substitute(ref, {node: keep}))
    v = j.judge(qid, text)
    assert v.verdict == "incorrect", text
    assert v.diagnosis in ("missing_factor", "activation_for_derivative"), (text, v.diagnosis)


# ---------------------------------------------------------------------- solve's own answers
@pytest.mark.slow
@pytest.mark.parametrize("path", ALL_PROBLEMS, ids=lambda p: p.stem)
def test_every_solved_form_is_correct(path):
    """Every expr and latex (and index form) solve gives is judged correct by check (a question
    whose ``allow`` forbids intermediate nodes gets its reference written over the leaves)."""
    j = judge_for(path.stem)
    for qid, ans in j.answers.items():
        forms = [ans.expr, ans.latex] + [ans.extra[k] for k in ("index_expr", "index_latex") if k in ans.extra]
        for text in forms:
            v = j.judge(qid, text)
            assert v.verdict == "correct", (qid, text, v)
