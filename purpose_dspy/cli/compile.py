"""`purpose-dspy compile | eval | demo`: thin commands over `purpose_dspy.jobs`."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import click

from purpose_dspy.cli.options import backend_options, lm_config, lm_options, monitor_dir_option
from purpose_dspy.cli.plot import learning_curve


def _metrics_row(label: str, m: Any) -> str:
    lo, hi = m.success_ci
    return (f"{label:<22} {m.successes:>3}/{m.n:<3} {m.success_rate:>5.0%}  [{lo:.0%}, {hi:.0%}]  "
            f"{m.phi_gain_text:>7}  {m.mean_steps:>5.1f}  {m.lm_calls:>6}  {m.tokens:>8}  {m.seconds:>6.0f}")


_HEADER = f"{'':<22} {'solved':>7} {'rate':>5}  {'95% CI':<12} {'Φ gain':>7}  {'steps':>5}  {'calls':>6}  {'tokens':>8}  {'sec':>6}"


def _compile_options(command: Any) -> Any:
    for option in reversed((
        click.option("--max-lm-calls", default=None, type=click.IntRange(1), help="LM-call budget of the whole compile."),
        click.option("--num-threads", default=1, show_default=True, type=click.IntRange(1),
                     help="Rollouts at once (one environment each; the embedded model serves one call at a time)."),
        click.option("--seed", default=0, show_default=True, help="Seeds exploration and sampling."),
        click.option("--explore", default=0.3, show_default=True, type=click.FloatRange(0, 1),
                     help="Exploration rate of the train rollouts."),
        click.option("--train", "n_train", default=None, type=click.IntRange(1), help="Use only the first N train seeds."),
        click.option("--dev", "n_dev", default=20, show_default=True, type=click.IntRange(1), help=(
            "Gate on the first N dev seeds. Each runs twice (parent and compiled), so a bigger N makes the compile "
            "slower; with fewer than 4 the gate (alpha 0.1) can never promote.")),
        click.option("--run-dir", default=".purpose-dspy-runs", show_default=True, type=click.Path(file_okay=False),
                     help="Checkpoints: the same compile run again resumes where it stopped."),
    )):
        command = option(command)
    return command


@click.command("compile")
@click.argument("taskset", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Artifact directory, e.g. compiled/twx-coin.")
@_compile_options
@backend_options
@lm_options
@click.option("--no-cache", is_flag=True, help="Bypass DSPy's response cache.")
@click.option("--require-approval", is_flag=True,
              help="Write a version the gate passed as pending: never served until `artifacts approve`.")
@monitor_dir_option
@click.option("--mlflow-uri", default=None, metavar="URI",
              help="Also log the compile as an MLflow run at this tracking URI (pip install 'purpose-dspy[mlflow]').")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest's summary as one JSON object.")
def compile_command(taskset: str, out: str, max_lm_calls: int | None, num_threads: int, seed: int, explore: float,
                    n_train: int | None, n_dev: int | None, run_dir: str, model: str | None, api_base: str | None,
                    critic_lm: str | None, config_file: str | None, no_cache: bool, require_approval: bool,
                    monitor_dir: str | None, mlflow_uri: str | None, as_json: bool) -> None:
    """Compile an agent on a task set and write the next version of its artifact.

    Rolls the agent out on the train split, keeps step demos from its best successful runs, calibrates
    the critic through the meta-judge, distils memory cards, and evaluates on the dev split against
    the parent (the current promoted version, or the zero-shot agent). The new version is promoted
    only if, on the same dev seeds, it solved more of the seeds where the two differ than it lost and
    a one-sided exact sign test gives p <= 0.1. A tie, a worse result or too few differing seeds
    keeps the parent (it takes at least 4 gained and none lost). The compiled agent runs on the first
    5 dev seeds first and stops there if it lost 2 more than it gained. A refused version is still
    written, unpromoted, for `artifacts show`. The dev runs call the actor only, the train rollouts
    the critic too. The 20 default dev seeds make a compile slower than a few would: each seed runs
    twice (parent and compiled). --json reports calls and tokens per role under by_role, and the
    gate's figures under gate (wins, losses, p_value, alpha).

    --require-approval writes a version the gate passed as pending instead of promoting it: `load`
    and `eval` never serve it until `purpose-dspy artifacts approve <out>@v<N>` (or `reject`).
    --monitor-dir D (or PURPOSE_DSPY_MONITOR) records each rollout (source "compile"), the compile,
    the gate's figures and the promotion or pending state in D's ledger, and an audit line when what
    is served changes; D's limits.toml holds the rollouts, and a paused D (`purpose-dspy pause D`)
    refuses to compile, or stops a running compile at its next step (nothing written; the same
    command after `purpose-dspy resume D` continues from the checkpoint).
    --mlflow-uri logs the compile as one MLflow run in experiment "purpose-dspy": its flags as params,
    the dev figures of parent and compiled as before.* and after.*, the gate's as gate.*, and the
    version directory as artifacts (a local file store needs MLFLOW_ALLOW_FILE_STORE=true).

    A writing task set (env "writing:constrained") compiles the editor instead: accepted answers
    become draft demos, verifier-labelled critiques and score-raising refinements become the
    critique's and the refiner's demos; success is the editor's gate (every constraint met, composite
    at the target). --max-steps of the task set is the editor's number of drafts.

    \b
    Examples:
      purpose-dspy compile tasksets/treasure-maze.toml --out compiled/treasure-maze
      purpose-dspy compile tasksets/constrained-writing.toml --out compiled/constrained-writing --train 10 --dev 5
      purpose-dspy compile tasksets/twx-coin.toml --out compiled/twx-coin --max-lm-calls 2000 --json
    """
    from purpose_dspy.jobs import compile_taskset
    from purpose_dspy.monitor import Monitor
    from purpose_dspy.monitor.mlflow_runs import require_mlflow
    from purpose_dspy.teleprompt import CompileConfig

    if mlflow_uri:
        require_mlflow()  # before the compile, not after it
    outcome = compile_taskset(
        taskset, out, lm_config=lm_config(model, api_base, critic_lm, config_file, no_cache),
        config=CompileConfig(max_lm_calls=max_lm_calls, num_threads=num_threads, seed=seed, explore=explore,
                             progress=True),
        run_dir=run_dir, train=n_train, dev=n_dev, pending=require_approval,
        monitor=Monitor.open(monitor_dir) if monitor_dir else None,
    )
    _print_compile(outcome, out, as_json)
    if mlflow_uri:
        _log_to_mlflow(mlflow_uri, outcome, {"taskset": taskset, "out": out, "seed": seed, "explore": explore,
                                             "max_lm_calls": max_lm_calls, "train": n_train, "dev": n_dev,
                                             "num_threads": num_threads, "require_approval": require_approval})


def _log_to_mlflow(uri: str, outcome: Any, params: dict[str, Any]) -> None:
    """The compile as an MLflow run: its flags and version, the dev figures of parent and compiled, the gate's."""
    from purpose_dspy.artifacts.records import decision_of
    from purpose_dspy.monitor.mlflow_runs import log_compile

    m, r = outcome.manifest, outcome.report
    run_id = log_compile(
        uri, params={**params, "version": m.version, "parent_version": m.parent_version, "status": decision_of(m),
                     "promoted": decision_of(m) == "promoted", "reason": m.gate.reason, "lms": m.lms},
        metrics_before=_brief(r.before), metrics_after=_brief(r.after), artifact_dir=outcome.path,
        metrics={"gate": _gate_figures(r.gate), "lm_calls": r.lm_calls, "tokens": r.tokens, "seconds": r.seconds},
        run_name=f"{outcome.path.parent.name} v{m.version}")
    click.echo(f"logged to MLflow: run {run_id} at {uri}", err=True)


