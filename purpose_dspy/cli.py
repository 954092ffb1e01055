"""The `purpose-dspy` command: parses, calls the library, renders. Nothing else lives here."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import click

from purpose_dspy.errors import EnvironmentUnavailableError, LMUnavailableError, PurposeDspyError, UsageError

EXIT_CODES = {UsageError: 2, LMUnavailableError: 3, EnvironmentUnavailableError: 4}


def _fail(exc: PurposeDspyError) -> None:
    """Expected failures: one line on stderr, no traceback, a non-zero exit status."""
    click.echo(f"purpose-dspy: error: {exc}", err=True)
    sys.exit(next((code for kind, code in EXIT_CODES.items() if isinstance(exc, kind)), 1))


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param takes KEY=VALUE, got {pair!r}")
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    return params


def lm_options(command: Any) -> Any:
    """The LM flags every command that calls a model shares."""
    for option in reversed((
        click.option("--lm", "model", default=None,
                     help="Model for every role: local/smollm2-135m (default), local/gemma3-270m, or provider/model."),
        click.option("--api-base", default=None,
                     help="Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1."),
        click.option("--critic-lm", default=None, help="Model for the critic only."),
        click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False),
                     help="TOML file with [lm] and [lm.<role>] tables."),
    )):
        command = option(command)
    return command


def safeguard_options(command: Any) -> Any:
    """Where Φ is stored, and which of the critic's safeguards to switch off (for ablations)."""
    from purpose_dspy.safeguards.config import SAFEGUARDS

    command = click.option(
        "--ablate", multiple=True, type=click.Choice(SAFEGUARDS), metavar="SAFEGUARD",
        help=f"Switch one of the critic's safeguards off (repeatable): {', '.join(SAFEGUARDS)}.",
    )(command)
    return click.option(
        "--store", default=None, envvar="PURPOSE_DSPY_STORE", type=click.Path(file_okay=False),
        help="Directory where Φ of scored states persists, shared by runs and processes "
             "[env PURPOSE_DSPY_STORE; default: memory only, nothing written].",
    )(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="purpose-dspy")
