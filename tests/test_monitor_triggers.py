"""Trigger rules over the ledger: a degradation fires within the rule's window, a stable run fires nothing.

The scenario runs real treasure-maze episodes (the rule LM's greedy walker, about 60 % success: a noisy
baseline) recorded through a monitor's guard, then a broken actor (every answer invalid) from task N on.
The rules are also checked on records directly: each kind, the minimum sample, noise, what does not count.
"""

import random

import pytest
from conftest import scripted_lms
from rule_lm import rule_lms

from purpose_dspy import Orchestrator, RunConfig, Task, make_env
from purpose_dspy.errors import UsageError
from purpose_dspy.monitor import DEFAULT_RULES, Monitor, TaskRecord, TriggerRule
from purpose_dspy.monitor.triggers import evaluate
from purpose_dspy.programs import PurposeAgent

N, WINDOW = 30, 10
RULES = f"""
[[rule]]
name = "success-drop"
kind = "success_drop"
window = {WINDOW}
min_sample = 20
ratio = 0.95
"""


def scenario(tmp_path, degrade_after: int | None, tasks: int = N + WINDOW) -> list[list[str]]:
    """Run `tasks` episodes (broken actor from `degrade_after` on); the rules that fire after each one."""
    (tmp_path / "triggers.toml").write_text(RULES)
    monitor = Monitor.open(tmp_path)
    good, _ = rule_lms()
    broken = scripted_lms(actor=[{"thought": "t", "action": "dig"}] * 10_000, critic=[])
    env = make_env("treasure-maze")
    fired = []
    for i in range(tasks):
        lms = broken if degrade_after is not None and i >= degrade_after else good
        guard = monitor.guard("treasure-maze", version="v1", source="eval")
        Orchestrator(PurposeAgent(), lms, RunConfig(max_steps=12, score_phi=False), limit_guard=guard).run(
            env, Task(env_id="treasure-maze", seed=i, split="test"))
        fired.append([f.rule for f in monitor.triggers("treasure-maze")])
    assert len(monitor.ledger.tasks("treasure-maze")) == tasks
    return fired


def test_a_degradation_after_n_tasks_fires_the_success_trigger_within_the_window(tmp_path):
    fired = scenario(tmp_path, degrade_after=N)
    first = next(i + 1 for i, names in enumerate(fired) if "success-drop" in names)  # tasks recorded when it fired
    assert N < first <= N + WINDOW
    assert not any(fired[:N])


def test_a_stable_run_of_the_same_length_fires_nothing(tmp_path):
    fired = scenario(tmp_path, degrade_after=None)
    assert fired == [[]] * (N + WINDOW)
    wins = [r.success for r in Monitor.open(tmp_path).ledger.tasks()]
    assert 0.3 < sum(wins) / len(wins) < 0.9  # a noisy baseline, not a trivially perfect one


def rec(i: int, success: bool, *, tokens: int = 1000, agreement: float | None = None, flags: int = 0,
        source: str = "eval", stop: str | None = "done", program: str = "p") -> TaskRecord:
    return TaskRecord(program=program, version="v1", source=source, task_id=f"t/{i}", success=success, steps=5,
                      phi_gain=None, lm_calls=10, tokens=tokens, seconds=1.0, critic_flags=flags,
                      critic_env_agreement=agreement, stop_reason=stop, at=float(i))


def first_firing(rule: TriggerRule, records: list[TaskRecord]) -> int | None:
    """How many records had been written when `rule` first fired (None: never)."""
    return next((n for n in range(1, len(records) + 1) if evaluate([rule], records[:n], "p")), None)


SUCCESS = TriggerRule(name="s", kind="success_drop", window=20, min_sample=20, ratio=0.95)


def test_the_minimum_sample_is_respected():
    collapse = [rec(i, True) for i in range(19)] + [rec(19 + i, False) for i in range(30)]
    assert first_firing(SUCCESS, collapse[:39]) is None  # 19 earlier tasks: one short of min_sample
    assert first_firing(SUCCESS, collapse) == 40  # the first moment both parts are full
    short = [rec(i, True) for i in range(40)] + [rec(40 + i, False) for i in range(10)]
    # after a perfect record: 6 failures in the last 20 are 2.99 standard errors down (not yet), 7 are 3.3
    assert first_firing(SUCCESS, short) == 47
    assert first_firing(SUCCESS.model_copy(update={"min_sample": 100}), short) is None