def _print_compile(outcome: Any, out: str, as_json: bool) -> None:
    """The compile's summary: one JSON object, or the table, the gate's line and what was written."""
    from purpose_dspy.artifacts.records import decision_of

    m, r = outcome.manifest, outcome.report
    if as_json:
        click.echo(json.dumps({
            "path": str(outcome.path), "version": m.version, "promoted": decision_of(m) == "promoted",
            "status": decision_of(m), "reason": m.gate.reason, "gate": _gate_figures(r.gate),
            "before": _brief(r.before), "after": _brief(r.after), "train": _brief(r.train),
            "demos": {name: c.demos for name, c in m.components.items()}, "judge": r.judge,
            "memory_cards": len(r.memory_cards), "lm_calls": r.lm_calls, "tokens": r.tokens, "by_role": r.by_role,
            "seconds": r.seconds,
        }))
        return
    click.echo(_HEADER)
    for label, metrics in (("train rollouts", r.train), ("dev: parent", r.before), ("dev: compiled", r.after)):
        if metrics is not None:
            click.echo(_metrics_row(label, metrics))
    click.echo(f"\ngate: {_gate_line(r.gate)}")
    status = {"promoted": "promoted", "pending": "PENDING approval (the gate passed it; approve or reject it: "
              f"purpose-dspy artifacts approve {out}@v{m.version})", "kept": "NOT promoted"}[decision_of(m)]
    click.echo(f"wrote {outcome.path}: {status} ({m.gate.reason})")
    click.echo(f"demos: {', '.join(f'{n} {sum(c.demos.values())}' for n, c in m.components.items())}; "
               f"memory cards {len(r.memory_cards)}; {r.lm_calls} LM calls, {r.tokens} tokens, {r.seconds:.0f}s")


