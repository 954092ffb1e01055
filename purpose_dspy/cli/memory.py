"""`purpose-dspy memory list | show | promote | quarantine | retire | rollback`: steer the memory cards."""

from __future__ import annotations

import json
from typing import Any

import click

from purpose_dspy.errors import UsageError


@click.group()
def memory() -> None:
    """Inspect and steer the agent's memory cards (the directory given to `run --memory-dir`).

    Cards are candidates until MemoryCI sees them lift success in later tasks; suspicious ones
    are quarantined and never shown. Every change is logged and can be rolled back.
    """


def _memory_ci(directory: str) -> Any:
    from pathlib import Path

    from purpose_dspy.memory import MemoryCI, MemoryStore

    path = Path(directory) / "memory"
    if not path.is_dir():
        raise UsageError(f"no memory in {directory}: run with --memory-dir {directory} first")
    return MemoryCI(MemoryStore(path))


def _memory_dir_option(command: Any) -> Any:
    return click.option("--dir", "directory", required=True, envvar="PURPOSE_DSPY_MEMORY",
                        type=click.Path(file_okay=False), help="The memory directory [env PURPOSE_DSPY_MEMORY].")(command)


@memory.command("list")
@_memory_dir_option
@click.option("--status", type=click.Choice(["candidate", "promoted", "quarantined", "retired"]), default=None)
@click.option("--kind", default=None,
              type=click.Choice(["strategic", "procedural", "tool", "critic_calibration", "failure_pattern"]))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of cards.")
def memory_list(directory: str, status: str | None, kind: str | None, as_json: bool) -> None:
    """List cards, most trusted first."""
    cards = _memory_ci(directory).store.cards(status=status, kind=kind)
    if as_json:
        click.echo(json.dumps([c.model_dump(mode="json") for c in cards]))
        return
    click.echo(f"{'id':<13}{'kind':<19}{'status':<12}{'trust':>6}{'shown':>6}{'lift':>7}  text")
    for c in cards:
        lift = "-" if c.lift_success is None else f"{c.lift_success:+.2f}"
        label = c.title or (f"{c.action}: " if c.action else "") + c.text
        click.echo(f"{c.id:<13}{c.kind:<19}{c.status:<12}{c.trust:>6.2f}{c.stats.shown_tasks:>6}{lift:>7}  {label[:70]}")


@memory.command("show")
@_memory_dir_option
@click.argument("card_id")
@click.option("--json", "as_json", is_flag=True, help="Print the card and its history as JSON.")
def memory_show(directory: str, card_id: str, as_json: bool) -> None:
    """One card in full, with every status change it went through."""
    ci = _memory_ci(directory)
    card, events = ci.store.get(card_id), ci.store.events(card_id)
    if as_json:
        click.echo(json.dumps({"card": card.model_dump(mode="json"), "events": [e.model_dump(mode="json") for e in events]}))
        return
    click.echo(json.dumps(card.model_dump(mode="json"), indent=2))
    for e in events:
        click.echo(f"{e.time:.0f}  {e.from_status or '(new)'} -> {e.to_status}  {e.reason}")


def _print_events(events: list[Any], as_json: bool) -> None:
    for e in events:
        click.echo(json.dumps(e.model_dump(mode="json")) if as_json else
                   f"{e.card_id}: {e.from_status or '(new)'} -> {e.to_status} ({e.reason})")


def _transition_command(action: str, doc: str, *extra: Any) -> None:
    """`memory promote|quarantine|retire CARD_ID`: a logged, reversible status change."""

    def command(directory: str, card_id: str, reason: str, as_json: bool, **options: Any) -> None:
        events = getattr(_memory_ci(directory), action)(card_id, reason=reason, **options)
        _print_events(events, as_json)

    command.__doc__ = doc
    for option in reversed((
        _memory_dir_option, click.argument("card_id"),
        click.option("--reason", default="by operator", show_default=True, help="Why (kept in the log)."),
        *extra,
        click.option("--json", "as_json", is_flag=True, help="Print the resulting events as JSON lines."),
    )):
        command = option(command)
    memory.command(action)(command)


_transition_command("promote", "Show a card in every context it is in scope for (undo with `memory rollback`).",
                    click.option("--force", is_flag=True, help="Promote even a quarantined card (read it first)."))
_transition_command("quarantine", "Take a card out of every context; kept for inspection (undo with rollback).")
_transition_command("retire", "Take a card out of use for good; kept in the store and the log.")


@memory.command("rollback")
@_memory_dir_option
@click.argument("card_id")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
def memory_rollback(directory: str, card_id: str, as_json: bool) -> None:
    """Undo a card's last status change (and the other half of a supersession)."""
    events = _memory_ci(directory).rollback(card_id)
    _print_events(events, as_json)
