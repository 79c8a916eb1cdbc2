"""Command line: ``lossdoctor diagnose``.

Exit codes: 0 done, 1 a finding at or above ``--fail-on`` exists, 2 bad input (also usage
errors), 3 an internal error of lossdoctor. Every error is one line on stderr.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from lossdoctor.errors import LossDoctorError
from lossdoctor.factory import exit_call, load_factory, user_output


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _require_one(target: str | None, example: str | None) -> None:
    if (target is None) == (example is None):
        raise LossDoctorError("give either TARGET (FILE.py:FACTORY) or --example NAME")


def _case(target: str | None, example: str | None) -> dict[str, Any]:
    """The case a command works on: TARGET's factory or a built-in example."""
    from lossdoctor.examples import EXAMPLES

    return EXAMPLES[example]() if example else load_factory(target or "")


def _in_user_code(call: Any) -> Any:
    """Run ``call`` (which runs the user's model and loss) with their output kept apart; a
    ``sys.exit`` inside it is a user mistake, not the CLI's exit."""
    try:
        with user_output():
            return call()
    except SystemExit as e:
        raise LossDoctorError(f"the model or loss_fn called {exit_call(e)}") from e


def _source(target: str | None, example: str | None) -> str:
    """What a written script imports its factory from."""
    return f"lossdoctor.examples:{example.replace('-', '_')}" if example else str(target)


def write_fix_script(source: str, report: Any, lines: list[str] | None = None) -> str:
    """A script that rebuilds the case from its factory and applies every verified fix
    (``lines``: the fixes of ``lossdoctor fix``'s rounds instead of the report's)."""
    from lossdoctor.repairs.verify import script_lines

    if lines is None:
        lines = script_lines(report.trace, report.findings)
    if source.startswith("lossdoctor.examples:"):
        module, name = source.split(":")
        load = [f"from {module} import {name} as factory", ""]
    else:
        path_s, _, name = source.rpartition(":")
        path = Path(path_s).resolve()
        load = [
            "import importlib.util",
            "",
            f"_spec = importlib.util.spec_from_file_location({path.stem!r}, {str(path)!r})",
            "_module = importlib.util.module_from_spec(_spec)",
            "_spec.loader.exec_module(_module)",
            f"factory = _module.{name}",
            "",
        ]
    body = lines or ["# no fix was verified: nothing to change"]
    return "\n".join([
        f'"""Verified lossdoctor fixes for {source}: review, diff and adopt."""',
        "",
        *load,
        "import lossdoctor",
        "from lossdoctor.repairs import *  # noqa: F403",
        "",
        "made = factory()",
        'case = Case(made["model"], made["inputs"], made["targets"], made["loss_fn"],',
        '            made.get("optimizer"))',
        *body,
        "",
        'if __name__ == "__main__":',
        "    print(lossdoctor.diagnose(case.model, case.inputs, case.targets, case.loss_fn,",
        "                              case.optimizer))",
        "",
    ])


def one_line(text: str) -> str:
    """A message folded onto one line."""
    return " ".join(str(text).split())


class Main(click.Group):
    """The command group, with lossdoctor's error contract around every command.

    Usage errors (click's) are one line and exit 2, like bad input; any other exception that
    escapes a command is an internal error: one line, exit 3.
    """

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("lossdoctor: error: aborted", err=True)
            sys.exit(2)
        except click.exceptions.NoArgsIsHelpError as e:  # a bare group: its help, not an error
            click.echo(e.format_message())
            sys.exit(0)
        except click.ClickException as e:
            click.echo(f"lossdoctor: error: {one_line(e.format_message())}", err=True)
            sys.exit(2)
        except Exception as e:  # noqa: BLE001 - the contract: one line, exit 3
            click.echo(f"lossdoctor: internal error: {type(e).__name__}: {one_line(str(e))} "
                       "(a bug in lossdoctor: please report it)", err=True)
            sys.exit(3)
        sys.exit(code if isinstance(code, int) else 0)


def check_output_path(path_s: str, option: str) -> None:
    """Refuse an output path that cannot be written, before anything runs."""
    path = Path(path_s)
    if path.is_dir():
        raise LossDoctorError(f"{option} {path_s} is a directory")
    if not path.parent.is_dir():
        raise LossDoctorError(f"{option} {path_s}: no such directory {path.parent}")


def _check_fix_script(fix_script: str, target: str | None, force: bool) -> None:
    """Refuse a --fix-script path before anything runs."""
    path = Path(fix_script)
    if target:
        factory_file = Path(target.rpartition(":")[0] or target)
        if factory_file.exists() and path.resolve() == factory_file.resolve():
            raise LossDoctorError(f"--fix-script {fix_script} is the factory's own file: choose "
                                  "another path")
    if path.is_dir():
        raise LossDoctorError(f"--fix-script {fix_script} is a directory")
    if not path.parent.is_dir():
        raise LossDoctorError(f"--fix-script {fix_script}: no such directory {path.parent}")
    if path.exists() and not force:
        raise LossDoctorError(f"--fix-script {fix_script} exists: pass --force to overwrite it")


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lossdoctor")
def main() -> None:
    """Diagnose why a PyTorch model's loss misbehaves, with numbers, the math and a fix."""


@main.command()
@click.argument("target", required=False)
@click.option("--example", type=click.Choice(["deep-relu", "healthy-mlp", "saturated-neuron",
                                              "half-cross-entropy"]),
              help="Diagnose a built-in example instead of TARGET.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info", "never"]),
              default="never", show_default=True,
              help="Exit with code 1 when a finding of at least this severity exists.")
