"""benchmarks/optimizers.py's GEPA arm on the rule LM (plumbing only, not a measurement): the compile stays
within --budget, every row is paired against zero-shot on both splits, and an instruction GEPA evolves
reaches the actor's prompt at test time."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dspy
import pytest
from rule_lm import _OPEN, RuleEngine

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--taskset", str(ROOT / "tasksets" / "treasure-maze.toml"), "--train", "3", "--dev", "2", "--test", "3",
        "--budget", "120", "--rule-lm", "--arms", "zero-shot,gepa", "--splits", "test,train", "--actor-only", "--json"]
MAGIC = "Step toward the treasure's row and column."


@pytest.fixture
def bench():
    spec = importlib.util.spec_from_file_location("optimizers_benchmark", ROOT / "benchmarks" / "optimizers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows_of(report: dict) -> dict[str, dict]:
    return {row["arm"]: row for row in report["arms"]}


def test_gepa_stays_within_the_budget_and_every_row_is_paired(bench, capsys):
    # A 3-step limit: some episodes fail, so GEPA reflects (the rule LM's answer does not parse: no proposal).
    report = bench.main([*ARGS, "--max-steps", "3"])
    capsys.readouterr()
    gepa = rows_of(report)["gepa"]
    if "skipped" in gepa:
        assert gepa["skipped"].strip()
        return
    assert 0 < gepa["compile"]["lm_calls"] <= 120
    assert gepa["compile"]["lm_calls"] == gepa["rollout_calls"] + gepa["reflection_calls"]
    assert gepa["reflection_calls"] > 0 and gepa["gepa"]["max_metric_calls"] == 120 // 3
    assert len(gepa["evolved_instruction"]) <= 300
    for row in report["arms"]:
        for split in ("test", "train"):
            assert "paired" in row[split], (row["arm"], split)
            if row["arm"] != "zero-shot":
                assert set(row[split]["paired"]["zero-shot"]) == {"n", "wins", "losses", "sign_test_p"}


class ReflectingEngine(RuleEngine):
    """The rule LM, but its actor only heads for the treasure when its instructions say MAGIC (else it takes
    the first open direction), and it answers GEPA's proposer with MAGIC."""

    def __init__(self) -> None:
        super().__init__()
        self.reflections: list[str] = []

    def _answer(self, system: str, f: dict[str, str]):
        if "new_instruction" in system:
            self.reflections.append(f.get("examples_with_feedback", ""))
            return "optimizer", {"new_instruction": MAGIC}
        role, answer = super()._answer(system, f)
        if role == "actor" and MAGIC not in system:
            opened = _OPEN.search(f.get("observation", ""))
            answer = {**answer, "action": opened[1].split(",")[0].strip() if opened else "north"}
        return role, answer


def test_an_evolved_instruction_reaches_the_actor(bench, monkeypatch, capsys):
    engine = ReflectingEngine()
    lm = dspy.LM("local/rule-lm", engine=engine, temperature=0.0, max_tokens=256, cache=False, num_retries=0)
    monkeypatch.setattr(bench, "scripted_lms", lambda name: dict.fromkeys(("actor", "critic", "judge", "optimizer"), lm))
    rows = rows_of(bench.main(ARGS))
    capsys.readouterr()
    gepa, zero = rows["gepa"], rows["zero-shot"]
    assert gepa["instructions_evolved"] and gepa["evolved_instruction"] == MAGIC
    assert gepa["compile"]["lm_calls"] <= 120
    assert engine.reflections and "Actions:" in engine.reflections[0]  # the trajectory feedback reached GEPA
    assert gepa["test"]["successes"] > zero["test"]["successes"]
