"""Compiling the editor: DSPy's contract, verifier-labelled demos with provenance, budget, resume, save and load.

The LM is rule_lm.py's stand-in (control flow only): its drafts miss exact word counts by one, its
refinements meet every constraint, its critiques are honest. The real model compiles in the last test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rule_lm import RuleEngine, rule_lms

from purpose_dspy import artifacts
from purpose_dspy.cli import main
from purpose_dspy.jobs import compile_taskset
from purpose_dspy.teleprompt import EditorTeleprompter, writing_examples
from purpose_dspy.lm import load_lm_config
from purpose_dspy.programs.editor import Editor
from purpose_dspy.tasksets import load_taskset
from purpose_dspy.teleprompt import CompileConfig
from purpose_dspy.writing.constraints import count_words
from purpose_dspy.writing.tasks import tasks_of

ROOT = Path(__file__).resolve().parent.parent
TASKSET = ROOT / "tasksets/constrained-writing.toml"


def setup(n_train: int = 6, n_dev: int = 3, engine: RuleEngine | None = None):
    ts = load_taskset(TASKSET)
    train, dev = tasks_of(ts, "train")[:n_train], tasks_of(ts, "dev")[:n_dev]
    lms, engine = rule_lms(engine)
    engine.writing_tasks = {t.text(): t for t in tasks_of(ts, "train") + tasks_of(ts, "dev") + tasks_of(ts, "test")}
    return train, dev, lms["editor"], engine


def test_compile_keeps_the_student_and_labels_demos_by_the_verifier():
    train, dev, lm, _ = setup()
    student = Editor(max_iterations=3)
    state_before = json.dumps(student.dump_state(), sort_keys=True)
    tp = EditorTeleprompter(lm, CompileConfig(progress=False))
    returned = tp.compile(student, trainset=writing_examples(train), valset=writing_examples(dev))
    assert json.dumps(student.dump_state(), sort_keys=True) == state_before  # never mutated
    report = tp.report
    assert report.train.successes == len(train) and report.after.successes == len(dev)
    # Both solve every dev task: a tie, so the gate kept the parent; what the compile built is `candidate`.
    assert not report.gate.promoted and "a tie" in report.gate.reason
    assert returned is not student and not returned.draft.demos and returned._compiled
    program = tp.candidate
    # Accepted answers become draft demos; each one meets its task's constraints.
    by_text = {t.text(): t for t in train}
    assert program.draft.demos and all(by_text[d.task].passes(d.output) for d in program.draft.demos)
    # Critique demos carry what Python measured, passing and failing outputs alternating.
    assert program.critique.demos
    for d in program.critique.demos:
        assert d.word_count == count_words(d.output) and d.constraints_met == by_text[d.task].check(d.output)
    assert {all(d.constraints_met) for d in program.critique.demos} == {True, False}
    # Refinements that raised the composite (the one-word-too-long drafts) become refine demos.
    assert program.refine.demos and all("Measured" in d.critique for d in program.refine.demos)
    components = {s.component for s in report.demos}
    assert components == {"editor.draft", "editor.critique", "editor.refine"}
    assert all(s.task_id.startswith("writing:constrained/train/") and s.trajectory_id == f"edit:{s.task_id}"
               for s in report.demos)
    assert report.judge["accuracy"] == 1.0 and report.lm_calls == sum(p["lm_calls"] for p in report.phases.values())


def test_compile_stays_inside_its_budget():
    train, dev, lm, _ = setup()
    tp = EditorTeleprompter(lm, CompileConfig(max_lm_calls=30, progress=False))
    tp.compile(Editor(max_iterations=3), trainset=writing_examples(train), valset=writing_examples(dev))
    assert tp.report.lm_calls <= 30 and tp.report.budget_exhausted
    assert tp.report.after is not None and tp.report.after.n == len(dev)  # the final evaluation's share was held back


def test_an_interrupted_compile_resumes_without_redoing_finished_tasks(tmp_path):
    train, dev, _, _ = setup()
    interrupted = RuleEngine(interrupt_after=25)
    _, _, lm, _ = setup(engine=interrupted)
    with pytest.raises(KeyboardInterrupt):
        EditorTeleprompter(lm, CompileConfig(progress=False), run_dir=tmp_path).compile(
            Editor(), trainset=writing_examples(train), valset=writing_examples(dev))
    first_calls = sum(interrupted.calls.values())
    _, _, lm2, fresh = setup()
    tp = EditorTeleprompter(lm2, CompileConfig(progress=False), run_dir=tmp_path)
    tp.compile(Editor(), trainset=writing_examples(train), valset=writing_examples(dev))
    assert tp.report.resumed_units > 0
    _, _, lm3, full = setup()
    EditorTeleprompter(lm3, CompileConfig(progress=False)).compile(
        Editor(), trainset=writing_examples(train), valset=writing_examples(dev))
    # The resumed run redid at most the task in flight: it made fewer calls than a full compile by what had finished.
    assert sum(fresh.calls.values()) < sum(full.calls.values())
    assert sum(fresh.calls.values()) + first_calls <= sum(full.calls.values()) + 6  # at most one task (6 calls) redone


def test_compiled_editor_artifact_round_trip(tmp_path):
    _, _, lm, _ = setup()
    out = tmp_path / "compiled" / "constrained-writing"
    outcome = compile_taskset(TASKSET, out, lm_config=load_lm_config(model="local/smollm2-135m"),
                              config=CompileConfig(progress=False), train=4, dev=2, lms={"editor": lm})
    # A tie on 2 dev seeds (both pass): written unpromoted, with what the compile built, for a look.
    assert not outcome.manifest.gate.promoted and set(outcome.manifest.components) == {"editor"}
    assert artifacts.promoted_stack(out) == []
    agent = artifacts.load(f"{out}@v1")
    assert agent.is_editor and agent.program.draft.demos and agent.program.critique.demos
    assert [d.toDict() for d in agent.program.critique.demos] == [
        d.toDict() for d in artifacts.load(f"{out}@v1").program.critique.demos]
    task = tasks_of(load_taskset(TASKSET), "test")[0]
    result = agent.edit(task, lm=lm)
    assert result.passed and task.passes(result.output)
    with pytest.raises(Exception, match="compiled editor"):
        agent.run("purpose", env=None)
    # The manifest fingerprints all three predictors (what load compares with the code, as for agents).
    manifest = json.loads((outcome.path / "manifest.json").read_text())
    assert set(manifest["components"]["editor"]["predictors"]) == {"draft", "critique", "refine"}


@pytest.mark.local_lm
def test_compile_and_eval_the_editor_on_the_real_model_through_the_cli(tmp_path):
    out = tmp_path / "compiled" / "cw"
    runner = CliRunner()
    done = runner.invoke(main, ["compile", str(TASKSET), "--out", str(out), "--train", "2", "--dev", "1",
                                "--run-dir", str(tmp_path / "runs"), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["version"] == 1 and report["train"]["n"] == 2 and report["before"]["n"] == 1
    assert set(report["demos"]) == {"editor"} and report["lm_calls"] > 0
    evaluated = runner.invoke(main, ["eval", f"{out}@v1", "--split", "test", "--tasks", "1", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert metrics["n"] == 1 and metrics["lm_calls"] >= 2
