"""`purpose-dspy improve`: the meta-loop, once, over `purpose_dspy.jobs.improve`."""

from __future__ import annotations

import json
from typing import Any

import click

from purpose_dspy.cli.options import lm_config, lm_options, monitor_dir_option


@click.command("improve")
@click.argument("taskset", type=click.Path(exists=True, dir_okay=False))
@click.option("--program", "program", required=True, type=click.Path(file_okay=False),
              help="The artifact directory to improve, e.g. compiled/treasure-maze (its promoted version is the parent).")
@monitor_dir_option
@click.option("--force", is_flag=True, help="Compile even when no trigger fired.")
@click.option("--require-approval", is_flag=True,
              help="Leave a candidate the gate passed pending: never served until `artifacts approve`.")
@click.option("--budget", "budget", default=None, type=click.IntRange(1), help="LM-call budget of the compile.")
@click.option("--train", "n_train", default=None, type=click.IntRange(1), help="Use only the first N train seeds.")
@click.option("--dev", "n_dev", default=20, show_default=True, type=click.IntRange(1),
              help="Gate on the first N dev seeds (each runs twice; fewer than 4 can never promote).")
@click.option("--seed", default=0, show_default=True, help="Seeds exploration and sampling.")
@click.option("--run-dir", default=".purpose-dspy-runs", show_default=True, type=click.Path(file_okay=False),
              help="The compile's checkpoints.")
@lm_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the firings, the decision, the gate.")
def improve_command(taskset: str, program: str, monitor_dir: str | None, force: bool, require_approval: bool,
                    budget: int | None, n_train: int | None, n_dev: int, seed: int, run_dir: str, model: str | None,
                    api_base: str | None, critic_lm: str | None, config_file: str | None, as_json: bool) -> None:
    """Check the monitor's triggers for PROGRAM and, when one fired (or --force), compile it again.

    The triggers are the rules of D/triggers.toml over the ledger of the run directory D (--monitor-dir
    or PURPOSE_DSPY_MONITOR): e.g. success over the last N tasks below 0.95 x the earlier average. When
    none fired, it says so in one line and exits 0. Otherwise, unless D is paused or its cap on
    self-modifications (D/limits.toml) is reached (a one-line stop, exit 1), it compiles TASKSET from
    PROGRAM's promoted version within --budget LM calls, gates the candidate on the dev seeds against
    it (the same gate as `compile`), and records the compile, the gate's figures, the firing that
    caused it and the outcome in D's ledger and audit log (who: improve). With --require-approval a
    candidate the gate passed stays pending until `purpose-dspy artifacts approve PROGRAM@v<N>` (or
    `reject`); `load` and `eval` serve the promoted version meanwhile.

    \b
    Examples:
      purpose-dspy improve tasksets/treasure-maze.toml --program compiled/treasure-maze --monitor-dir runs/maze
      purpose-dspy improve tasksets/treasure-maze.toml --program compiled/treasure-maze --monitor-dir runs/maze \\
          --force --require-approval --budget 500 --json
    """
    from purpose_dspy.errors import UsageError
    from purpose_dspy.jobs import improve
    from purpose_dspy.monitor import Monitor
    from purpose_dspy.teleprompt import CompileConfig

    if not monitor_dir:
        raise UsageError("improve needs a run directory to read the triggers from: --monitor-dir D (or set "
                         "PURPOSE_DSPY_MONITOR)")
    outcome = improve(taskset, program, monitor=Monitor.open(monitor_dir), force=force,
                      require_approval=require_approval, run_dir=run_dir, train=n_train, dev=n_dev,
                      lm_config=lm_config(model, api_base, critic_lm, config_file),
                      config=CompileConfig(max_lm_calls=budget, seed=seed, progress=True))
    if as_json:
        click.echo(json.dumps(_figures(outcome)))
        return
    click.echo(outcome.reason)


def _figures(outcome: Any) -> dict[str, Any]:
    from purpose_dspy.artifacts.records import gate_figures

    compiled = outcome.compiled
    return {
        "program": outcome.program, "fired": [f.model_dump(mode="json") for f in outcome.firings],
        "forced": outcome.forced, "compiled": compiled is not None, "decision": outcome.decision,
        "reason": outcome.reason, "tasks": outcome.tasks, "rules": outcome.rules,
        **({"path": str(compiled.path), "version": compiled.manifest.version,
            "parent_version": compiled.manifest.parent_version, "gate": gate_figures(compiled.report.gate),
            "lm_calls": compiled.report.lm_calls, "tokens": compiled.report.tokens,
            "seconds": compiled.report.seconds} if compiled else {}),
    }
