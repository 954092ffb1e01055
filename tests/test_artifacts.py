"""Compiled artifacts: save -> load round trip, tamper and signature-change refusals, the promotion gate, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import dspy
import pytest
from click.testing import CliRunner

from purpose_dspy import artifacts, make_env
from purpose_dspy.cli import main
from purpose_dspy.errors import ArtifactError, UsageError
from purpose_dspy.metrics import SplitMetrics, TaskScore
from purpose_dspy.programs import Actor, PurposeAgent, PurposeCritic
from purpose_dspy.signatures.act import Act, ActDirect
from purpose_dspy.tasksets import load_taskset
from purpose_dspy.teleprompt import CompileConfig, CompileReport, PurposeTeleprompter, task_examples
from purpose_dspy.teleprompt.gate import decide
from rule_lm import rule_lms

TASKSET = "tasksets/treasure-maze.toml"
TS = load_taskset(TASKSET)
LMS = {"actor": {"model": "local/smollm2-135m", "api_base": None}}


@pytest.fixture(scope="module")
def compiled():
    """What the compile built (`tp.candidate`: the rule LM ties its parent on 3 dev seeds, so the gate refused it)."""
    lms, _ = rule_lms()
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False))
    tp.compile(PurposeAgent(), trainset=task_examples(TS.tasks("train")[:4], max_steps=TS.max_steps),
               valset=task_examples(TS.tasks("dev")[:3], max_steps=TS.max_steps))
    return tp.candidate, tp


def promoting(report):
    """`report` as if its gate had promoted (5 dev seeds gained, none lost: p = 0.03125)."""
    return report.model_copy(update={"gate": decide(_metrics([True] * 5), _metrics([False] * 5))})


def save(root, compiled, report=None):
    """Save `compiled` with `report`, by default the compile's own report with a promoting gate decision."""
    program, tp = compiled
    return artifacts.save_artifact(root, artifacts.components_of(program, judge=tp.judge), report or promoting(tp.report),
                                   lms=LMS, taskset=TS, taskset_bytes=open(TASKSET, "rb").read())


def test_save_then_load_gives_the_same_program(tmp_path, compiled):
    program, _ = compiled
    manifest = save(tmp_path / "maze", compiled)
    assert manifest.gate.promoted and (tmp_path / "maze" / "v1" / "manifest.json").exists()
    agent = artifacts.load(tmp_path / "maze")
    assert agent.version == 1
    assert [d.toDict() for d in agent.program.actor.act.demos] == [
        {k: v for k, v in d.toDict().items()} for d in program.actor.act.demos]
    assert agent.program.actor.act.signature.instructions == program.actor.act.signature.instructions
    assert len(agent.program.critic.judge.demos) == len(program.critic.judge.demos)
    assert agent.program.actor.paths == program.actor.paths
    assert {d.component for d in manifest.demos} <= {"actor", "critic"}
    assert manifest.taskset["content_hash"] == TS.content_hash and manifest.splits["dev"]
    text = (tmp_path / "maze" / "v1" / "manifest.json").read_text()
    assert "api_key" not in text and "pickle" not in text


def test_every_changed_byte_is_refused_with_the_file_named(tmp_path, compiled):
    save(tmp_path / "maze", compiled)
    version_dir = tmp_path / "maze" / "v1"
    for path in sorted(version_dir.iterdir()):
        original = path.read_bytes()
        i = len(original) // 2
        path.write_bytes(original[:i] + bytes([original[i] ^ 0x01]) + original[i + 1:])
        with pytest.raises(ArtifactError) as err:
            artifacts.load(f"{tmp_path / 'maze'}@v1")
        assert path.name in str(err.value), str(err.value)
        path.write_bytes(original)
    artifacts.load(f"{tmp_path / 'maze'}@v1")  # restored: loads again


def test_an_unlisted_file_or_a_missing_file_is_refused(tmp_path, compiled):
    save(tmp_path / "maze", compiled)
    extra = tmp_path / "maze" / "v1" / "evil.json"
    extra.write_text("{}")
    with pytest.raises(ArtifactError, match="evil.json"):
        artifacts.load(tmp_path / "maze")
    extra.unlink()
    (tmp_path / "maze" / "v1" / "memory.json").unlink()
    with pytest.raises(ArtifactError, match="memory.json is missing"):
        artifacts.load(tmp_path / "maze")


