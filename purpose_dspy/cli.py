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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the step table.")
def run(env_id: str, seed: int, split: str, params: tuple[str, ...], purpose: str | None, max_steps: int,
        max_lm_calls: int | None, model: str | None, api_base: str | None, actor_lm: str | None,
        critic_lm: str | None, config_file: str | None, no_cache: bool, store: str | None,
        ablate: tuple[str, ...], as_json: bool) -> None:
    """Run one episode: actor -> environment -> purpose critic at every step.

    Prints a row per step (action, Φ before and after, reward, and the environment's own
    progress, which the agent never sees) as it happens, then a summary; with --json, one
    object: success, steps, phi, lm_calls, tokens, seconds.

    \b
    Examples:
      purpose-dspy run --env treasure-maze --seed 3
      purpose-dspy run --env twx:coin --seed 1 --json
      purpose-dspy run --lm openai/gpt-4o-mini --critic-lm openai/gpt-4o
    """
    from purpose_dspy.config import RunConfig
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
        lms = build_role_lms(config)
        env = make_env(env_id)
        try:
            run_config = RunConfig(max_steps=max_steps, max_lm_calls=max_lm_calls,
                                   safeguards=SafeguardConfig().without(*ablate))
            orchestrator = Orchestrator(PurposeAgent(), lms, run_config, phi_store=PhiStore(store) if store else None)
            result = _run_with_progress(orchestrator, env, task, purpose, as_json)
        finally:
            env.close()
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


if __name__ == "__main__":  # pragma: no cover
    main()
