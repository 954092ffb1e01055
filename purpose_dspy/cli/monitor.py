"""`purpose-dspy report | monitor | pause | resume | audit verify`: look at a run directory and stop it."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click

from purpose_dspy.errors import StoreCorruptError, UsageError

_DIR = click.argument("run_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
_WINDOW = click.option("--window", default=10, show_default=True, type=click.IntRange(1),
                       help="Tasks of one version in each rolling mean.")


def _open(run_dir: str, *, existing: bool = True) -> Any:
    """The monitor of DIR; a directory that holds no ledger is refused (a typo must not read as an empty run)."""
    from purpose_dspy.monitor import Monitor
    from purpose_dspy.monitor.ledger import FILENAME

    if existing and not (Path(run_dir) / FILENAME).exists():
        raise UsageError(f"{run_dir} holds no {FILENAME}: pass the --monitor-dir (or PURPOSE_DSPY_MONITOR) "
                         "directory of a run, eval or compile")
    return Monitor.open(run_dir)


def _operator() -> str:
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "operator"


@click.command("report")
@_DIR
@click.option("--out", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="Where the HTML page goes.")
@_WINDOW
def report_command(run_dir: str, out: str, window: int) -> None:
    """Write one self-contained HTML page about the run directory DIR.

    Per program: success (rolling), Φ gain, LM calls and tokens per task over time, one colour per
    version, with trigger firings, promotions, rollbacks, pauses and limit stops drawn where they
    happened; critic-environment agreement where the environment reported its progress; the triggers
    firing now and the latest events. Then the latest audit lines and the `audit verify` result. The
    page loads nothing from anywhere (open it offline); the plots need the `plot` extra (matplotlib).

    \b
    Example:
      purpose-dspy report runs/maze --out report.html
    """
    from purpose_dspy.monitor.report import render_report

    with _open(run_dir) as monitor:
        page = render_report(monitor, window=window)
    Path(out).write_text(page, encoding="utf-8")
    click.echo(f"wrote {out} ({len(page) // 1024} KiB)")


@click.command("monitor")
@_DIR
@_WINDOW
@click.option("--json", "as_json", is_flag=True, help="Print every figure (and each task's point) as one JSON object.")
def monitor_command(run_dir: str, window: int, as_json: bool) -> None:
    """Print the report's figures for DIR in the terminal.

    Per program and version: tasks, success (over all and over the last --window tasks), Φ gain, LM
    calls and tokens per task, tokens per success, critic-environment agreement; then the triggers
    firing now, the latest events, the audit check and whether DIR is paused. --json prints every
    figure, each task's point included, as one object (format_version 1)."""
    from purpose_dspy.monitor.report import monitor_figures

    with _open(run_dir) as monitor:
        figures = monitor_figures(monitor, window=window)
    if as_json:
        click.echo(json.dumps(figures))
        return
    for line in _terminal(figures):
        click.echo(line)


def _terminal(f: dict[str, Any]) -> list[str]:
    from purpose_dspy.monitor.report import number, when

    by = f["paused_by"]
    out = [f"{f['run_dir']}: {f['tasks']} tasks, {f['events']} events, "
           + (f"PAUSED ({by['why'] if by else 'no reason recorded'}; purpose-dspy resume DIR)" if f["paused"]
              else "not paused")]
    head = (f"  {'version':<10} {'tasks':>5} {'success':>7} {'last ' + str(f['window']):>7} {'Φ gain':>7} "
            f"{'calls/t':>7} {'tokens/t':>8} {'tok/succ':>8} {'agree':>6}")
    for name, p in f["programs"].items():
        out += [f"\n{name}", head]
        out += [f"  {v:<10} {s['n']:>5} {number(s['success_rate']):>7} {number(s['rolling_success']):>7} "
                f"{number(s['phi_gain']):>7} {number(s['lm_calls_per_task'], 1):>7} {number(s['tokens_per_task'], 0):>8} "
                f"{number(s['tokens_per_success'], 0):>8} {number(s['agreement']):>6}" for v, s in p["versions"].items()]
        out += [f"  FIRING {x['rule']}: {x['reason']}" for x in p["firings"]]
        out += ["  latest events:"] if p["events"] else []
        out += [f"    {when(e['at'])}  {e['kind']:<12} {e['version'] or '-':<5} {e['why']}" for e in p["events"][-5:]]
    a = f["audit"]
    out.append(f"\naudit: {'ok' if a['ok'] else 'BROKEN'}: {a['reason']}")
    return out


@click.command("pause")
@click.argument("run_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--why", required=True, help="Why, in a few words (goes into the audit log).")
@click.option("--who", default=None, help="Who pauses [default: operator:<your user name>].")
def pause_command(run_dir: str, why: str, who: str | None) -> None:
    """The kill switch: every run, eval, compile and improve that monitors DIR stops at its next step.

    Writes DIR/PAUSED and an audit line. Work started later refuses to start until `purpose-dspy
    resume DIR`. DIR may be a fresh directory (pause before anything runs)."""
    with _open(run_dir, existing=False) as monitor:
        monitor.pause(who or _operator(), why)
    click.echo(f"paused {run_dir}: runs and compiles stop at their next step (undo: purpose-dspy resume {run_dir})")


@click.command("resume")
@_DIR
@click.option("--who", default=None, help="Who resumes [default: operator:<your user name>].")
def resume_command(run_dir: str, who: str | None) -> None:
    """Lift the kill switch of DIR (removes DIR/PAUSED, writes an audit line)."""
    with _open(run_dir) as monitor:
        if not monitor.paused():
            click.echo(f"{run_dir} is not paused; nothing to do")
            return
        monitor.resume(who or _operator())
    click.echo(f"resumed {run_dir}")


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log of a run directory."""


@audit_group.command("verify")
@_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the check as one JSON object (exit status as without).")
def audit_verify(run_dir: str, as_json: bool) -> None:
    """Check DIR/audit.jsonl line by line: ok, or the first broken line and why (exit 1).

    Catches a line edited, deleted, inserted, moved or half-written, and a log cut short at its end
    (every line's hash is also anchored in the ledger)."""
    with _open(run_dir) as monitor:
        check = monitor.audit.verify()
    if as_json:
        click.echo(check.model_dump_json())
    if not check.ok:
        raise StoreCorruptError(f"audit log {Path(run_dir) / 'audit.jsonl'} is broken: {check.reason}")
    if not as_json:
        click.echo(f"ok: {check.reason}")