class _Renamed(PurposeAgent):
    def __init__(self, actor=None, critic=None):
        super().__init__(actor=actor, critic=critic)
        if actor is not None:  # a loaded actor keeps its predictor
            return
        sig = Act.delete("observation").insert(1, "obs", dspy.InputField(desc="what the environment shows"), type_=str)
        self.actor.act = dspy.Predict(sig)


class _Added(PurposeAgent):
    def __init__(self, actor=None, critic=None):
        super().__init__(actor=actor, critic=critic)
        if actor is None:
            self.actor.act = dspy.Predict(Act.append("mood", dspy.InputField(desc="how it feels"), type_=str))


@pytest.mark.parametrize("agent_class, expected", [
    (_Renamed, "renamed 'observation' -> 'obs'"),
    (_Added, "added: 'mood'"),
])
def test_a_changed_signature_is_refused_naming_the_change(tmp_path, compiled, monkeypatch, agent_class, expected):
    save(tmp_path / "maze", compiled)
    monkeypatch.setattr(artifacts.store, "PurposeAgent", agent_class)
    with pytest.raises(ArtifactError) as err:
        artifacts.load(tmp_path / "maze")
    message = str(err.value)
    assert expected in message and "actor.act" in message and "Recompile" in message


def test_a_changed_instruction_is_refused(tmp_path, compiled, monkeypatch):
    save(tmp_path / "maze", compiled)

    class Reworded(PurposeAgent):
        def __init__(self):
            super().__init__()
            self.critic.judge = dspy.Predict(self.critic.judge.signature.with_instructions("Be nice."))

    monkeypatch.setattr(artifacts.store, "PurposeAgent", Reworded)
    with pytest.raises(ArtifactError, match=r"critic\.judge: the signature's instructions"):
        artifacts.load(tmp_path / "maze")


def _metrics(wins):
    return SplitMetrics.of("dev", [TaskScore(task_id=f"t{i}", seed=i, success=w, phi_gain=0, steps=1, lm_calls=1,
                                             tokens=1, seconds=0) for i, w in enumerate(wins)])


def gated(before, after):
    """A report of a compile whose gate decided on these dev runs."""
    return CompileReport(before=before, after=after, gate=decide(after, before))


def test_a_worse_version_is_kept_unpromoted_with_the_reason(tmp_path, compiled):
    root = tmp_path / "maze"
    save(root, compiled)
    worse = gated(_metrics([True, True, False]), _metrics([True, False, False]))
    manifest = save(root, compiled, worse)
    assert manifest.version == 2 and not manifest.gate.promoted
    assert manifest.gate.reason.startswith("0 gained, 1 lost on 3 paired dev seeds, one-sided sign test p = 1 > 0.1: "
                                           "worse than the parent")
    assert (manifest.gate.comparison.losses, manifest.gate.alpha) == (1, 0.1)
    assert artifacts.load(root).version == 1  # the promoted one
    assert artifacts.load(f"{root}@v2").version == 2  # still loadable by number
    assert artifacts.promote(f"{root}@v2", "looked at it") == 2
    assert artifacts.load(root).version == 2
    assert artifacts.rollback(root) == (2, 1)
    assert artifacts.load(root).version == 1
    artifacts.rollback(root)
    with pytest.raises(ArtifactError, match="no promoted version"):
        artifacts.load(root)


def test_a_damaged_version_is_never_promoted(tmp_path, compiled):
    root = tmp_path / "maze"
    save(root, compiled, CompileReport())  # no valset: kept for a human
    (root / "v1" / "actor.json").write_text("{}")
    with pytest.raises(ArtifactError, match="actor.json"):
        artifacts.promote(f"{root}@v1")
    assert artifacts.promoted_stack(root) == []


def test_no_credential_is_ever_written(tmp_path, compiled):
    program, tp = compiled
    with pytest.raises(UsageError, match="credential"):
        artifacts.save_artifact(tmp_path / "x", artifacts.components_of(program), tp.report,
                                lms={"actor": {"model": "openai/gpt-4o-mini", "api_key": "sk-123"}})
    assert not list((tmp_path / "x").glob("v*"))


