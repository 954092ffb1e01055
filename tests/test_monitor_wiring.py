"""The monitor wired into `compile` and `eval` (issue 20), and a kill switch no broken TOML file can block.

`compile --monitor-dir` holds its rollouts to the run directory's limits and records each (source "compile": the
parent's as the parent version, the compiled program's dev runs as the version being written); a pause or a budget
stops it between steps with a typed one-line stop, nothing written, and the stopped rollout is not checkpointed (the
resumed compile runs it again). `eval --monitor-dir` records one task record per task (source "eval"). `pause` and
`resume` work whatever limits.toml and triggers.toml hold; what needs them fails in one line naming file and line.

Scripted: rule_lm.py's LM on treasure-maze (train 2, dev 2), through click's runner.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from rule_lm import rule_lms

import purpose_dspy.jobs as job
import purpose_dspy.lm as lm_module
from purpose_dspy.cli import main
from purpose_dspy.environments.treasure_maze import TreasureMaze
from purpose_dspy.errors import UsageError
from purpose_dspy.monitor import Monitor
from purpose_dspy.monitor.tomlfile import line_of
from purpose_dspy.teleprompt import PurposeTeleprompter

TASKSET = "tasksets/treasure-maze.toml"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """The rule LM behind every compile and eval; the artifact root, run directory and checkpoint directory."""
    lms, engine = rule_lms()
    monkeypatch.setattr(job, "build_role_lms", lambda config, roles=(): {r: lms[r] for r in roles})
    monkeypatch.setattr(lm_module, "build_lm", lambda spec, role="any": lms[role])
    return engine, tmp_path / "maze", tmp_path / "runs", tmp_path / "ckpt"


def compile_(root, runs, ckpt, *extra):
    return invoke("compile", TASKSET, "--out", root, "--train", "2", "--dev", "2", "--run-dir", ckpt,
                  "--monitor-dir", runs, *extra)


def error_line(result) -> str:
    """The one line an expected failure prints (after the progress bars' carriage returns), and only one."""
    errors = [part for part in re.split(r"[\r\n]", result.output) if "error" in part]
    assert len(errors) == 1 and errors[0].startswith("purpose-dspy: error: "), result.output
    return errors[0]


def tasks(runs, **where):
    with Monitor.open(runs) as m:
        return m.ledger.tasks(**where)


def test_compile_records_its_rollouts_and_eval_records_each_task(setup):
    _, root, runs, ckpt = setup
    result = compile_(root, runs, ckpt, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    records = tasks(runs, program="maze")
    assert {r.source for r in records} == {"compile"} and out["version"] == 1
    dev = [(r.version, r.split) for r in records if r.split == "dev"]
    # the parent (zero-shot: None) before, the compiled program (v1, the version written) after
    assert dev == [(None, "dev")] * out["before"]["n"] + [("v1", "dev")] * out["after"]["n"]
    train = [r for r in records if r.split == "train"]
    assert len(train) >= out["train"]["n"] == 2 and {r.version for r in train} == {None}
    rollouts = [out["by_role"][role] for role in ("actor", "critic")]  # not the meta-judge's or distiller's calls
    assert sum(r.lm_calls for r in records) == sum(x["calls"] for x in rollouts) < out["lm_calls"]
    assert sum(r.tokens for r in records) == sum(x["prompt_tokens"] + x["completion_tokens"] for x in rollouts)

    before = len(records)
    evaluated = invoke("eval", f"{root}@v1", "--split", "test", "--tasks", "3", "--monitor-dir", runs, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)
    new = tasks(runs)[before:]
    assert [(r.program, r.version, r.source, r.split) for r in new] == [("maze", "v1", "eval", "test")] * 3
    assert [r.task_id for r in new] == [t["task_id"] for t in metrics["tasks"]]
    assert [r.success for r in new] == [t["success"] for t in metrics["tasks"]]
    assert sum(r.lm_calls for r in new) == metrics["lm_calls"] > 0


class _PausingMaze(TreasureMaze):
    """The real maze; the first train episode's reset pauses the run directory (an operator, mid-compile)."""

    def __init__(self, runs, fired: dict[str, bool]) -> None:
        super().__init__()
        self.runs, self.fired = runs, fired

    def reset(self, task):
        if task.split == "train" and not self.fired["paused"]:
            self.fired["paused"] = True
            with Monitor.open(self.runs) as m:
                m.pause("operator:test", "looking at the train rollouts")
        return super().reset(task)


def test_a_pause_stops_a_compile_between_steps_and_the_resumed_compile_reruns_the_stopped_rollout(setup, monkeypatch):
    _, root, runs, ckpt = setup

    fired = {"paused": False}

    class Pausing(PurposeTeleprompter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, make_environment=lambda env_id: _PausingMaze(runs, fired), **kwargs)

    monkeypatch.setattr(job, "PurposeTeleprompter", Pausing)
    stopped = compile_(root, runs, ckpt)
    assert stopped.exit_code == 1, stopped.output
    assert "is paused" in error_line(stopped) and "purpose-dspy resume" in error_line(stopped)
    assert not root.exists() or not list(root.glob("v*"))  # nothing written
    first = tasks(runs)
    assert [(r.split, r.stop_reason) for r in first][-1] == ("train", "limit:paused")
    assert [r.split for r in first] == ["dev", "dev", "train"]  # the second train task never started
    assert first[-1].steps == 0  # stopped before its first step
    with Monitor.open(runs) as m:
        stops = m.ledger.events(kind="limit_stop")
        assert [(e.detail["limit"], e.detail["source"]) for e in stops] == [("paused", "compile")]
        m.resume("operator:test")

    again = compile_(root, runs, ckpt, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["version"] == 1
    rerun = tasks(runs)[len(first):]
    # the dev baseline came back from the checkpoint (not run, not recorded again); the stopped train task ran again
    assert rerun[0].split == "train" and rerun[0].task_id == first[-1].task_id and rerun[0].stop_reason != "limit:paused"
    assert sum(r.split == "dev" and r.version is None for r in rerun) == 0


def test_a_budget_limit_stops_a_compile_in_one_line_and_writes_nothing(setup):
    engine, root, runs, ckpt = setup
    runs.mkdir()
    (runs / "limits.toml").write_text("lm_calls_per_run = 3\n")
    result = compile_(root, runs, ckpt)
    assert result.exit_code == 1, result.output
    assert "3 LM calls spent of the 3 this run may spend" in error_line(result)
    assert sum(engine.calls.values()) == 3  # actor-only dev baseline: one call a step
    assert not root.exists() or not list(root.glob("v*"))
    with Monitor.open(runs) as m:
        assert [e.detail["limit"] for e in m.ledger.events(kind="limit_stop")] == ["lm_calls_per_run"]
        assert m.ledger.tasks()[-1].stop_reason == "limit:lm_calls_per_run"  # the stopped task is committed


BAD_LIMITS = "lm_calls_per_run = 5\ntokens_per_run = = 7\n"
BAD_TRIGGERS = '[[rule]]\nname = "a"\nkind = "success_drop"\n\n[[rule]]\nname = "b"\nkind = "flag_streak"\nwindow = -1\n'


def test_the_kill_switch_works_whatever_limits_and_triggers_hold(setup, tmp_path):
    engine, root, runs, ckpt = setup
    runs.mkdir()
    (runs / "limits.toml").write_text(BAD_LIMITS)
    (runs / "triggers.toml").write_bytes(b"\xff\xfe not text")
    paused = invoke("pause", runs, "--why", "odd", "--who", "operator:ana")
    assert paused.exit_code == 0, paused.output
    assert invoke("resume", runs).exit_code == 0
    with Monitor.open(runs) as m:
        assert [line["change"] for line in m.audit.lines()] == ["paused", "resumed"] and not m.paused()
    # what needs the files fails in one line naming file and line, before anything runs
    result = compile_(root, runs, ckpt)
    assert result.exit_code == 2, result.output
    assert f"{runs / 'limits.toml'} is not TOML: " in error_line(result) and "line 2" in error_line(result)
    assert sum(engine.calls.values()) == 0
    with pytest.raises(UsageError, match=r"triggers.toml cannot be read \(UnicodeDecodeError"):
        Monitor.open(runs).triggers("maze")
    (runs / "triggers.toml").write_text(BAD_TRIGGERS)
    with pytest.raises(UsageError, match=r"triggers.toml: line 8: rule.1.window: .*greater than 0"):
        Monitor.open(runs).triggers("maze")
    (runs / "limits.toml").write_text("lm_calls_per_run = 5\n\ndeny_actions = [\n  'ok',\n  '(bad',\n]\n")
    with pytest.raises(UsageError, match=r"limits.toml: line 3: deny_actions: .*not a regular expression"):
        Monitor.open(runs).guard("maze")


def test_line_of_places_keys_tables_and_missing_fields():
    text = 'a = 1\n"b" = 2\n\n[[rule]]\nname = "x"\n\n[[rule]]  # second\nname = "y"\nwindow = 0\n[[rule]]\n'
    assert line_of(text, ("a",)) == 1 and line_of(text, ("b",)) == 2
    assert line_of(text, ("rule", 1, "window")) == 9 and line_of(text, ("rule", 0, "name")) == 5
    assert line_of(text, ("rule", 0, "kind")) == 4  # missing: the table's header
    assert line_of(text, ("rule", 2, "name")) == 10  # the third table has no name
    assert line_of(text, ("nowhere",)) is None and line_of(text, ()) is None