def _paired_figures(candidate: Any, parent: Any) -> dict[str, Any]:
    """Seeds one solved and the other did not, and the exact two-sided sign test on them."""
    from purpose_dspy.metrics import paired, sign_test

    c = paired(candidate, parent)
    return {"n": c.n, "wins": c.wins, "losses": c.losses, "sign_test_p": sign_test(c.wins, c.losses)}


def _brief(m: Any) -> dict[str, Any] | None:
    return None if m is None else m.model_dump(mode="json", exclude={"tasks"})


def _gate_figures(gate: Any) -> dict[str, Any]:
    """The gate's decision as numbers (`ran` false: no dev evaluation, nothing decided)."""
    from purpose_dspy.artifacts.records import gate_figures

    return gate_figures(gate)


def _gate_line(gate: Any) -> str:
    f = _gate_figures(gate)
    if not f["ran"]:
        return "did not run (no dev evaluation)"
    p = "-" if f["p_value"] is None else f"{f['p_value']:.4g}"
    early = ", stopped after the first stage" if f["stopped_early"] else ""
    return (f"{f['wins']} gained, {f['losses']} lost of {f['paired']} paired dev seeds, one-sided p = {p} "
            f"(alpha {f['alpha']:g}){early}")


@click.command("eval")
@click.argument("artifact")
@click.option("--split", type=click.Choice(["train", "dev", "test"]), default="test", show_default=True)
@click.option("--tasks", "n_tasks", default=None, type=click.IntRange(1), help="Only the first N tasks of the split.")
@click.option("--num-threads", default=1, show_default=True, type=click.IntRange(1))
@backend_options
@click.option("--critic", is_flag=True,
              help="Also score Φ with the critic; off by default: success is the environment's.")
@lm_options
@click.option("--require-signature", is_flag=True,
              help="Refuse an unsigned artifact; needs PURPOSE_DSPY_SIGNING_KEY (with the key set, a bad or missing "
                   "signature is refused anyway).")
@monitor_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_command(artifact: str, split: str, n_tasks: int | None, num_threads: int, critic: bool, model: str | None,
                 api_base: str | None, critic_lm: str | None, config_file: str | None, require_signature: bool,
                 monitor_dir: str | None, as_json: bool) -> None:
    """Evaluate a compiled artifact on a split of the task set it was compiled on.

    ARTIFACT is compiled/<name> (its promoted version) or compiled/<name>@v<N>. Runs the actor only
    (success is the environment's verdict) unless --critic. Prints the success rate with its 95%
    interval, mean Φ gain ("-" when Φ was not scored), LM calls, tokens and seconds; --json adds
    prompt_tokens, completion_tokens, cached_tokens, by_role (calls and tokens per role) and
    phi_scored. The LMs are the ones the artifact was compiled with, unless --lm/--critic-lm/--config
    say otherwise.

    --monitor-dir D (or PURPOSE_DSPY_MONITOR) records each task in D's ledger (source "eval", the
    artifact's name and version) and holds the evaluation to D's limits.toml; a paused D stops it
    before its next step (one line, exit 1), the tasks already run still recorded.

    \b
    Examples:
      purpose-dspy eval compiled/treasure-maze --split test --json
      purpose-dspy eval compiled/treasure-maze --split test --critic
    """
    from purpose_dspy.artifacts import signing_key
    from purpose_dspy.jobs import evaluate_artifact
    from purpose_dspy.monitor import Monitor

    if require_signature:  # with the key set, the load below refuses an unsigned or badly signed artifact
        signing_key(required=True)
    config = lm_config(model, api_base, critic_lm, config_file) if (model or critic_lm or config_file or api_base) else None
    with Monitor.open(monitor_dir) if monitor_dir else contextlib.nullcontext() as monitor:
        agent, metrics = evaluate_artifact(artifact, split, lm_config=config, tasks=n_tasks,  # type: ignore[arg-type]
                                           num_threads=num_threads, critic=critic, monitor=monitor)
    if as_json:
        click.echo(json.dumps({"artifact": str(agent.path), "version": agent.version, **metrics.model_dump(mode="json")}))
        return
    click.echo(_HEADER)
    click.echo(_metrics_row(f"{agent.path.parent.name} v{agent.version} {split}", metrics))