def test_artifacts_cli(tmp_path, compiled):
    root = tmp_path / "maze"
    save(root, compiled)
    save(root, compiled, gated(_metrics([True]), _metrics([False])))
    runner = CliRunner()
    listed = json.loads(runner.invoke(main, ["artifacts", "list", str(root), "--json"]).output)
    assert [(r["version"], r["current"], r["gate"]) for r in listed] == [(1, True, True), (2, False, False)]
    shown = runner.invoke(main, ["artifacts", "show", f"{root}@v2"])
    assert shown.exit_code == 0 and "worse than the parent" in shown.output
    diff = json.loads(runner.invoke(main, ["artifacts", "diff", f"{root}@v1", f"{root}@v2"]).output)
    assert diff["gate"] == [True, False] and "manifest.json" not in diff["files_changed"]
    assert runner.invoke(main, ["artifacts", "promote", f"{root}@v2"]).exit_code == 0
    assert "demoted v2; current: v1" in runner.invoke(main, ["artifacts", "rollback", str(root)]).output
    missing = runner.invoke(main, ["artifacts", "list", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "purpose-dspy compile" in missing.output


PREDICT = textwrap.dedent("""
    import json, sys
    from purpose_dspy import load, make_env
    from purpose_dspy.lm import build_role_lms, load_lm_config
    from purpose_dspy.types import Task
    import dspy
    agent = load(sys.argv[1])
    lms = build_role_lms(load_lm_config(model="local/smollm2-135m", cache=False))
    env = make_env("treasure-maze")
    out = []
    for seed in (200, 201):
        state = env.reset(Task(env_id="treasure-maze", seed=seed, split="test"))
        with dspy.context(lm=lms["actor"], adapter=dspy.JSONAdapter()):
            pred = agent.program.actor(purpose=env.purpose, state=state)
        out.append([pred.action, pred.thought])
    print(json.dumps(out))
""")


@pytest.mark.local_lm
def test_a_loaded_artifact_predicts_exactly_what_the_compiled_program_did_in_a_new_process(tmp_path, compiled, local_lms):
    """Compile -> save -> load in another process: identical predictions from the real model, cache off."""
    program, _ = compiled
    save(tmp_path / "maze", compiled)
    env = make_env("treasure-maze")
    here = []
    from purpose_dspy.types import Task

    for seed in (200, 201):
        state = env.reset(Task(env_id="treasure-maze", seed=seed, split="test"))
        with dspy.context(lm=local_lms["actor"], adapter=dspy.JSONAdapter()):
            pred = program.actor(purpose=env.purpose, state=state)
        here.append([pred.action, pred.thought])
    done = subprocess.run([sys.executable, "-c", PREDICT, str(tmp_path / "maze")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == here


def test_eval_runs_an_artifact_on_the_task_set_it_carries(tmp_path, compiled):
    from purpose_dspy.jobs import evaluate_artifact

    save(tmp_path / "maze", compiled)
    lms, engine = rule_lms()
    agent, metrics = evaluate_artifact(tmp_path / "maze", "test", lms=lms, tasks=2, progress=False)
    assert agent.version == 1 and metrics.n == 2 and [t.seed for t in metrics.tasks] == list(TS.splits["test"][:2])
    assert metrics.lm_calls == sum(engine.calls.values()) > 0
    assert engine.calls["critic"] == 0 and not metrics.phi_scored  # actor-only by default


def test_eval_json_reports_tokens_per_role_and_critic_scores_phi_only_when_asked(tmp_path, compiled, monkeypatch):
    import purpose_dspy.lm as lm_module

    save(tmp_path / "maze", compiled)
    lms, engine = rule_lms()
    monkeypatch.setattr(lm_module, "build_lm", lambda spec, role="any": lms[role])
    runner, args = CliRunner(), ["eval", str(tmp_path / "maze"), "--split", "test", "--tasks", "2"]

    actor_only = runner.invoke(main, [*args, "--json"])
    assert actor_only.exit_code == 0, actor_only.output
    out = json.loads(actor_only.output.strip().splitlines()[-1])
    assert out["phi_scored"] is False and engine.calls["critic"] == 0
    assert set(out["by_role"]) == {"actor"} and out["by_role"]["actor"]["calls"] == out["lm_calls"] > 0
    actor = out["by_role"]["actor"]
    assert actor["prompt_tokens"] > 0 and actor["completion_tokens"] == 20 * actor["calls"]  # the rule LM's usage
    assert actor["cached_tokens"] == 0 and out["prompt_tokens"] + out["completion_tokens"] == out["tokens"]
    assert all({"prompt_tokens", "completion_tokens", "by_role", "phi_scored"} <= t.keys() for t in out["tasks"])
    table = runner.invoke(main, args).output.strip().splitlines()[-1]  # (a progress bar's clearing line before it)
    assert "+0.00" not in table and "]        -    " in table  # Φ gain: not scored, not a zero

    scored = runner.invoke(main, [*args, "--critic", "--json"])
    assert scored.exit_code == 0, scored.output
    out = json.loads(scored.output.strip().splitlines()[-1])
    assert out["phi_scored"] is True and engine.calls["critic"] > 0
    assert out["by_role"]["critic"]["calls"] > 0 and out["by_role"]["critic"]["completion_tokens"] > 0
    assert out["lm_calls"] == sum(r["calls"] for r in out["by_role"].values())


def _compile_into(root, lms):
    """What `compile --out root` does: continue from the promoted version when there is one."""
    from purpose_dspy.jobs import _promoted_parent

    parent = _promoted_parent(root)
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False))
    tp.compile(parent.program if parent else PurposeAgent(),
               trainset=task_examples(TS.tasks("train")[:2], max_steps=TS.max_steps),
               valset=task_examples(TS.tasks("dev")[:2], max_steps=TS.max_steps))
    return artifacts.save_artifact(root, artifacts.components_of(tp.candidate, judge=tp.judge), tp.report, lms=LMS,
                                   taskset=TS, taskset_bytes=open(TASKSET, "rb").read(),
                                   parent_version=parent.version if parent else None)


def test_compile_save_load_compile_save_load_in_one_directory(tmp_path):
    """A compile that starts from a loaded, promoted parent writes a version that loads (issue 13)."""
    root = tmp_path / "maze"
    lms, _ = rule_lms()
    first = _compile_into(root, lms)
    assert not first.gate.promoted  # 2 dev seeds can never show it better; a human promotes it
    artifacts.promote(f"{root}@v1", "by hand")
    loaded = artifacts.load(root)
    assert loaded.program.actor.act.signature is Act  # the code's class, not DSPy's rebuilt StringSignature
    second = _compile_into(root, lms)
    assert (first.version, second.version, second.parent_version) == (1, 2, 1)
    assert second.components["actor"].predictors["act"]["signature"] == "Act"
    assert second.components["actor"].settings == {"reasoning": True, "demos_per_call": 3, "demo_chars": 160,
                                                   "follow_rules": 3}
    assert artifacts.load(f"{root}@v2").version == 2
    third = _compile_into(root, lms) if second.gate.promoted else None
    if third is not None:
        assert artifacts.load(f"{root}@v3").manifest.parent_version == 2
    assert artifacts.diff(first, second)["signature_changes"] == []


def test_the_answer_variant_is_recorded_and_rebuilt_on_load(tmp_path):
    """An agent compiled with the other variants loads with them: the manifest carries the settings."""
    lms, _ = rule_lms()
    student = PurposeAgent(actor=Actor(reasoning=False), critic=PurposeCritic(reasoning=True))
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False))
    program = tp.compile(student, trainset=task_examples(TS.tasks("train")[:2], max_steps=TS.max_steps),
                         valset=task_examples(TS.tasks("dev")[:1], max_steps=TS.max_steps))
    manifest = save(tmp_path / "maze", (program, tp))
    assert manifest.components["actor"].settings["reasoning"] is False
    loaded = artifacts.load(tmp_path / "maze")
    assert not loaded.program.actor.reasoning and loaded.program.critic.reasoning
    assert loaded.program.actor.act.signature is ActDirect and "thought" not in ActDirect.output_fields
    assert "reasoning" in loaded.program.critic.judge.signature.output_fields


