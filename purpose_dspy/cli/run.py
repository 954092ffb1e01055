"""`purpose-dspy run`: one episode, a row per step as it happens, then a summary."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from purpose_dspy.cli.options import lm_options, monitor_dir_option, parse_params, safeguard_options
from purpose_dspy.errors import UsageError


@click.command()
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
@monitor_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the step table.")
def run(env_id: str, seed: int, split: str, params: tuple[str, ...], purpose: str | None, max_steps: int,
        max_lm_calls: int | None, model: str | None, api_base: str | None, actor_lm: str | None,
        critic_lm: str | None, config_file: str | None, no_cache: bool, store: str | None,
        ablate: tuple[str, ...], memory_dir: str | None, explore: float, distill: bool, monitor_dir: str | None,
        as_json: bool) -> None:
    """Run one episode: actor -> environment -> purpose critic at every step.

    Prints a row per step (action, Φ before and after, reward, and the environment's own
    progress, which the agent never sees) as it happens, then a summary; with --json, one
    object: success, steps, phi, lm_calls, tokens, seconds, and structured_outputs (the mode each
    role's LM runs in; see --structured-outputs). With --monitor-dir D the run is recorded in D's
    ledger and held to D's limits.toml; a limit that stops it (or D paused) ends the command with
    one line and exit status 1, after the summary.

    \b
    Examples:
      purpose-dspy run --env treasure-maze --seed 3
      purpose-dspy run --env twx:coin --seed 1 --json
      purpose-dspy run --lm openai/gpt-4o-mini --critic-lm openai/gpt-4o
      purpose-dspy run --env twx:coin --memory-dir runs/coin --explore 0.3 --distill
    """
    import dspy

    from purpose_dspy.environments import make_env
    from purpose_dspy.experience import Experience
    from purpose_dspy.lm import build_role_lms, load_lm_config
    from purpose_dspy.programs import Distiller, PurposeAgent
    from purpose_dspy.runtime.config import RunConfig
    from purpose_dspy.runtime.orchestrator import Orchestrator
    from purpose_dspy.safeguards import PhiStore, SafeguardConfig
    from purpose_dspy.types import Task

    config = load_lm_config(model=model, api_base=api_base, config_file=config_file,
                            role_models={"actor": actor_lm, "critic": critic_lm},
                            cache=False if no_cache else None)
    task = Task(env_id=env_id, seed=seed, split=split, params=parse_params(params))
    if distill and not memory_dir:
        raise UsageError("--distill writes memory cards: give --memory-dir DIR too")
    guard = _limit_guard(monitor_dir)
    lms = build_role_lms(config)
    env = make_env(env_id)
    experience = Experience(memory_dir) if memory_dir else None
    try:
        run_config = RunConfig(max_steps=max_steps, max_lm_calls=max_lm_calls, explore=explore, seed=seed,
                               safeguards=SafeguardConfig().without(*ablate))
        orchestrator = Orchestrator(PurposeAgent(), lms, run_config, phi_store=PhiStore(store) if store else None,
                                    experience=experience, limit_guard=guard)
        result = _run_with_progress(orchestrator, env, task, purpose, as_json)
        if experience is not None and distill:
            with dspy.context(lm=lms["actor"], adapter=dspy.JSONAdapter()):
                events = experience.distill([result.trajectory], Distiller(), family=env_id)
            result.memory.card_events.extend(events)
    finally:
        env.close()
        if experience is not None:
            experience.close()
    _report(result, lms, as_json, guard)


def _limit_guard(monitor_dir: str | None) -> Any:
    """The monitor's guard of this run (None without --monitor-dir), checked once before any LM is built (a paused
    directory or a spent day budget: not even the start-up probe is sent)."""
    if not monitor_dir:
        return None
    from purpose_dspy.monitor import Monitor

    guard = Monitor.open(monitor_dir).guard("zero-shot", source="run")
    guard.check()
    return guard


def _report(result: Any, lms: Any, as_json: bool, guard: Any) -> None:
    """The summary (one JSON object with --json); then a monitor's stop, as the one-line error it is."""
    from purpose_dspy.lm import structured_outputs_of

    if as_json:
        click.echo(json.dumps({**result.summary(), "structured_outputs": structured_outputs_of(lms)}))
    else:
        _print_summary(result.summary())
    if guard is not None and guard.stopped is not None:
        raise guard.stopped


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
