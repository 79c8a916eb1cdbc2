"""``lossdoctor rules [CODE]``: the rule catalogue on the terminal or as Markdown/JSON."""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import asdict

import click
from rich.console import Console
from rich.table import Table

from lossdoctor.checks.catalog import BY_CODE, RULES, Rule, markdown_table
from lossdoctor.fmt import g
from lossdoctor.thresholds import describe


def _para(text: str) -> str:
    return textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="    ")


def _rule_text(rule: Rule) -> str:
    lines = describe()
    out = [f"{rule.code}  ({'/'.join(rule.severities)}; scope {rule.scope})", rule.title, "",
           "What it measures", _para(rule.measures), "", "Why training suffers", _para(rule.why),
           ""]
    if rule.thresholds:
        out.append("Lines (lossdoctor.Thresholds field = default: meaning; source)")
        for name in rule.thresholds:
            t = lines[name]
            d = t["default"]
            out.append(_para(f"{name} = {d if isinstance(d, int) else g(d)}: {t['doc']}; "
                             f"{t['source']}"))
        out.append("")
    out.append("Evidence")
    out.extend(f"  {k}: {v}" for k, v in rule.evidence.items())
    out += ["", "Fix", _para(rule.fix + (f" (verified on a copy by the '{rule.repair}' repair)"
                                         if rule.repair else "")),
            "", "Example", f"  bad:  {rule.bad}", f"  good: {rule.good}"]
    if rule.references:
        out += ["", "References", *(f"  {r}" for r in rule.references)]
    return "\n".join(out) + "\n"


@click.command()
@click.argument("code", required=False)
@click.option("--markdown", is_flag=True, help="Print the code table as Markdown (the README's).")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue (or one rule) as JSON.")
def rules(code: str | None, markdown: bool, as_json: bool) -> None:
    """List every finding code, or explain one.

    \b
    Examples:
      lossdoctor rules
      lossdoctor rules dead-relu
      lossdoctor rules --markdown
    """
    if code is not None and code not in BY_CODE:
        close = [c for c in BY_CODE if code in c or c in code]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        click.echo(f"lossdoctor: error: unknown code {code!r}{hint}; `lossdoctor rules` lists them",
                   err=True)
        sys.exit(2)
    chosen = [BY_CODE[code]] if code else list(RULES)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in chosen], indent=2))
    elif markdown:
        click.echo(markdown_table())
    elif code:
        click.echo(_rule_text(chosen[0]), nl=False)
    else:
        table = Table(show_edge=False, title="lossdoctor rules (lossdoctor rules CODE for one)",
                      title_justify="left")
        for col in ("code", "severity", "scope", "what it means", "repair"):
            table.add_column(col, overflow="fold")
        for r in chosen:
            table.add_row(r.code, "/".join(r.severities), r.scope, r.title, r.repair or "advice")
        Console(width=110, color_system=None).print(table)
