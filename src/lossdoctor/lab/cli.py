"""``lossdoctor lab``: the three stories as commands."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import click
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lossdoctor.errors import LossDoctorError
from lossdoctor.fmt import g
from lossdoctor.report.report import strict


def _fail(e: LossDoctorError) -> None:
    click.echo(f"lossdoctor: error: {e}", err=True)
    sys.exit(2)


def _findings_table(report: Any) -> Table:
    t = Table(title="diagnosis of the first batch", title_justify="left", show_edge=False)
    for col in ("severity", "code", "summary"):
        t.add_column(col, overflow="fold")
    for f in report.findings:
        t.add_row(f.severity, f.code, f.summary)
    if not report.findings:
        t.add_row("", "", "no problems found")
    return t


@click.group()
def lab() -> None:
    """The three stories of lossdoctor's design as seeded experiments."""


@lab.command()
@click.option("--w", "w", type=float, help="Starting weight (with --b: one run instead of four).")
@click.option("--b", "b", type=float, help="Starting bias.")
@click.option("--loss", type=click.Choice(["mse", "ce", "half-ce"]), default="mse",
              show_default=True, help="Cost of a single run (half-ce: -mean(y*log(a))).")
@click.option("--lr", type=float, default=0.15, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Save a PNG of a.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def neuron(w: float | None, b: float | None, loss: str, lr: float, steps: int,
           plot_path: str | None, as_json: bool) -> None:
    """Story 2: one sigmoid neuron, x = 1, target 0, gradient descent.

    With no --w/--b it runs the four classic runs (quadratic and cross-entropy cost, from
    (0.6, 0.9) and from (2, 2)), the hand-written -mean(y*log(a)), and diagnoses two of them.

    \b
    Examples:
      lossdoctor lab neuron --plot neuron.png
      lossdoctor lab neuron --w 2 --b 2 --loss ce --steps 100
    """
    import lossdoctor as ld
    from lossdoctor.lab import neuron as story

    if (w is None) != (b is None):
        _fail(LossDoctorError("give both --w and --b, or neither"))
    if w is not None and b is not None:
        runs = [story.run(loss, w, b, lr, steps)]
    else:
        runs = [story.run(c, w0, b0, lr, steps) for c, w0, b0 in story.CLASSIC]
        runs.append(story.run("half-ce", 2.0, 2.0, lr, steps))
    shown = [s for s in story.SHOWN_STEPS if s <= steps] + ([steps] if steps not in
                                                              story.SHOWN_STEPS else [])
    diagnosed = {}
    if w is None:
        for label, (c, w0, b0) in {"quadratic from (2, 2)": ("mse", 2.0, 2.0),
                                   "-mean(y*log(a)) from (2, 2)": ("half-ce", 2.0, 2.0)}.items():
            diagnosed[label] = ld.diagnose(**story.case(c, w0, b0, lr), verify_steps=0)  # type: ignore[arg-type]
    if plot_path:
        from lossdoctor.lab.plot import line_plot

        try:
            line_plot(plot_path, {r.label: r.outputs for r in runs}, title="one sigmoid neuron, "
                      f"x = 1, y = 0, lr {g(lr)}", xlabel="step", ylabel="output a",
                      log_if_decades=99)
        except LossDoctorError as e:
            _fail(e)
    if as_json:
        click.echo(json.dumps(strict({
            "runs": [{"loss": r.loss, "w": r.w, "b": r.b, "outputs": list(r.outputs),
                      "first_grad": list(r.first_grad)} for r in runs],
            "diagnoses": {k: sorted(v.codes) for k, v in diagnosed.items()},
        }), indent=2, allow_nan=False))
        return
    console = Console(width=100)
    t = Table(title=f"output a of sigmoid(w*1 + b), target 0, lr {g(lr)}", title_justify="left",
              show_edge=False)
    t.add_column("run")
    for s in shown:
        t.add_column(f"a@{s}", justify="right")
    t.add_column("first dC/dw", justify="right")
    for r in runs:
        t.add_row(r.label, *(f"{r.outputs[s]:.3f}" for s in shown), g(r.first_grad[0]))
    console.print(t)
    console.print("quadratic cost: dC/dw = (a - y) s'(z) x, and s'(z) is tiny at z = 4; "
                  "cross-entropy: dC/dw = (a - y) x.")
    for label, report in diagnosed.items():
        console.print(f"\n[bold]diagnosis, {label}[/bold]")
        for f in report.findings:
            console.print(f"  {f.severity} {f.code}: {f.summary}")
    if plot_path:
        console.print(f"\nplot saved to {plot_path}")


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@click.option("--framework", type=click.Choice(["torch", "tf"]), default="torch",
              show_default=True, help="tf: each number also computed by TensorFlow itself.")
def losses(as_json: bool, framework: str) -> None:
    """Story 3: how a loss is put together, each number next to the code that computed it.

    \b
    Example:
      lossdoctor lab losses
      lossdoctor lab losses --framework tf
    """
    from lossdoctor.lab import losses as story
    from lossdoctor.lab.datasets import load
    from lossdoctor.lab.mlp import Config, build

    rows = story.table()
    if framework == "tf":
        try:
            from lossdoctor.tf import lab_losses
        except ImportError as e:
            _fail(LossDoctorError(f"--framework tf needs TensorFlow: pip install "
                                  f"'lossdoctor[tf]' ({e})"))
        tf_rows = lab_losses.table()
        if as_json:
            click.echo(json.dumps({"rows": [r.__dict__ for r in rows],
                                   "tf_rows": [r.__dict__ for r in tf_rows]}, indent=2))
            return
        console = Console(width=140)
        console.print("[bold]set-up[/bold] (PyTorch, then TensorFlow)")
        console.print(story.SETUP)
        console.print(lab_losses.SETUP)
        t = Table(show_edge=False)
        for col in ("what", "code (PyTorch / TensorFlow)", "value"):
            t.add_column(col, overflow="fold")
        for r, tr in zip(rows, tf_rows, strict=True):
            for row in (r, tr):
                value = row.value if isinstance(row.value, list) else g(row.value, 4)
                t.add_row(r.label if row is r else "", row.code, str(value))
        console.print(t)
        return
    try:
        split = load("digits")
    except LossDoctorError as e:
        _fail(e)
    model = build(Config(), split.x_train.shape[1], split.classes)
    l2 = story.l2_both_ways(model, beta=1e-3)
    if as_json:
        click.echo(json.dumps({"rows": [r.__dict__ for r in rows], "l2_lab_mlp": l2}, indent=2))
        return
    console = Console(width=110)
    console.print("[bold]set-up[/bold]")
    console.print(story.SETUP)
    t = Table(show_edge=False)
    for col in ("what", "code", "value"):
        t.add_column(col, overflow="fold")
    for r in rows:
        value = r.value if isinstance(r.value, list) else g(r.value, 4)
        t.add_row(r.label, r.code, str(value))
    console.print(t)
    console.print(
        f"\n[bold]L2 on the lab MLP[/bold] (64 -> [750]*6 -> 10, trunc-normal(0.5), beta = "
        f"{g(l2['beta'])}):\n"
        f"  over every trainable variable: beta * sum(l2_loss(p) for p in model.parameters())"
        f" = {g(l2['all'], 4)}\n"
        f"  per layer, weights only:       beta * sum(l2_loss(p) for p in weights) = "
        f"{g(l2['weights'], 4)}\n"
        f"  share that comes from biases: {g(100 * l2['bias_share'])}%"
    )


@lab.command()
@click.option("--layers", type=int, multiple=True,
              help="Hidden widths: --layers 750 750 750 (default: six 750s).")
@click.argument("more_widths", nargs=-1, type=int, metavar="")
@click.option("--act-func", type=click.Choice(["relu", "tanh", "sigmoid", "gelu", "silu",
                                               "leaky-relu", "elu"]), default="relu",
              show_default=True)
@click.option("--init", default="trunc-normal:0.5", show_default=True,
              help="trunc-normal:STD | normal:STD | he | xavier | lecun | torch-default")
@click.option("--bias-init", default="trunc-normal:0.5", show_default=True,
              help="same forms as --init, plus zeros")
@click.option("--dropout", type=float, default=0.5, show_default=True)
@click.option("--no-dropout", is_flag=True, help="Same as --dropout 0.")
@click.option("--loss", type=click.Choice(["softmax-ce", "mse", "sigmoid-ce"]),
              default="softmax-ce", show_default=True)
@click.option("--l2", type=float, default=0.0, show_default=True, help="L2 coefficient beta.")
@click.option("--l2-on", type=click.Choice(["all", "weights"]), default="all", show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam", "adamw"]),
              default="sgd", show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True)
@click.option("--steps", type=click.IntRange(min=0), default=300, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--dataset", default="digits", show_default=True,
              help="digits | blobs | circles | FILE.npz (arrays X and y)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Save the loss curve.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--framework", type=click.Choice(["torch", "tf"]), default="torch",
              show_default=True, help="tf: built and trained with TensorFlow ops (tf.Module).")
def mlp(layers: tuple[int, ...], more_widths: tuple[int, ...], act_func: str, init: str,
        bias_init: str, dropout: float, no_dropout: bool, loss: str, l2: float, l2_on: str,
        optimizer: str, lr: float, steps: int, batch_size: int, dataset: str, seed: int,
        plot_path: str | None,
        as_json: bool, framework: str) -> None:
    """Story 1: a configurable MLP pipeline, first-batch loss, training and diagnosis.

    \b
    Examples:
      lossdoctor lab mlp --steps 200 --plot loss.png          # the original: loss ~1e6
      lossdoctor lab mlp --layers 750 --steps 200             # one hidden layer
      lossdoctor lab mlp --init he --bias-init zeros --no-dropout --steps 200
      lossdoctor lab mlp --act-func tanh --l2 1e-3 --l2-on weights
    """
    import lossdoctor as ld
    from lossdoctor.lab.datasets import load
    from lossdoctor.lab.mlp import Config, LossFn, batches, build, make_optimizer, parse_init, train

    if more_widths and not layers:
        _fail(LossDoctorError(f"unexpected argument(s) {' '.join(map(str, more_widths))}; "
                              "widths follow --layers"))
    layers = layers + more_widths
    try:
        parse_init(init, False)  # before the data is loaded
        parse_init(bias_init, True)
        cfg = Config(layers=layers or (750,) * 6, act=act_func, init=init, bias_init=bias_init,
                     dropout=0.0 if no_dropout else dropout, loss=loss, l2=l2, l2_on=l2_on,
                     optimizer=optimizer, lr=lr, steps=steps, batch_size=batch_size, seed=seed)
        split = load(dataset, seed)
        first = batches(split, cfg)()
        tf_lab: Any = None
        if framework == "tf":
            try:
                from lossdoctor.tf import lab_mlp as tf_lab
            except ImportError as e:
                raise LossDoctorError(f"--framework tf needs TensorFlow: pip install "
                                      f"'lossdoctor[tf]' ({e})") from e
            tf_lab.check(cfg)
            model: Any = tf_lab.LabMLP(cfg, split.x_train.shape[1], split.classes)
            report = ld.diagnose(model, first[0].numpy(), first[1].numpy(),
                                 tf_lab.loss_fn(cfg, model, split.classes))
            train = tf_lab.train
        else:
            model = build(cfg, split.x_train.shape[1], split.classes)
            torch.manual_seed(cfg.seed)  # the diagnosis sees the dropout masks training will use
            report = ld.diagnose(model, first[0], first[1], LossFn(cfg, model),
                                 make_optimizer(cfg, model), verify_steps=0)
        console = Console(width=100, stderr=as_json)
        with Progress(TextColumn("training"), BarColumn(), TextColumn("{task.completed}/"
                      "{task.total} steps, loss {task.fields[loss]}"), TimeRemainingColumn(),
                      console=console, transient=True, disable=as_json) as progress:
            task = progress.add_task("train", total=cfg.steps, loss="")
            result = train(cfg, split, model, first,
                           lambda s, v: progress.update(task, completed=s + 1, loss=g(v)))
        if plot_path:
            from lossdoctor.lab.plot import line_plot

            line_plot(plot_path, {f"{cfg.act}, {cfg.init}": result.losses},
                      title=f"lab mlp: {len(cfg.layers)} hidden layers on {split.name}",
                      xlabel="step", ylabel="training loss")
    except LossDoctorError as e:
        _fail(e)
    if as_json:
        click.echo(json.dumps(strict({
            "config": cfg.__dict__, "framework": framework, "dataset": split.name, "classes": split.classes,
            "first_data_loss": result.first_data_loss, "first_penalty": result.first_penalty,
            "chance": result.chance, "losses": result.losses,
            "train_accuracy": result.train_accuracy, "test_accuracy": result.test_accuracy,
            "findings": [{"code": f.code, "severity": f.severity, "summary": f.summary}
                         for f in report.findings],
        }), indent=2, default=str, allow_nan=False))
        return
    console.print(f"[bold]lab mlp[/bold] ({'TensorFlow' if framework == 'tf' else 'PyTorch'})  "
                  f"{split.x_train.shape[1]} -> {list(cfg.layers)} -> "
                  f"{split.classes}, {cfg.act}, init {cfg.init}, bias {cfg.bias_init}, dropout "
                  f"{g(cfg.dropout)}, {cfg.loss}, {cfg.optimizer} lr {g(cfg.lr)}, {split.name}")
    console.print(f"first batch loss {g(result.first_data_loss + result.first_penalty)} = data "
                  f"{g(result.first_data_loss)} + L2 {g(result.first_penalty)} "
                  f"(chance ln {split.classes} = {g(result.chance)})")
    bad = next((i for i, v in enumerate(result.losses) if not math.isfinite(v)), None)
    if bad is not None:
        console.print(f"[red]the loss became non-finite at step {bad}[/red] (last finite value "
                      f"{g(max((v for v in result.losses[:bad]), default=math.nan))})")
    if result.losses:
        console.print(f"after {cfg.steps} steps: loss {g(result.losses[-1])}, train accuracy "
                      f"{100 * result.train_accuracy:.1f}%, test accuracy "
                      f"{100 * result.test_accuracy:.1f}%")
    console.print(_findings_table(report))
    if plot_path:
        console.print(f"loss curve saved to {plot_path}")
