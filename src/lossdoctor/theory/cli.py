"""``lossdoctor predict``: the mean-field prediction, next to the measurement when data is given."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import click
import torch
from rich.console import Console
from rich.table import Table

from lossdoctor.errors import LossDoctorError
from lossdoctor.fmt import g


@click.command()
@click.argument("target", required=False)
@click.option("--layers", type=int, multiple=True,
              help="Hidden widths: --layers 750 750 750 (default: six 750s).")
@click.argument("more_widths", nargs=-1, type=int, metavar="")
@click.option("--act-func", type=click.Choice(["relu", "tanh", "sigmoid", "gelu", "silu",
                                               "leaky-relu", "elu"]), default="relu",
              show_default=True)
@click.option("--init", default="trunc-normal:0.5", show_default=True)
@click.option("--bias-init", default="trunc-normal:0.5", show_default=True)
@click.option("--dropout", type=float, default=0.5, show_default=True)
@click.option("--no-dropout", is_flag=True)
@click.option("--input-dim", type=click.IntRange(min=1), default=784, show_default=True)
@click.option("--input-mean", type=float, default=0.0, show_default=True)
@click.option("--input-sq", type=float, default=1.0, show_default=True,
              help="Second moment E[x^2] of the input features.")
@click.option("--classes", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--dataset", help="digits | blobs | circles | FILE.npz: measure on its first batch.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Save rms per layer: predicted line, measured points.")
@click.option("--json", "as_json", is_flag=True)
def predict(target: str | None, layers: tuple[int, ...], more_widths: tuple[int, ...],
            act_func: str, init: str, bias_init: str, dropout: float, no_dropout: bool,
            input_dim: int, input_mean: float, input_sq: float, classes: int,
            dataset: str | None, seed: int, plot_path: str | None, as_json: bool) -> None:
    """Predict per-layer signal scale and the first loss from the architecture and its init.

    Either TARGET (FILE.py:FACTORY, measured on its batch too) or the lab MLP flags.

    \b
    Examples:
      lossdoctor predict --input-dim 784 --input-mean -0.082 --input-sq 0.213
      lossdoctor predict --dataset digits --plot rms.png
      lossdoctor predict my_model.py:make --json
    """
    import lossdoctor as ld
    from lossdoctor.factory import load_factory, user_output
    from lossdoctor.lab.datasets import load
    from lossdoctor.lab.mlp import Config, batches, build
    from lossdoctor.report.report import strict

    if target is not None and target.isdigit():  # --layers 750 750: click reads the 2nd as TARGET
        more_widths, target = (int(target), *more_widths), None
    try:
        if more_widths and not layers:
            raise LossDoctorError("widths follow --layers")
        made: dict[str, Any] | None = None
        if target:
            made = load_factory(target)
            model, inputs = made["model"], made["inputs"]
            with user_output():
                pred = ld.predict(model, inputs)
        else:
            cfg = Config(layers=(layers + more_widths) or (750,) * 6, act=act_func, init=init,
                         bias_init=bias_init, dropout=0.0 if no_dropout else dropout, seed=seed)
            if dataset:
                split = load(dataset, seed)
                model = build(cfg, split.x_train.shape[1], split.classes)
                inputs, targets = batches(split, cfg)()
                made = {"model": model, "inputs": inputs, "targets": targets,
                        "loss_fn": torch.nn.CrossEntropyLoss()}
                pred = ld.predict(model, inputs)
            else:
                model = build(cfg, input_dim, classes)
                pred = ld.predict(model, input_stats=(input_dim, input_mean, input_sq),
                                  classes=classes)
        measured = None
        if made is not None:
            torch.manual_seed(seed)
            with user_output():
                measured = ld.diagnose(made["model"], made["inputs"], made["targets"],
                                       made["loss_fn"], verify_steps=0)
        rows: list[dict[str, Any]] = pred.compare(measured) if measured is not None else [
            {"layer": p.name, "op": p.op, "predicted_rms": p.rms, "measured_rms": None,
             "ratio": None, "in_theory": p.in_theory} for p in pred.layers]
        if plot_path:
            from lossdoctor.lab.plot import rms_plot

            rms_plot(plot_path, [r["layer"] for r in rows], [r["predicted_rms"] for r in rows],
                     [r["measured_rms"] for r in rows])
    except LossDoctorError as e:
        click.echo(f"lossdoctor: error: {e}", err=True)
        sys.exit(2)
    if as_json:
        out = pred.to_dict()
        out["rows"] = rows
        if measured is not None:
            out["measured_loss"] = measured.trace.loss.value
        click.echo(json.dumps(strict(out), indent=2, default=lambda v: None, allow_nan=False))
        return
    console = Console(width=100)
    t = Table(title="mean-field prediction per layer", title_justify="left", show_edge=False)
    for col in ("layer", "op", "predicted rms", "measured rms", "pred/meas", "chi"):
        t.add_column(col, justify="left" if col in ("layer", "op") else "right")
    chis = {p.name: p.chi for p in pred.layers}
    for r in rows:
        t.add_row(r["layer"], r["op"], g(r["predicted_rms"]),
                  g(r["measured_rms"]) if r["measured_rms"] is not None else "",
                  g(r["ratio"]) if r["ratio"] is not None else "",
                  g(chis.get(r["layer"])) if chis.get(r["layer"]) is not None else "")
    console.print(t)
    if pred.initial_loss is not None and pred.band is not None and pred.classes:
        line = (f"first loss (softmax cross-entropy, {pred.classes} classes): predicted "
                f"{g(pred.initial_loss)} over draws of this init, 5-95% band [{g(pred.band[0])}, "
                f"{g(pred.band[1])}]")
        if pred.network_loss is not None:
            line += f"; for this network {g(pred.network_loss)}"
        if measured is not None:
            line += f", measured {g(measured.trace.loss.value)}"
        console.print(line + f"; chance ln {pred.classes} = {g(math.log(pred.classes))}")
    if pred.activation:
        console.print(
            f"{pred.activation}: Var(w) = g^2 / fan_in keeps the second moment at this scale with "
            f"g = {g(pred.recommended_gain)}"
            + (f"; chi = 1 (the critical point) at g = {g(pred.critical_gain)}"
               if pred.critical_gain else "; no critical point for g in [0.1, 5] with zero biases"))
    for note in pred.notes:
        console.print(f"note: {note}")
    if plot_path:
        console.print(f"plot saved to {plot_path}")
