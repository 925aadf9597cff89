"""The ``derivkit`` command: a thin layer over the Python API.

Each command's docstring is its help.  A mistake the user can cause prints one
line (``file:line:column: message``) and exits 2; a failed verification exits 1.
"""
from __future__ import annotations

import json
import sys

import click

from .errors import Location, UserError, UserErrors
from .outputs import check_output, json_safe, write_atomic


def _fail(exc: UserError) -> None:
    errors = exc.errors if isinstance(exc, UserErrors) else [exc]
    for e in errors:
        click.echo(f"error: {e}" if e.where is None else str(e), err=True)
    sys.exit(2)


def _emit_json(doc: dict, out: str | None = None) -> None:
    text = json.dumps(json_safe(doc), indent=2, ensure_ascii=False)
    if out:
        write_atomic(out, text + "\n")
    else:
        click.echo(text)


class _Group(click.Group):
    def main(self, *args, **kwargs):
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except UserError as exc:
            _fail(exc)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            exc.show()
            sys.exit(2)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


@click.group(cls=_Group)
@click.version_option(package_name="derivkit")
def main() -> None:
    """derivkit: set, solve and check backpropagation homework.

    Write a network and its loss in a YAML problem file; derivkit derives every
    gradient with SymPy, proves the readable matrix forms equal to the ground
    truth, and checks them numerically by training the network.
    """


@main.command()
@click.argument("problem", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "latex"]), default="text",
              help="text for people, json for scripts, latex fragments for documents.")
@click.option("--no-train", is_flag=True, help="Skip the training run of the problem's check: section.")
@click.option("--curve", type=click.Path(), help="Write the training curves to this CSV file.")
@click.option("--plot", type=click.Path(), help="Plot the loss curves to this PNG (needs matplotlib).")
@click.option("--table", type=click.Path(), metavar="FILE.csv|FILE.json",
              help="Write the sweep table (one row per setting, mean and std over repeats).")
@click.option("--plots", type=click.Path(), metavar="DIR",
              help="Write every picture that applies (curves, sweep, fit, hidden units, regions) "
                   "as PNG into DIR (needs matplotlib).")
def solve(problem, fmt, no_train, curve, plot, table, plots):
    """Derive, verify and (unless --no-train) train: the full solution of PROBLEM.

    Exit code 0 when everything verified, 1 when a derivation, the gradient
    check or a training expectation failed, 2 on bad input.
    """
    from .solve import solve as run

    wanted = {option: path for option, path in
              (("curve", curve), ("plot", plot), ("table", table), ("plots", plots)) if path}
    if wanted:                     # every output checked before any work starts
        _check_train_outputs(problem, wanted, no_train)
    progress = None if fmt == "json" else _progress_bar()
    try:
        sol = run(problem, train=not no_train, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    if fmt == "json":
        _emit_json(sol.to_json())
    elif fmt == "latex":
        from .report import latex_fragments
        click.echo(latex_fragments(sol))
    else:
        from .report import text_report
        click.echo(text_report(sol))
    if sol.train is not None:      # after the report, so a failed write loses nothing computed
        from . import training
        for option, path in wanted.items():
            getattr(training, _TRAIN_OUTPUTS[option][1])(sol.train, path)
    sys.exit(0 if sol.ok else 1)


#: solve's training outputs: option -> (needs matplotlib, writer in derivkit.training)
_TRAIN_OUTPUTS = {"curve": (False, "write_curve"), "plot": (True, "plot_curve"),
                  "table": (False, "write_table"), "plots": (True, "write_plots")}


def _check_train_outputs(path: str, wanted: dict[str, str], no_train: bool) -> None:
    """Each --curve/--plot/--table/--plots is usable: training will run, matplotlib is there
    when a picture is asked for, the path can be written."""
    from .outputs import check_output_dir
    from .problem import load_problem
    names = ", ".join(f"--{option}" for option in wanted)
    if no_train:
        raise click.UsageError(f"{names} needs training; it cannot go with --no-train")
    problem = load_problem(path)
    if not problem.check:
        raise UserError(f"{names} needs training, and this problem has no check: section to train with",
                        Location(str(problem.path)))
    for option, target in wanted.items():
        needs_plotting, _ = _TRAIN_OUTPUTS[option]
        if needs_plotting:
            from .training import require_matplotlib
            require_matplotlib()
        (check_output_dir if option == "plots" else check_output)(target, option)


@main.command()
@click.argument("problems", nargs=-1, required=True, type=click.Path())
def validate(problems):
    """Check problem files: structure, names, shapes; every error as file:line:column."""
    from .problem import validate_file

    bad = 0
    for path in problems:
        errors = validate_file(path)
        for e in errors:
            click.echo(str(e) if e.where else f"{path}: {e}")
        if not errors:
            click.echo(f"{path}: ok", err=True)
        bad += bool(errors)
    sys.exit(2 if bad else 0)


@main.command()
@click.argument("problem", type=click.Path())
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="Seed of the random leaf values (0 to 2**63 - 1).")
@click.option("--at", "at", type=click.Path(), metavar="LEAVES.json",
              help="Leaf values to use (the output's \"leaves\" object, all leaves or some); "
                   "the others are drawn from the seed.")