def test_fingerprints_describe_content_not_class_names():
    """A StringSignature with the same fields and text prompts as the class does; any change to them shows."""
    rebuilt = Act.with_instructions(Act.instructions)
    assert rebuilt.__name__ != "Act"
    same = artifacts.fingerprint_differences("actor", {"act": artifacts.signature_fingerprint(Act)},
                                             {"act": artifacts.signature_fingerprint(rebuilt)})
    assert same == []
    reworded = Act.with_updated_fields("observation", desc="something else entirely")
    changed = artifacts.fingerprint_differences("actor", {"act": artifacts.signature_fingerprint(Act)},
                                                {"act": artifacts.signature_fingerprint(reworded)})
    assert changed == ["actor.act: field 'observation': its prefix or description changed"]


def test_a_stale_promoted_version_is_not_continued_from_and_the_advice_works(tmp_path, compiled, monkeypatch):
    """The refusal's recompile command, followed, compiles from the zero-shot program and writes a version that loads."""
    root = tmp_path / "maze"
    save(root, compiled)
    monkeypatch.setattr(artifacts.store, "PurposeAgent", _Added)
    with pytest.raises(artifacts.StaleArtifactError) as err:
        artifacts.load(root)
    message = str(err.value)
    assert f"--out {root}" in message and ("tasksets/treasure-maze.toml" in message or "taskset.toml" in message)
    monkeypatch.setattr("purpose_dspy.jobs.PurposeAgent", _Added)
    lms, _ = rule_lms()
    from purpose_dspy.jobs import compile_taskset

    from purpose_dspy.lm import load_lm_config

    outcome = compile_taskset(TASKSET, root, lm_config=load_lm_config(), config=CompileConfig(progress=False), train=2, dev=2,
                              lms=lms, run_dir=tmp_path / "runs")
    assert outcome.manifest.version == 2 and outcome.manifest.parent_version is None
    assert artifacts.load(f"{root}@v2").version == 2


