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
def solve(problem, fmt, no_train, curve, plot):
    """Derive, verify and (unless --no-train) train: the full solution of PROBLEM.

    Exit code 0 when everything verified, 1 when a derivation, the gradient
    check or a training expectation failed, 2 on bad input.
    """
    from .solve import solve as run

    if (curve or plot) and no_train:
        raise click.UsageError(f"{'--curve' if curve else '--plot'} needs training; it cannot go with --no-train")
    if curve or plot:              # every output checked before any work starts
        from .problem import load_problem
        from .training import require_matplotlib
        problem = load_problem(problem)
        if not problem.check:
            raise UserError(f"{'--curve' if curve else '--plot'} needs training, and this problem has no "
                            "check: section to train with", Location(str(problem.path)))
        if curve:
            check_output(curve, "curve")
        if plot:
            require_matplotlib()
            check_output(plot, "plot")
    progress = None if fmt == "json" else _progress_bar()
    try:
        sol = run(problem, train=not no_train, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    if sol.train is not None and curve:
        from .training import write_curve
        write_curve(sol.train, curve)
    if sol.train is not None and plot:
        from .training import plot_curve
        plot_curve(sol.train, plot)
    if fmt == "json":
        _emit_json(sol.to_json())
    elif fmt == "latex":
        from .report import latex_fragments
        click.echo(latex_fragments(sol))
    else:
        from .report import text_report
        click.echo(text_report(sol))
    sys.exit(0 if sol.ok else 1)


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
@click.option("-o", "--out", type=click.Path(), help="Write the JSON here instead of stdout.")
def vectors(problem, seed, out):
    """Test vectors: random leaves at dims, and every node, the loss and every gradient there."""
    from .derive import derive
    from .solve import load
    from .vectors import vectors as make_vectors

    if out:
        check_output(out)
    _, g = load(problem)
    _emit_json(make_vectors(g, derive(g), seed), out)


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