def test_noise_alone_does_not_fire_the_success_rule_though_a_bare_ratio_would():
    rng = random.Random(7)
    records = [rec(i, rng.random() < 0.7) for i in range(400)]
    assert first_firing(SUCCESS, records) is None
    bare = [n for n in range(40, 401) if sum(r.success for r in records[n - 20:n]) / 20
            < 0.95 * sum(r.success for r in records[:n - 20]) / (n - 20)]
    assert bare  # the ratio alone would have fired on chance dips; the z-test keeps them out


def test_tokens_per_success_agreement_and_flag_streak_rules():
    tokens = TriggerRule(name="tok", kind="tokens_per_success_rise", window=10, min_sample=10, ratio=1.2)
    costlier = [rec(i, i % 2 == 0, tokens=1000) for i in range(20)] + [rec(20 + i, i % 2 == 0, tokens=1300)
                                                                      for i in range(10)]
    assert first_firing(tokens, costlier[:20]) is None
    (firing,) = evaluate([tokens], costlier, "p")
    assert firing.value > firing.threshold and "tokens per success" in firing.reason
    assert evaluate([tokens], [rec(i, i % 2 == 0, tokens=1100) for i in range(30)], "p") == []  # +10 %: no

    agree = TriggerRule(name="agree", kind="agreement_drop", window=10, min_sample=10, ratio=0.9)
    falling = [rec(i, True, agreement=0.8) for i in range(10)] + [rec(10 + i, True, agreement=0.5) for i in range(10)]
    assert evaluate([agree], falling, "p")[0].rule == "agree"
    unscored = [rec(i, True) for i in range(10)] + falling[10:]  # no agreement earlier: nothing to compare
    assert evaluate([agree], unscored, "p") == []

    streak = TriggerRule(name="flags", kind="flag_streak", window=3, min_sample=1)
    assert evaluate([streak], [rec(0, True, flags=1), rec(1, True), rec(2, True, flags=2), rec(3, True, flags=1)],
                    "p") == []
    assert len(evaluate([streak], [rec(i, True, flags=1) for i in range(3)], "p")) == 1


def test_what_does_not_count_and_other_programs():
    base = [rec(i, True) for i in range(20)]
    compile_rollouts = [rec(20 + i, False, source="compile") for i in range(20)]
    limit_stops = [rec(40 + i, False, stop="limit:paused") for i in range(20)]
    other = [rec(60 + i, False, program="q") for i in range(20)]
    assert evaluate([SUCCESS], base + compile_rollouts + limit_stops + other, "p") == []
    assert evaluate([SUCCESS], base + compile_rollouts + limit_stops + other, "q") == []  # q has no baseline


def test_triggers_toml_replaces_the_defaults_and_errors_name_the_field(tmp_path):
    assert Monitor.open(tmp_path / "none").rules == DEFAULT_RULES
    assert {r.kind for r in DEFAULT_RULES} == {"success_drop", "tokens_per_success_rise", "agreement_drop",
                                               "flag_streak"}
    (tmp_path / "triggers.toml").write_text(RULES)
    m = Monitor.open(tmp_path)
    assert [r.name for r in m.rules] == ["success-drop"]
    for r in [rec(i, True) for i in range(20)] + [rec(20 + i, False) for i in range(10)]:
        m.ledger.record_task(r.model_copy(update={"program": "treasure-maze"}))
    (firing,) = m.triggers("treasure-maze", record=True)
    assert firing.window == WINDOW and "0/10" in firing.reason
    assert [e.detail["rule"] for e in m.ledger.events(kind="trigger")] == ["success-drop"]
    for text, field, line in (('[[rule]]\nname = "x"\nkind = "vibes"\n', "kind", 3),
                              ('[[rule]]\nname = "x"\nkind = "success_drop"\nwindow = 0\n', "window", 4),
                              ('[[rule]]\nname = "x"\nkind = "flag_streak"\nwhen = 1\n', "when", 4)):
        (tmp_path / "triggers.toml").write_text(text)
        with pytest.raises(UsageError, match=rf"triggers.toml: line {line}: rule.0.{field}"):
            Monitor.open(tmp_path).triggers("p")  # read when the triggers are needed (pause/resume never do)
