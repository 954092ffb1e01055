"""`purpose-dspy archive list | show | remove`: thin commands over the editor's archive (writing/archive.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from purpose_dspy.errors import UsageError


@click.group("archive")
def archive_group() -> None:
    """Inspect the editor's archive of accepted outputs (those whose composite score met the target).

    Later drafts of similar tasks are shown a few of these as examples; remove an entry that should
    not be imitated. Nothing here creates an archive: the editor does, on its first admission.
    """


def _open(directory: str, **config: Any) -> Any:
    """The archive at `directory`, or a UsageError if there is none (never creates one)."""
    from purpose_dspy.writing.archive import Archive, ArchiveConfig

    path = Path(directory)
    if not (path / "cache.db").is_file():
        raise UsageError(f"no archive at {directory}")
    return Archive(path, ArchiveConfig(**config))


def _dir_option(command: Any) -> Any:
    return click.option("--dir", "directory", required=True, envvar="PURPOSE_DSPY_ARCHIVE",
                        type=click.Path(file_okay=False),
                        help="The archive directory [env PURPOSE_DSPY_ARCHIVE].")(command)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{max(seconds, 0):.0f}s"


@archive_group.command("list")
@_dir_option
@click.option("--limit", default=None, type=click.IntRange(1), help="Show only the N newest entries.")
@click.option("--drift-window", default=10, show_default=True, type=click.IntRange(1),
              help="Admissions per window when judging drift (use the editor's setting).")
@click.option("--drift-warn-drop", default=0.5, show_default=True, type=click.FloatRange(0),
              help="Report drift when the latest window's mean score is this much below the earlier windows'.")
@click.option("--json", "as_json", is_flag=True, help='Print {"entries": [...], "drift": {...}} as one JSON object.')
def archive_list(directory: str, limit: int | None, drift_window: int, drift_warn_drop: float, as_json: bool) -> None:
    """List archived outputs, newest first, and say when the archived scores are falling.

    Drift is judged on every admission ever made, evicted or removed ones included.

    \b
    Examples:
      purpose-dspy archive list --dir runs/archive
      purpose-dspy archive list --dir runs/archive --limit 20 --json
      purpose-dspy archive list --dir runs/archive --drift-window 25
    """
    with _open(directory, drift_window=drift_window, drift_warn_drop=drift_warn_drop) as archive:
        entries, drift = archive.entries()[:limit], archive.drift()
    if as_json:
        click.echo(json.dumps({"entries": [e.model_dump(mode="json") for e in entries],
                               "drift": drift.model_dump(mode="json")}))
        return
    now = time.time()
    click.echo(f"{'id':<13}{'score':>6}  {'form':<20}{'age':>5}  output")
    for e in entries:
        opening = " ".join(e.output.split())[:60]
        click.echo(f"{e.id:<13}{e.score:>6.2f}  {e.form[:19]:<20}{_age(now - e.created_ts):>5}  {opening}")
    if drift.falling:
        click.echo(f"drift: {drift.message}")


@archive_group.command("show")
@_dir_option
@click.argument("archived_id")
@click.option("--json", "as_json", is_flag=True, help="Print the entry and its log events as one JSON object.")
def archive_show(directory: str, archived_id: str, as_json: bool) -> None:
    """One archived output in full: task, answer, score, target, features, and its log events.

    \b
    Examples:
      purpose-dspy archive show 3f2a9c01b7de --dir runs/archive
    """
    with _open(directory) as archive:
        entry = archive.get(archived_id)
        events = [e for e in archive.events() if e.id == archived_id]
    record = {"entry": entry.model_dump(mode="json"), "events": [e.model_dump(mode="json") for e in events]}
    click.echo(json.dumps(record) if as_json else json.dumps(record, indent=2, ensure_ascii=False))


@archive_group.command("remove")
@_dir_option
@click.argument("archived_id")
@click.option("--json", "as_json", is_flag=True, help="Print the removed entry as JSON.")
def archive_remove(directory: str, archived_id: str, as_json: bool) -> None:
    """Take one entry out so no draft is shown it again (logged; it still counts in the drift history).

    \b
    Examples:
      purpose-dspy archive remove 3f2a9c01b7de --dir runs/archive
    """
    with _open(directory) as archive:
        entry = archive.remove(archived_id)
    if as_json:
        click.echo(json.dumps(entry.model_dump(mode="json")))
    else:
        click.echo(f"removed {entry.id} ({entry.form}, score {entry.score:.2f}): {' '.join(entry.output.split())[:60]}")