@click.command("demo")
@click.option("--out", default="compiled/twx-simonsays", show_default=True, type=click.Path(file_okay=False),
              help="Where the compiled artifact goes.")
@click.option("--taskset", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Task set [default: the twx-simonsays one shipped with purpose-dspy; tasksets/treasure-maze.toml "
                   "needs no Java].")
@click.option("--train", "n_train", default=20, show_default=True, type=click.IntRange(1), help="Train seeds rolled out.")
@click.option("--dev", "n_dev", default=20, show_default=True, type=click.IntRange(1),
              help="Dev seeds for the promotion gate (at alpha 0.1 it takes 4 gained and none lost; the test runs use "
                   "the version anyway).")
@click.option("--test", "n_test", default=20, show_default=True, type=click.IntRange(1), help="Test seeds, before and after.")
@click.option("--max-lm-calls", default=1500, show_default=True, type=click.IntRange(1), help="Budget of the compile.")
@click.option("--png", default="demo-learning-curve.png", show_default=True, type=click.Path(dir_okay=False),
              help="Where the learning-curve plot goes.")
@click.option("--run-dir", default=".purpose-dspy-runs", show_default=True, type=click.Path(file_okay=False))
@backend_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def demo(out: str, taskset: str | None, n_train: int, n_dev: int, n_test: int, max_lm_calls: int, png: str,
         run_dir: str, as_json: bool) -> None:
    """The main job on the embedded model: compile a task set, compare before and after.

    The default task set is TextWorldExpress simonsays (Java): the observation names the right action among
    eight, zero-shot SmolLM2 solves none, and what its own rollouts learn there carries to held-out games
    (about 3 minutes on 2 cores).

    Evaluates the zero-shot agent on the test seeds and on the train tasks, compiles on the train seeds
    (gated on dev), evaluates the compiled version on the same test seeds (held out: only what transfers)
    and on the train tasks run again (what a fixed suite gets back), prints both with the exact sign
    test on the same seeds and writes a learning-curve PNG. Every evaluation runs the actor only
    (success is the environment's; Φ gain shows "-"); the train rollouts also call the critic.
    """
    from purpose_dspy.jobs import run_demo

    result = run_demo(Path(taskset) if taskset else None, out, train=n_train, dev=n_dev, test=n_test,
                      max_lm_calls=max_lm_calls, run_dir=run_dir)
    before, after, outcome, seconds = result.before, result.after, result.compiled, result.seconds
    again = (result.train_before, result.train_after)
    plot = learning_curve(png, outcome.report, before, after, *again)
    pairs = {"test": _paired_figures(after, before), "train_again": _paired_figures(again[1], again[0])}
    if as_json:
        click.echo(json.dumps({"artifact": str(outcome.path), "promoted": outcome.manifest.gate.promoted,
                               "test_before": _brief(before), "test_after": _brief(after),
                               "train_again_before": _brief(again[0]), "train_again_after": _brief(again[1]),
                               "paired": pairs, "train": _brief(outcome.report.train), "png": plot,
                               "seconds": round(seconds, 1)}))
        return
    click.echo(_HEADER)
    v = outcome.manifest.version
    for label, metrics in (("test: zero-shot", before), (f"test: compiled v{v}", after),
                           ("train again: zero-shot", again[0]), (f"train again: v{v}", again[1])):
        click.echo(_metrics_row(label, metrics))
    for name, p in pairs.items():
        click.echo(f"{name.replace('_', ' ')}: compiled vs zero-shot on the same seeds: +{p['wins']} -{p['losses']}, "
                   f"exact two-sided sign test p = {p['sign_test_p']:.3g}")
    click.echo(f"\nartifact {outcome.path} ({'promoted' if outcome.manifest.gate.promoted else 'not promoted'}: "
               f"{outcome.manifest.gate.reason})")
    click.echo(f"learning curve: {plot}" if plot else "learning curve: not drawn (pip install 'purpose-dspy[plot]')")
    click.echo(f"total {seconds / 60:.1f} min")
