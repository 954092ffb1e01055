"""The meta-loop (issue 20): `purpose-dspy improve` checks the monitor's triggers and, on a firing (or --force),
compiles from the promoted version, gates it and records why; --require-approval leaves the candidate pending
(`load()` serves the old version until `artifacts approve`, and after `reject` never); the cap on
self-modifications and the pause flag stop it in one line; `compile --monitor-dir` records its compile.

Scripted: rule_lm.py's LM on treasure-maze (train 2, dev 5). The ledger's task records are written directly (a
degradation: 20 tasks solved, then 3 of 20). Every compile of the loop runs in mazes where the dev episodes
before the train rollouts cannot be won, so the parent loses all 5 dev seeds and the gate passes the candidate
(4 or 5 gained, none lost: p <= 1/16); that is a rigged environment for control flow, not evidence of learning.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from rule_lm import rule_lms

import purpose_dspy.jobs as job
from purpose_dspy import artifacts
from purpose_dspy.cli import main
from purpose_dspy.environments.treasure_maze import TreasureMaze
from purpose_dspy.errors import ArtifactError
from purpose_dspy.monitor import Monitor, TaskRecord
from purpose_dspy.teleprompt import PurposeTeleprompter

TASKSET = "tasksets/treasure-maze.toml"


class _StuckBeforeTraining(TreasureMaze):
    """A maze whose dev episodes cannot be won until the compile's train rollouts began (the parent's runs)."""

    def __init__(self, phase: dict[str, bool]) -> None:
        super().__init__()
        self.phase, self.stuck = phase, False

    def reset(self, task):
        self.phase["trained"] |= task.split == "train"
        self.stuck = task.split == "dev" and not self.phase["trained"]
        return super().reset(task)

    def step(self, action):
        if self.stuck:
            self._steps += 1
            return self._state("The floor holds you in place.")
        return super().step(action)


class _RiggedTeleprompter(PurposeTeleprompter):
    def __init__(self, *args, **kwargs):
        phase = {"trained": False}  # per compile
        super().__init__(*args, make_environment=lambda env_id: _StuckBeforeTraining(phase), **kwargs)


SUCCESS_RULE = """
[[rule]]
name = "success-drop"
kind = "success_drop"
window = 20
min_sample = 20
ratio = 0.95
"""


@pytest.fixture
def maze(tmp_path, monkeypatch):
    """compiled/maze with v1 promoted by hand, the rule LM behind every compile, and a run directory."""
    lms, _ = rule_lms()
    monkeypatch.setattr(job, "build_role_lms", lambda config, roles=(): {r: lms[r] for r in roles})
    root, runs = tmp_path / "maze", tmp_path / "runs"
    result = invoke("compile", TASKSET, "--out", root, "--train", "2", "--dev", "5", "--run-dir", tmp_path / "ckpt",
                    "--monitor-dir", runs, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "kept"  # the rule LM ties the zero-shot agent
    artifacts.promote(f"{root}@v1", "by hand")
    (runs / "triggers.toml").write_text(SUCCESS_RULE)
    monkeypatch.setattr(job, "PurposeTeleprompter", _RiggedTeleprompter)
    return root, runs, tmp_path / "ckpt"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ledger_of(runs, successes: list[bool]) -> None:
    with Monitor.open(runs) as m:
        for i, ok in enumerate(successes):
            m.ledger.record_task(TaskRecord(program="maze", version="v1", source="run", task_id=f"t{i}", seed=i,
                                            split="test", success=ok, steps=5, phi_gain=None, lm_calls=5,
                                            tokens=500, seconds=1.0, at=1000.0 + i))


DEGRADED = [True] * 20 + [True] * 3 + [False] * 17
STABLE = [True] * 40


def improve(maze, *extra):
    root, runs, ckpt = maze
    return invoke("improve", TASKSET, "--program", root, "--monitor-dir", runs, "--train", "2", "--dev", "5",
                  "--budget", "2000", "--run-dir", ckpt, *extra)


def events(runs):
    with Monitor.open(runs) as m:
        return [(e.kind, e.version) for e in m.ledger.events(program="maze")], m.audit.lines(), m.audit.verify().ok


def test_compile_with_a_monitor_records_its_compile_and_gate_and_no_audit_line_when_nothing_changed(maze):
    _, runs, _ = maze
    kinds, lines, ok = events(runs)
    assert kinds == [("compile", "v1"), ("gate", "v1")] and lines == [] and ok
    with Monitor.open(runs) as m:
        compiled, gate = m.ledger.events(program="maze")
    assert compiled.detail["lm_calls"] > 0 and compiled.detail["seconds"] > 0 and compiled.detail["who"] == "operator"
    assert (gate.detail["wins"], gate.detail["losses"], gate.detail["p_value"], gate.detail["decision"]) == (0, 0, 1.0,
                                                                                                             "kept")


def test_with_no_firing_improve_does_nothing(maze):
    root, runs, _ = maze
    ledger_of(runs, STABLE)
    result = improve(maze)
    assert result.exit_code == 0 and result.output.strip().splitlines() == [
        "no trigger fired for maze over its 40 task records (rules: success-drop); nothing compiled (--force "
        "compiles anyway)"]
    figures = json.loads(improve(maze, "--json").stdout)
    assert figures["fired"] == [] and figures["compiled"] is False and figures["decision"] is None
    assert figures["tasks"] == 40 and [(r["name"], r["window"], r["min_sample"]) for r in figures["rules"]] == [
        ("success-drop", 20, 20)]
    assert not (root / "v2").exists() and events(runs)[0][2:] == []  # only the fixture's compile and gate
    forced = json.loads(improve(maze, "--force", "--json").stdout)
    assert forced["compiled"] and forced["forced"] and forced["decision"] == "promoted"


def test_a_degradation_makes_improve_compile_gate_and_record_why(maze):
    root, runs, _ = maze
    ledger_of(runs, DEGRADED)
    result = improve(maze, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [f["rule"] for f in out["fired"]] == ["success-drop"] and out["decision"] == "promoted"
    assert (out["version"], out["parent_version"], out["gate"]["losses"]) == (2, 1, 0) and out["gate"]["wins"] >= 4
    assert 0 < out["lm_calls"] <= 2000 and artifacts.load(root).version == 2
    kinds, lines, ok = events(runs)
    assert kinds[2:] == [("trigger", None), ("compile", "v2"), ("gate", "v2"), ("promotion", "v2")]
    assert ok and len(lines) == 1 and lines[0]["who"] == "improve"
    assert lines[0]["change"].startswith("maze v2 promoted by its gate (parent v1): demos actor ")
    assert lines[0]["why"]["trigger"][0]["rule"] == "success-drop" and lines[0]["why"]["gate"] == out["gate"]


def test_with_require_approval_the_candidate_stays_pending_until_approved(maze):
    root, runs, _ = maze
    ledger_of(runs, DEGRADED)
    result = improve(maze, "--require-approval")
    assert result.exit_code == 0 and "compiled v2, pending" in result.output, result.output
    assert artifacts.load(root).version == 1 and artifacts.pending_versions(root) == [2]
    with pytest.raises(ArtifactError, match="pending approval"):
        artifacts.load(f"{root}@v2")
    again = improve(maze)  # no second candidate while one waits
    assert again.exit_code == 2 and "still pending approval" in again.output and not (root / "v3").exists()
    assert invoke("artifacts", "approve", f"{root}@v2", "--monitor-dir", runs).exit_code == 0
    assert artifacts.load(root).version == 2
    kinds, lines, ok = events(runs)
    assert ("pending", "v2") in kinds and kinds[-1] == ("approval", "v2") and ("promotion", "v2") not in kinds
    assert ok and [line["who"] for line in lines] == ["improve", "operator"]
    assert "pending approval" in lines[0]["change"] and "approved and promoted" in lines[1]["change"]


def test_a_rejected_candidate_is_never_served(maze):
    root, runs, _ = maze
    ledger_of(runs, DEGRADED)
    assert improve(maze, "--require-approval").exit_code == 0
    assert invoke("artifacts", "reject", f"{root}@v2", "--reason", "no", "--monitor-dir", runs).exit_code == 0
    assert artifacts.load(root).version == 1
    assert improve(maze, "--require-approval").exit_code == 0  # the trigger still fires: a new candidate, v3
    assert artifacts.pending_versions(root) == [3] and artifacts.load(root).version == 1
    assert invoke("artifacts", "approve", f"{root}@v2").exit_code == 2  # rejected stays rejected
    with pytest.raises(ArtifactError, match="rejected"):
        artifacts.load(f"{root}@v2")


def test_the_self_modification_cap_stops_improve_in_one_line(maze):
    root, runs, _ = maze
    (runs / "limits.toml").write_text("self_modifications = 1\n")
    ledger_of(runs, DEGRADED)
    assert improve(maze).exit_code == 0 and artifacts.load(root).version == 2
    result = improve(maze)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "self-modifications" in result.output and "limits.toml" in result.output
    assert not (root / "v3").exists()
    with Monitor.open(runs) as m:
        stop = m.ledger.events(kind="limit_stop")
    assert [e.detail["limit"] for e in stop] == ["self_modifications"]


def test_a_paused_run_directory_stops_improve_and_compile(maze):
    root, runs, ckpt = maze
    ledger_of(runs, DEGRADED)
    with Monitor.open(runs) as m:
        m.pause("operator", "looking at the ledger")
    for result in (improve(maze), invoke("compile", TASKSET, "--out", root, "--train", "2", "--dev", "5",
                                         "--run-dir", ckpt, "--monitor-dir", runs)):
        assert result.exit_code == 1 and "is paused" in result.output and "purpose-dspy resume" in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (root / "v2").exists()
