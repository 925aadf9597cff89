"""The check and grade commands: exit codes, formats, reports."""
from __future__ import annotations

import json

from click.testing import CliRunner

from derivkit.cli import main
from judges import ROOT

MLP = str(ROOT / "problems" / "mlp_sigmoid_softmax_ce.yaml")


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_check_exit_codes():
    assert run("check", MLP, "dl_do", "y - t").exit_code == 0
    assert run("check", MLP, "dl_do", "t - y").exit_code == 1
    assert run("check", MLP, "dl_do", "y -").exit_code == 1
    assert run("check", MLP, "nope", "y").exit_code == 2
    assert run("check", str(ROOT / "no_such.yaml"), "dl_do", "y").exit_code == 2


def test_an_answer_may_start_with_a_minus_sign():
    r = run("check", MLP, "dl_do", "-(t - y)", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["verdict"] == "correct"
    r = run("check", MLP, "dl_do", "-(y - t)")
    assert r.exit_code == 1 and "sign" in r.output


def test_check_json_is_one_verdict():
    r = run("check", MLP, "dl_dV", "h (y - t)^T", "--format", "json")
    doc = json.loads(r.output)
    assert r.exit_code == 1
    assert (doc["verdict"], doc["diagnosis"], doc["score"], doc["max_score"]) == ("incorrect", "transpose", 1, 2)


def _class(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "alice.yaml").write_text('student: alice\nanswers:\n  dl_do: "y - t"\n'
                                         '  dl_dV: "(\\\\mathbf{y}-\\\\mathbf{t})\\\\mathbf{h}^\\\\top"\n')
    (tmp_path / "bob.json").write_text(json.dumps({"student": "bob", "answers": {"dl_do": "t - y"}}))
    (tmp_path / "carol.yaml").write_text("answers: [\n")
    return tmp_path


def test_grade_json(tmp_path):
    r = run("grade", MLP, str(_class(tmp_path)), "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    subs = {s["student"]: s for s in doc["submissions"]}
    assert doc["problem"] == "mlp-sigmoid-softmax-ce"
    assert subs["alice"]["score"] == 4 and subs["alice"]["max_score"] == 15
    assert {a["verdict"] for a in subs["carol"]["answers"]} == {"error"}
    bob = {a["question"]: a for a in subs["bob"]["answers"]}
    assert bob["dl_do"]["diagnosis"] == "sign" and bob["dl_dV"]["verdict"] == "missing"
    assert doc["summary"]["questions"]["dl_do"]["most_common_diagnosis"] == "sign"


def test_grade_csv_gradescope_table_and_feedback(tmp_path):
    subs = _class(tmp_path / "in")
    csv_out = run("grade", MLP, str(subs / "alice.yaml"), "--format", "csv").output.splitlines()
    assert csv_out[0].startswith("student,score,max_score") and csv_out[1].startswith("alice,4,15")
    gs = json.loads(run("grade", MLP, str(subs / "alice.yaml"), "--format", "gradescope").output)
    assert gs["score"] == 4 and {t["status"] for t in gs["tests"]} == {"passed", "failed"}
    r = run("grade", MLP, str(subs), "--out", str(tmp_path / "fb"), "--workers", "2")
    assert r.exit_code == 0 and "alice" in r.output and "most common mistake: sign" in r.output
    assert sorted(p.name for p in (tmp_path / "fb").glob("*.md")) == ["alice.md", "bob.md", "carol.md"]


def test_grade_csv_input(tmp_path):
    path = tmp_path / "class.csv"
    path.write_text("student,dl_do,dl_dV\nbob,y-t,h (y-t)^T\n")
    doc = json.loads(run("grade", MLP, str(path), "--format", "json").output)
    answers = {a["question"]: a for a in doc["submissions"][0]["answers"]}
    assert answers["dl_do"]["verdict"] == "correct" and answers["dl_dV"]["diagnosis"] == "transpose"


def test_grade_missing_submission_is_usage_error():
    assert run("grade", MLP, "/no/such/dir").exit_code == 2