@click.option("--task", type=click.Choice(["multiclass", "binary", "multilabel", "regression"]),
              help="Override the inferred task.")
@click.option("--verify-steps", type=click.IntRange(min=0), default=20, show_default=True,
              help="Optimizer steps used to verify each mechanical fix on a copy (0: off).")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True),
              help="Seconds the diagnosis may take; verification that does not fit is skipped.")
@click.option("--fix-script", type=click.Path(dir_okay=False),
              help="Write a script that builds TARGET and applies the verified fixes.")
@click.option("--force", is_flag=True, help="Let --fix-script overwrite an existing file.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Also write the report as one self-contained HTML page with plots.")
@click.option("--width", type=click.IntRange(min=40, max=10_000), default=100, show_default=True,
              help="Report width.")
def diagnose(target: str | None, example: str | None, as_json: bool, fail_on: str,
             task: str | None, verify_steps: int, budget: float | None, fix_script: str | None,
             force: bool, html_path: str | None, width: int) -> None:
    """Diagnose one batch.

    TARGET is FILE.py:FACTORY, where FACTORY() returns a dict with model, inputs, targets,
    loss_fn and optionally optimizer and task.

    \b
    Examples:
      lossdoctor diagnose --example deep-relu
      lossdoctor diagnose my_model.py:make --json
      lossdoctor diagnose my_model.py:make --fail-on warning
      lossdoctor diagnose my_model.py:make --fix-script fixed.py
      lossdoctor diagnose my_model.py:make --html report.html
    """
    from lossdoctor.diagnose import diagnose as run

    try:
        _require_one(target, example)
        if fix_script:
            _check_fix_script(fix_script, target, force)
        if html_path:
            check_output_path(html_path, "--html")
        made = _case(target, example)
        report = _in_user_code(lambda: run(
            made["model"], made["inputs"], made["targets"], made["loss_fn"],
            made.get("optimizer"), task=task or made.get("task"), verify_steps=verify_steps,  # type: ignore[arg-type]
            budget=budget))
        if fix_script:
            Path(fix_script).write_text(write_fix_script(_source(target, example), report))
            click.echo(f"lossdoctor: wrote {fix_script}", err=True)
    except OSError as e:
        click.echo(f"lossdoctor: error: cannot write the fix script: {e}", err=True)
        sys.exit(2)
    except LossDoctorError as e:
        click.echo(f"lossdoctor: error: {e}", err=True)
        sys.exit(2)
    try:
        if html_path:
            report.save_html(html_path, title=f"lossdoctor: {example or target}")
            click.echo(f"lossdoctor: wrote {html_path}", err=True)
    except OSError as e:
        click.echo(f"lossdoctor: error: cannot write the HTML report: {e}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(_jsonable(report.to_dict()), indent=2, allow_nan=False))
    else:
        click.echo(report.render(width=width, color=sys.stdout.isatty()), nl=False)
    if fail_on != "never" and report.has(fail_on):
        sys.exit(1)


@main.command("fix")
@click.argument("target", required=False)
@click.option("--example", type=click.Choice(["deep-relu", "saturated-neuron"]),
              help="Repair a built-in example instead of TARGET.")
@click.option("--steps", type=click.IntRange(min=1), default=100, show_default=True,
              help="Optimizer steps the original and the repaired set-up are trained.")
@click.option("--rounds", type=click.IntRange(min=1, max=10), default=3, show_default=True,
              help="At most this many diagnose-and-repair rounds.")
@click.option("--verify-steps", type=click.IntRange(min=1), default=20, show_default=True,
              help="Optimizer steps used to verify each fix on a copy.")
@click.option("--script", "script", type=click.Path(dir_okay=False),
              help="Write a script that builds TARGET and applies the fixes (as --fix-script).")
@click.option("--force", is_flag=True, help="Let --script overwrite an existing file.")
def fix_command(target: str | None, example: str | None, steps: int, rounds: int,
                verify_steps: int, script: str | None, force: bool) -> None:
    """Repair a copy with every verified fix and train original and repaired.

    TARGET is FILE.py:FACTORY, as for diagnose. Each round diagnoses the copy and applies every
    fix that verified, until nothing is left or no fix verifies; then both set-ups train STEPS
    steps on the batch (same RNG state) and their loss and accuracy are printed.

    \b
    Examples:
      lossdoctor fix --example deep-relu
      lossdoctor fix my_model.py:make --steps 200 --script fixed.py
    """
    from lossdoctor.fix import fix as run

    try:
        _require_one(target, example)
        if script:
            _check_fix_script(script, target, force)
        made = _case(target, example)
        result = _in_user_code(lambda: run(
            made["model"], made["inputs"], made["targets"], made["loss_fn"],
            made.get("optimizer"), steps=steps, rounds=rounds, verify_steps=verify_steps,
            task=made.get("task")))
        if script:
            Path(script).write_text(write_fix_script(_source(target, example), result.final,
                                                     result.script_lines()))
            click.echo(f"lossdoctor: wrote {script}", err=True)
    except OSError as e:
        click.echo(f"lossdoctor: error: cannot write the script: {e}", err=True)
        sys.exit(2)
    except LossDoctorError as e:
        click.echo(f"lossdoctor: error: {e}", err=True)
        sys.exit(2)
    click.echo(result.render(), nl=False)


def _register_lab() -> None:
    from lossdoctor.lab.cli import lab

    main.add_command(lab)


_register_lab()


def _register_predict() -> None:
    from lossdoctor.theory.cli import predict

    main.add_command(predict)


_register_predict()


def _register_rules() -> None:
    from lossdoctor.rules import rules

    main.add_command(rules)


_register_rules()