@click.option("-o", "--out", type=click.Path(), help="Write the JSON here instead of stdout.")
def vectors(problem, seed, at, out):
    """Test vectors: random leaves at dims, and every node, the loss and every gradient there."""
    from .derive import derive
    from .solve import load
    from .vectors import read_leaves, vectors as make_vectors

    if out:
        check_output(out)
    _, g = load(problem)
    given = read_leaves(at, g) if at else None
    _emit_json(make_vectors(g, derive(g), seed, given), out)


@main.command()
@click.argument("problem", type=click.Path(dir_okay=False))
@click.option("-o", "--out", type=click.Path(dir_okay=False),
              help="Write the sheet here (default: stdout; with --pdf, PROBLEM's name with .pdf).")
@click.option("--format", "fmt", type=click.Choice(["latex", "markdown"]), default="latex",
              help="latex (the default) or markdown with KaTeX math, for LMS pages.")
@click.option("--pdf", is_flag=True, help="Compile the LaTeX to PDF with latexmk or pdflatex.")
@click.option("--questions-only", is_flag=True, help="The hand-out: prompts and the network, no answers.")
@click.option("--no-train", is_flag=True, help="Skip the training run of the problem's check: section.")
def sheet(problem, out, fmt, pdf, questions_only, no_train):
    """Solution sheet of PROBLEM: every derivation step by step, as LaTeX, PDF or Markdown.

    Exit code 0, or 2 on bad input or when TeX fails (its first error is printed
    and its log kept beside the output).
    """
    from pathlib import Path

    from .sheets import sheet_text
    from .solve import solve as run

    if pdf and fmt != "latex":
        raise click.UsageError("--pdf compiles the LaTeX sheet; it cannot go with --format markdown")
    tex = out if pdf and out and out.endswith(".tex") else None       # -o F.tex --pdf: both F.tex and F.pdf
    if pdf:
        out = out if out and out.endswith(".pdf") else str(Path(out or Path(problem).name).with_suffix(".pdf"))
    if out:
        check_output(out, "--pdf" if pdf else "-o")
    if tex:
        check_output(tex, "-o")
    if pdf:
        from .sheets.compile import engine
        if engine() is None:
            raise UserError("--pdf needs a TeX engine: install latexmk or pdflatex "
                            "(Debian: texlive-latex-extra texlive-pictures latexmk), or write the .tex with -o")
    progress = _progress_bar()
    try:
        sol = run(problem, train=not (no_train or questions_only), progress=progress)
    finally:
        progress.close()
    text = sheet_text(sol, fmt, answers=not questions_only)
    if pdf:
        from .sheets.compile import compile_pdf
        if tex:                    # first, so that a TeX failure leaves the source to look at
            write_atomic(tex, text)
        compile_pdf(text, out)
        click.echo(f"wrote {out}", err=True)
    elif out:
        write_atomic(out, text)
    else:
        click.echo(text, nl=False)


@main.command(context_settings={"ignore_unknown_options": True})   # an answer may start with "-"
@click.argument("problem", type=click.Path())
@click.argument("question_id")
@click.argument("answer")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="text for students, json (contract §4) for scripts.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=5.0, show_default=True,
              help="Wall-clock seconds the answer may take to judge.")
