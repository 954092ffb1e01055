"""benchmarks/critic_accuracy.py --program on the rule LM (plumbing only, not a measurement): a tiny artifact
compiled on treasure-maze; the zero-shot and the compiled critic judge the same transitions, each Spearman has
a CI, compiled - zero-shot is paired and has the sign of the difference, and the cache cannot stand in."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import dspy
import pytest
from rule_lm import RuleEngine, _distance, rule_lms

from purpose_dspy import artifacts
from purpose_dspy.programs import PurposeAgent
from purpose_dspy.tasksets import load_taskset
from purpose_dspy.teleprompt import CompileConfig, PurposeTeleprompter, task_examples

ROOT = Path(__file__).resolve().parent.parent
TASKSET = ROOT / "tasksets" / "treasure-maze.toml"
METRICS = ("spearman_phi_progress", "sign_agreement", "reward_precision", "reward_recall")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("critic_accuracy_benchmark", ROOT / "benchmarks" / "critic_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> str:
    """A compile on 3 train / 2 dev maze seeds with the rule LM, saved as v1 (its gate refused it: a tie)."""
    ts = load_taskset(TASKSET)
    lms, _ = rule_lms()
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False))
    tp.compile(PurposeAgent(), trainset=task_examples(ts.tasks("train")[:3], max_steps=ts.max_steps),
               valset=task_examples(ts.tasks("dev")[:2], max_steps=ts.max_steps))
    assert tp.candidate.critic.judge.demos, "the compiled critic needs calibration demos to differ"
    root = tmp_path_factory.mktemp("artifacts") / "maze"
    artifacts.save_artifact(root, artifacts.components_of(tp.candidate, judge=tp.judge), tp.report,
                            lms={"actor": {"model": "local/rule-lm", "api_base": None}}, taskset=ts,
                            taskset_bytes=TASKSET.read_bytes())
    return f"{root}@v1"


def test_both_critics_judge_the_same_transitions_with_a_ci_each(bench, artifact, tmp_path, capsys):
    out = tmp_path / "results" / "critic.json"
    report = bench.main(["--program", artifact, "--rule-lm", "--episodes", "3", "--resamples", "200",
                         "--json", "--out", str(out)])
    capsys.readouterr()
    assert report["measurement"] is False and report["lm_response_cache"] is False
    assert report["env"] == "treasure-maze" and report["taskset"] == "treasure-maze" and report["split"] == "test"
    zero, compiled = report["critics"]["zero-shot"], report["critics"]["compiled"]
    assert zero["transitions"] == compiled["transitions"] == report["transitions"] > 0
    assert zero["lm_calls"] == compiled["lm_calls"] == report["transitions"]  # the raw guard asks every time
    assert zero["demos"] == 0 < compiled["demos"] and zero["fingerprint"] != compiled["fingerprint"]
    assert compiled["tokens"] > zero["tokens"]  # the compiled critic's demos reached its prompts
    for critic in (zero, compiled):
        for which in ("guarded", "raw"):
            lo, hi = critic[which]["spearman_ci"]
            assert lo <= critic[which]["spearman_phi_progress"] <= hi
    for which in ("guarded", "raw"):
        for metric in METRICS:
            assert set(report["compiled_minus_zero_shot"][which][metric]) == {"diff", "ci", "resamples"}
    assert "bootstrap over episodes" in report["ci_method"] and report["target"]["applies"] is False
    written = json.loads(out.read_text())
    assert "--program" in written["command"] and written["critics"].keys() == report["critics"].keys()


class DemoReader(RuleEngine):
    """The rule LM, but its critic scores the distance itself (backwards) unless demos are in the prompt."""

    def complete(self, request):
        self.with_demos = len(request.messages) > 1  # the compact adapter puts each demo in a user/assistant pair
        return super().complete(request)

    def _answer(self, system, f):
        role, answer = super()._answer(system, f)
        if role == "critic" and not self.with_demos:
            before, after = _distance(f.get("state_before", "")), _distance(f.get("state_after", ""))
            answer = {**answer, "phi_before": min(10, before or 0), "phi_after": min(10, after or 0)}
        return role, answer


def test_the_difference_is_compiled_minus_zero_shot(bench, artifact, monkeypatch, capsys):
    lm = dspy.LM("local/rule-lm", engine=DemoReader(), temperature=0.0, max_tokens=256, cache=False, num_retries=0)
    monkeypatch.setattr(bench, "critic_lm", lambda args, agent: (lm, "local/rule-lm"))
    report = bench.main(["--program", artifact, "--episodes", "3", "--resamples", "200", "--json"])
    capsys.readouterr()
    zero, compiled = (report["critics"][n]["raw"]["spearman_phi_progress"] for n in ("zero-shot", "compiled"))
    assert zero < 0 < compiled
    diff = report["compiled_minus_zero_shot"]["raw"]["spearman_phi_progress"]
    assert diff["diff"] == pytest.approx(compiled - zero, abs=1e-3) and diff["ci"][0] > 0


def test_the_response_cache_is_refused_with_program(bench, artifact, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--program", artifact, "--rule-lm", "--cache"])
    assert exit_.value.code == 2 and "--cache with --program" in capsys.readouterr().err