@click.option("-v", "--verbose", count=True, help="Log more to stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Agents that improve at a family of tasks from their own experience, as DSPy programs.

    Every command runs on the embedded local model by default (no key, no network); point a
    role at any OpenAI-compatible server with --lm and --api-base.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@main.command()
@click.option("--env", "env_id", default="treasure-maze", show_default=True,
              help="Environment: treasure-maze, twx:<game> (coin, cookingworld...), scienceworld:<task>.")
@click.option("--seed", default=0, show_default=True, help="Task seed: the k-th task of the split.")
@click.option("--split", type=click.Choice(["train", "dev", "test"]), default="train", show_default=True)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Environment parameter (repeatable).")
@click.option("--purpose", default=None, help="Goal in words; default: the environment's own task description.")
@click.option("--max-steps", default=20, show_default=True, help="Stop after this many steps.")
@click.option("--max-lm-calls", default=None, type=int, help="Stop when this many LM calls are spent.")
@lm_options
@click.option("--actor-lm", default=None, help="Model for the actor only.")
@click.option("--no-cache", is_flag=True, help="Bypass DSPy's response cache.")
@safeguard_options
@click.option("--memory-dir", default=None, envvar="PURPOSE_DSPY_MEMORY", type=click.Path(file_okay=False),
              help="Directory of the agent's memory cards and replay buffer: the run reads them before each "
                   "step and learns into them afterwards [env PURPOSE_DSPY_MEMORY; default: no memory].")
@click.option("--explore", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Per-step chance of an action never tried in this state instead of the actor's choice.")
@click.option("--distill", is_flag=True, help="After the run, let the distiller propose memory cards from it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the step table.")
def run(env_id: str, seed: int, split: str, params: tuple[str, ...], purpose: str | None, max_steps: int,
        max_lm_calls: int | None, model: str | None, api_base: str | None, actor_lm: str | None,
        critic_lm: str | None, config_file: str | None, no_cache: bool, store: str | None,
        ablate: tuple[str, ...], memory_dir: str | None, explore: float, distill: bool, as_json: bool) -> None:
    """Run one episode: actor -> environment -> purpose critic at every step.

    Prints a row per step (action, Φ before and after, reward, and the environment's own
    progress, which the agent never sees) as it happens, then a summary; with --json, one
    object: success, steps, phi, lm_calls, tokens, seconds.

    \b
    Examples:
      purpose-dspy run --env treasure-maze --seed 3
      purpose-dspy run --env twx:coin --seed 1 --json
      purpose-dspy run --lm openai/gpt-4o-mini --critic-lm openai/gpt-4o
      purpose-dspy run --env twx:coin --memory-dir runs/coin --explore 0.3 --distill
    """
    import dspy
    from dspy.utils.exceptions import LMError

    from purpose_dspy.config import RunConfig
    from purpose_dspy.experience import Experience
    from purpose_dspy.programs import Distiller
    from purpose_dspy.environments import make_env
    from purpose_dspy.lm import build_role_lms, load_lm_config
    from purpose_dspy.orchestrator import Orchestrator
    from purpose_dspy.programs import PurposeAgent
    from purpose_dspy.safeguards import PhiStore, SafeguardConfig
    from purpose_dspy.types import Task

    try:
        config = load_lm_config(model=model, api_base=api_base, config_file=config_file,
                                role_models={"actor": actor_lm, "critic": critic_lm},
                                cache=False if no_cache else None)
        task = Task(env_id=env_id, seed=seed, split=split, params=_parse_params(params))
        if distill and not memory_dir:
            raise UsageError("--distill writes memory cards: give --memory-dir DIR too")
        lms = build_role_lms(config)
        env = make_env(env_id)
        experience = Experience(memory_dir) if memory_dir else None
        try:
            run_config = RunConfig(max_steps=max_steps, max_lm_calls=max_lm_calls, explore=explore, seed=seed,
                                   safeguards=SafeguardConfig().without(*ablate))
            orchestrator = Orchestrator(PurposeAgent(), lms, run_config, phi_store=PhiStore(store) if store else None,
                                        experience=experience)
            result = _run_with_progress(orchestrator, env, task, purpose, as_json)
            if experience is not None and distill:
                try:
                    with dspy.context(lm=lms["actor"], adapter=dspy.JSONAdapter()):
                        events = experience.distill([result.trajectory], Distiller(), family=env_id)
                except LMError as exc:
                    raise LMUnavailableError(f"the distiller's LM failed: {str(exc).splitlines()[0]}") from exc
                result.memory.card_events.extend(events)
        finally:
            env.close()
            if experience is not None:
                experience.close()
    except PurposeDspyError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(result.summary()))
    else:
        _print_summary(result.summary())


@main.command("critic-check")
@click.option("--env", "env_id", default="treasure-maze", show_default=True,
              help="Environment the probe transitions come from (it must report progress).")
@click.option("--probes", default=3, show_default=True, help="How many tasks (dev-split seeds 0..N-1) to probe.")
@lm_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def critic_check(env_id: str, probes: int, model: str | None, api_base: str | None, critic_lm: str | None,
                 config_file: str | None, as_json: bool) -> None:
    """Property-test a critic LM: consistency, honesty, resistance to injected text.

    Asks the critic (its response cache off) about probe transitions from ENV and prints, per
    check, the rate for the model alone (raw) and behind the safeguards (guarded). Guarded
    checks marked "must hold" hold for any LM; the exit status is 1 if one does not.
    About 6 LM calls per probe.

    \b
    Examples:
      purpose-dspy critic-check
      purpose-dspy critic-check --lm openai/gpt-4o-mini --env twx:coin --probes 5 --json
    """
    from tqdm import tqdm

    from purpose_dspy.critic_check import check_critic, make_probes
    from purpose_dspy.environments import make_env
    from purpose_dspy.lm import build_role_lms, load_lm_config

    try:
        config = load_lm_config(model=model, api_base=api_base, config_file=config_file,
                                role_models={"critic": critic_lm}, cache=False)
        lm = build_role_lms(config, roles=("critic",))["critic"]
        env = make_env(env_id)
        try:
            chosen = make_probes(env, env_id, probes)
        finally:
            env.close()
        if not chosen:
            raise UsageError(f"{env_id} gave no probe: no single first action raises its progress")
        with tqdm(desc="critic calls", unit="call", file=sys.stderr, disable=None, leave=False) as bar:
            rows = check_critic(lm, chosen, on_call=lambda: bar.update(1))
    except PurposeDspyError as exc:
        _fail(exc)
    ok = all(r["ok"] for r in rows)
    if as_json:
        click.echo(json.dumps({"env": env_id, "critic_lm": lm.model, "probes": len(chosen), "ok": ok, "checks": rows}))
    else:
        fmt = lambda x: "-" if x is None else f"{x:.0%}"  # noqa: E731
        click.echo(f"critic {lm.model} on {len(chosen)} probes from {env_id}")
        click.echo(f"{'check':<12}{'raw':>6}{'guarded':>9}  {'':<10}question")
        for r in rows:
            verdict = ("ok" if r["ok"] else "FAILED") if r["must_hold"] else "(model)"
            click.echo(f"{r['check']:<12}{fmt(r['raw']):>6}{fmt(r['guarded']):>9}  {verdict:<10}{r['question']}")
    sys.exit(0 if ok else 1)


@main.group()
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
    try:
        cards = _memory_ci(directory).store.cards(status=status, kind=kind)
    except PurposeDspyError as exc:
        _fail(exc)
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
    try:
        ci = _memory_ci(directory)
        card, events = ci.store.get(card_id), ci.store.events(card_id)
    except PurposeDspyError as exc:
        _fail(exc)
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
        try:
            events = getattr(_memory_ci(directory), action)(card_id, reason=reason, **options)
        except PurposeDspyError as exc:
            _fail(exc)
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
    try:
        events = _memory_ci(directory).rollback(card_id)
    except PurposeDspyError as exc:
        _fail(exc)
    _print_events(events, as_json)


def _run_with_progress(orchestrator: Any, env: Any, task: Any, purpose: str | None, as_json: bool) -> Any:
    """Run, streaming a table row per step (or a progress bar on stderr with --json)."""
    from tqdm import tqdm

    run = orchestrator.start(env, task, purpose)
    if not as_json:
        click.echo(f"task: {task.task_id}\npurpose: {run.trajectory.purpose}")
        click.echo(f"{'step':>4}  {'action':<28} {'Φ before':>8} {'Φ after':>8} {'reward':>7} {'progress':>8}  note")
    with tqdm(total=orchestrator.config.max_steps, desc="steps", unit="step", file=sys.stderr,
              disable=not as_json or None, leave=False) as bar:
        for t in orchestrator.steps(run, env):
            bar.update(1)
            if not as_json:
                action = t.action.text if t.action else "-"
                note = t.error or ",".join(t.score.flags)
                progress = "-" if t.progress is None else f"{t.progress:.2f}"
                click.echo(f"{t.index + 1:>4}  {action[:28]:<28} {t.score.phi_before:>8.2f} "
                           f"{t.score.phi_after:>8.2f} {t.reward:>7.2f} {progress:>8}  {note[:60]}")
    return orchestrator.result(run)


def _print_summary(s: dict[str, Any]) -> None:
    click.echo(
        f"\n{'success' if s['success'] else 'not solved'} after {s['steps']} steps ({s['stop_reason']}); "
        f"Φ {s['phi']['start']} -> {s['phi']['end']}, reward {s['phi']['total_reward']}; "
        f"{s['lm_calls']} LM calls, {s['tokens']} tokens, {s['seconds']:.1f}s"
    )
    if m := s.get("memory"):
        changes = ", ".join(f"{e['card_id']} -> {e['to_status']}" for e in m["card_events"] if e.get("from_status") != e.get("to_status"))
        click.echo(f"memory: {len(m['cards_shown'])} cards shown, replay advised {m['recalls']} steps "
                   f"({m['demo_steps']} with a remembered step, {m['followed']} followed), {m['explored']} explored, "
                   f"{m['steps_stored']} steps stored" + (f"; cards: {changes}" if changes else ""))


from purpose_dspy import cli_compile  # noqa: E402,F401 - registers compile, eval, demo and artifacts on `main`
from purpose_dspy import cli_archive  # noqa: E402,F401 - registers `archive list|show|remove` on `main`
from purpose_dspy import cli_edit  # noqa: E402,F401 - registers `edit` on `main`

if __name__ == "__main__":  # pragma: no cover
    main()