def check(problem, question_id, answer, fmt, timeout):
    """Grade one ANSWER (LaTeX or ASCII) to QUESTION_ID of PROBLEM.

    Exit code 0 correct, 1 not correct (incorrect, unparseable, missing), 2 bad problem or usage.
    """
    from .grade.judge import Judge
    from .grade.runner import judge_one

    judge = Judge(problem)
    if question_id not in judge.refs:
        raise UserError(f"no question '{question_id}' in this problem (questions: {', '.join(judge.refs)})")
    v = judge_one(judge, question_id, answer, timeout)
    if fmt == "json":
        _emit_json(v.to_json())
    else:
        score = f"{v.score:g}/{v.max_score:g}"
        click.echo(f"{v.verdict}{f' ({v.diagnosis})' if v.diagnosis else ''}, {score}: {v.feedback}")
    sys.exit(0 if v.correct else 1)


@main.command()
@click.argument("problem", type=click.Path())
@click.argument("submissions", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "gradescope"]), default="table",
              help="table for the terminal; json (contract §4), csv (a gradebook row per student) or "
                   "gradescope (results.json) on stdout.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write a feedback file per student into this folder.")
@click.option("--feedback", "feedback_fmt", type=click.Choice(["md", "tex", "pdf"]), default="md",
              show_default=True, help="The feedback files' format: Markdown, LaTeX, or PDF (needs a TeX engine).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Parallel worker processes.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=5.0, show_default=True,
              help="Wall-clock seconds each answer may take to judge (then: verdict error).")
def grade(problem, submissions, fmt, out_dir, feedback_fmt, workers, timeout):
    """Grade SUBMISSIONS (YAML/JSON files, folders of them, or one CSV) against PROBLEM.

    Exit code 0 when every submission was graded, 2 on a bad problem or usage.
    """
    from .grade import export, feedback
    from .grade.answers import read_submissions
    from .grade.judge import Judge
    from .grade.runner import grade as run

    if out_dir and feedback_fmt == "pdf":
        from .sheets.compile import engine
        if engine() is None:
            raise UserError("--feedback pdf needs a TeX engine: install latexmk or pdflatex, "
                            "or write LaTeX with --feedback tex")
    judge = Judge(problem)
    subs = read_submissions(list(submissions))
    results = run(judge, subs, workers, timeout)
    qids = list(judge.refs)
    if out_dir:
        prompts = {q.id: q.prompt for q in judge.problem.questions}
        files = feedback.write_feedback(out_dir, results, subs, judge.problem.title or judge.problem.id,
                                        feedback_fmt, prompts)
        for line in files.problems:
            click.echo(f"warning: {line}", err=True)
    if fmt == "json":
        click.echo(export.to_json(judge.problem.id, results), nl=False)
    elif fmt == "csv":
        click.echo(export.to_csv(results, qids), nl=False)
    elif fmt == "gradescope":
        click.echo(export.to_gradescope(results), nl=False)
    else:
        click.echo(export.table(results, qids), nl=False)
    sys.exit(0)


@main.command()
@click.argument("problem", type=click.Path())
@click.option("-o", "--out", type=click.Path(), default="autograder.zip", show_default=True,
              help="Where to write the zip.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=5.0, show_default=True,
              help="Wall-clock seconds each answer may take to judge.")
def autograder(problem, out, timeout):
    """Write a Gradescope autograder zip for PROBLEM (setup.sh, run_autograder, the problem, derivkit's wheel)."""
    from .grade.bundle import build_bundle
    from .grade.judge import Judge

    check_output(out, "autograder bundle")
    Judge(problem)                        # a problem that cannot be graded fails here, not on Gradescope
    click.echo(str(build_bundle(problem, out, timeout)), err=True)


class _Progress:
    """Epoch progress on stderr, only when stderr is a terminal."""

    def __init__(self):
        self.bar = None

    def __call__(self, run: int, epoch: int, loss: float, total: int | None = None) -> None:
        if not sys.stderr.isatty():
            return
        click.echo(f"\rrun {run + 1} epoch {epoch + 1}: loss {loss:.4f}   ", err=True, nl=False)
        self.bar = True

    def close(self) -> None:
        if self.bar:
            click.echo("", err=True)


def _progress_bar():
    return _Progress()


if __name__ == "__main__":   # pragma: no cover
    main()