def test_compile_twice_into_one_out_then_eval_through_the_cli(tmp_path, monkeypatch):
    """`compile --out D` twice (the second continues from the first), then `eval D`, and `artifacts diff`."""
    import purpose_dspy.jobs as job
    import purpose_dspy.lm as lm_module

    lms, engine = rule_lms()
    monkeypatch.setattr(job, "build_role_lms", lambda config, roles=(): {r: lms[r] for r in roles})
    monkeypatch.setattr(lm_module, "build_lm", lambda spec, role="any": lms[role])
    root, runner = tmp_path / "maze", CliRunner()
    args = ["compile", TASKSET, "--out", str(root), "--train", "2", "--dev", "2", "--run-dir", str(tmp_path / "runs"),
            "--json"]
    outs = []
    for seed in ("0", "1"):  # another seed: a new run, not the first one resumed from its checkpoint
        result = runner.invoke(main, args + ["--seed", seed])
        assert result.exit_code == 0, result.output
        outs.append(json.loads(result.output.strip().splitlines()[-1]))
        assert not outs[-1]["promoted"]  # 2 dev seeds can never show it better: a human promotes it
        assert runner.invoke(main, ["artifacts", "promote", f"{root}@v{outs[-1]['version']}"]).exit_code == 0
    assert [o["version"] for o in outs] == [1, 2]
    assert outs[0]["gate"] == {"ran": True, "promoted": False, "paired": 2, "wins": 0, "losses": 0, "p_value": 1.0,
                               "alpha": 0.1, "stopped_early": False}
    assert artifacts.read_manifest(root / "v2").parent_version == 1
    evaluated = runner.invoke(main, ["eval", str(root), "--split", "test", "--tasks", "2", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output.strip().splitlines()[-1])["version"] == 2
    diff = json.loads(runner.invoke(main, ["artifacts", "diff", f"{root}@v1", f"{root}@v2"]).output)
    assert diff["signature_changes"] == []


def test_the_committed_demo_artifact_loads_and_its_fingerprints_match_the_code():
    agent = artifacts.load("compiled/treasure-maze")
    assert agent.program.actor.act.signature is Act
    assert agent.taskset_toml is not None
