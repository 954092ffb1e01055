"""`purpose-dspy critic-check`: consistency, honesty and injection checks of a critic LM, raw and guarded."""

from __future__ import annotations

import json
import sys

import click

from purpose_dspy.cli.options import lm_options
from purpose_dspy.errors import UsageError


@click.command("critic-check")
@click.option("--env", "env_id", default="treasure-maze", show_default=True,
              help="Environment the probe transitions come from (it must report progress).")
@click.option("--probes", default=3, show_default=True, help="How many tasks (dev-split seeds 0..N-1) to probe.")
@lm_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def critic_check(env_id: str, probes: int, model: str | None, api_base: str | None, critic_lm: str | None,
                 config_file: str | None, as_json: bool) -> None:
    """Property-test a critic LM: consistency, honesty, resistance to injected text.

    Asks the critic (its response cache off) about probe transitions from ENV and prints, per
    check, the rate for the model alone (raw) and behind the safeguards (guarded), on the
    same answers. Checks marked "must hold" are properties of purpose_dspy.testing (the ones
    a CriticPropertySuite runs in your own pytest suite) and hold for any LM behind the
    safeguards; the exit status is 1 if one does not. About 6 LM calls per probe.

    \b
    Examples:
      purpose-dspy critic-check
      purpose-dspy critic-check --lm openai/gpt-4o-mini --env twx:coin --probes 5 --json
    """
    from tqdm import tqdm

    from purpose_dspy.environments import make_env
    from purpose_dspy.lm import build_role_lms, load_lm_config
    from purpose_dspy.runtime.critic_check import check_critic, make_probes

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
    ok = all(r["ok"] for r in rows)
    if as_json:
        click.echo(json.dumps({"env": env_id, "critic_lm": lm.model, "probes": len(chosen), "ok": ok, "checks": rows}))
    else:
        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.0%}"

        click.echo(f"critic {lm.model} on {len(chosen)} probes from {env_id}")
        click.echo(f"{'check':<12}{'raw':>6}{'guarded':>9}  {'':<10}question")
        for r in rows:
            verdict = ("ok" if r["ok"] else "FAILED") if r["must_hold"] else "(model)"
            click.echo(f"{r['check']:<12}{fmt(r['raw']):>6}{fmt(r['guarded']):>9}  {verdict:<10}{r['question']}")
    sys.exit(0 if ok else 1)
