"""`purpose-dspy edit`: one writing request through the editor, with an optional persistent archive."""

from __future__ import annotations

import json
from typing import Any

import click

from purpose_dspy.cli.options import lm_options, monitor_dir_option
from purpose_dspy.errors import UsageError


@click.command("edit")
@click.argument("request")
@click.option("--archive-dir", default=None, envvar="PURPOSE_DSPY_ARCHIVE", type=click.Path(file_okay=False),
              help="Archive of accepted outputs: similar ones are shown to the draft, and a passing output is "
                   "added [env PURPOSE_DSPY_ARCHIVE; default: no archive].")
@click.option("--program", "program_ref", default=None,
              help="A compiled editor, e.g. compiled/constrained-writing[@v2] [default: the uncompiled editor].")
@click.option("--max-iterations", default=3, show_default=True, type=click.IntRange(1), help="Drafts at most.")
@click.option("--target", default=None, type=click.FloatRange(0, 10), help="Composite score that passes [default: 8].")
@click.option("--no-learn", is_flag=True, help="Read the archive but do not add to it.")
@lm_options(critic=False)
@monitor_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: output, gate, every round, cost.")
def edit_command(request: str, archive_dir: str | None, program_ref: str | None, max_iterations: int,
                 target: float | None, no_learn: bool, model: str | None, api_base: str | None,
                 config_file: str | None, monitor_dir: str | None, as_json: bool) -> None:
    """Write REQUEST through draft -> critique -> refine, scored in Python.

    The constraints REQUEST states in common phrasings ("in exactly 12 words", "between 30 and 80
    words", "3 sentences", "avoid the words 'we' and 'our'", "include the word 'harbor'", "as a
    bulleted list of 3 items", "end with a question") are measured by a program; the LM's critique
    commits to separate features and the rubric composes the deciding score. The loop stops when the
    score reaches the target or after --max-iterations drafts; the best round's text is printed.
    With --monitor-dir D the request is recorded in D's ledger (source edit); a paused D or a spent
    budget of D's limits.toml refuses it before any LM call.

    \b
    Examples:
      purpose-dspy edit "Write a tagline for a bookstore in exactly 12 words. Avoid the words 'we' and 'our'."
      purpose-dspy edit "Describe a lighthouse in 2 sentences." --archive-dir runs/archive --json
    """
    from purpose_dspy.lm import build_role_lms, load_lm_config
    from purpose_dspy.monitor import Monitor
    from purpose_dspy.programs.editor import Editor
    from purpose_dspy.runtime.editing import edit
    from purpose_dspy.writing.archive import Archive
    from purpose_dspy.writing.rubric import Rubric
    from purpose_dspy.writing.tasks import task_from_text

    task = task_from_text(request)
    name, version = "zero-shot", None
    if program_ref:
        from purpose_dspy.artifacts import load

        compiled = load(program_ref)
        if not compiled.is_editor:
            raise UsageError(f"{program_ref} is a compiled agent, not an editor; give a compiled editor")
        editor = compiled.program
        name, version = compiled.manifest.name, f"v{compiled.version}"
    else:
        editor = Editor()
    editor.max_iterations = max_iterations
    if target is not None:
        editor.rubric = Rubric(**{**editor.rubric.model_dump(), "target": target})
    guard = Monitor.open(monitor_dir).guard(name, version=version, source="edit") if monitor_dir else None
    if guard is not None:
        guard.check()  # paused, or a budget spent: nothing is asked of the LM (not even its start-up probe)
    config = load_lm_config(model=model, api_base=api_base, config_file=config_file)
    lm = build_role_lms(config, roles=("editor",))["editor"]
    archive = Archive(archive_dir) if archive_dir else None
    try:
        result = edit(task, lm=lm, editor=editor, archive=archive, learn=not no_learn)
        drift = archive.drift() if archive is not None else None
    finally:
        if archive is not None:
            archive.close()
    if guard is not None:
        _record(guard, result)
    if as_json:
        click.echo(json.dumps({**result.summary(), "constraints": [c.describe() for c in task.constraints],
                               "drift": drift.model_dump(mode="json") if drift else None}))
        return
    _print_result(result, task, archive_dir, drift)


def _record(guard: Any, result: Any) -> None:
    """The request as a task record: success = passed the gate, a step per draft, no Φ."""
    from purpose_dspy.monitor import TaskRecord

    guard.record_task(TaskRecord(
        program=guard.program, version=guard.version, source="edit", task_id=result.task_id, seed=result.seed,
        success=result.passed, steps=len(result.rounds), phi_gain=None, lm_calls=len(result.lm_calls),
        tokens=sum(c.tokens for c in result.lm_calls), seconds=round(result.seconds, 3), stop_reason=None))


def _print_result(result: Any, task: Any, archive_dir: str | None, drift: Any) -> None:
    """The text on stdout; what was measured, each round and the verdict on stderr."""
    click.echo(result.output or "(no text)")
    click.echo("", err=True)
    if task.constraints:
        click.echo("measured constraints: " + " ".join(f"{i + 1}. {c.describe()}" for i, c in enumerate(task.constraints)), err=True)
    else:
        click.echo("no measurable constraint found in the request: only the LM's judgment scores it", err=True)
    for r in result.rounds:
        note = "; ".join(r.measured_failures) or r.critique_error or r.write_error or "all constraints met"
        click.echo(f"  round {r.iteration + 1}: composite {r.composite:>5.2f}/10 (LM's own grade {r.llm_overall or '-'})"
                   f"  {'PASS' if r.passed else 'fail'}  {note[:90]}", err=True)
    verdict = f"archived as {result.archived}" if result.archived else ("not archived" if archive_dir else "no archive")
    click.echo(f"{'passed' if result.passed else 'did not pass'} the gate (target {result.target}); {verdict}; "
               f"{len(result.lm_calls)} LM calls, {result.seconds:.1f}s", err=True)
    if drift is not None and drift.falling:
        click.echo(f"warning: {drift.message}", err=True)
