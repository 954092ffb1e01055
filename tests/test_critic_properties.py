"""Property tests of the purpose critic behind its safeguards (hypothesis), with the functions users run.

Each test calls a property of `purpose_dspy.testing.properties` (the same functions
`CriticPropertySuite` and `critic-check` run) on real states drawn by `purpose_dspy.testing.strategies`:
treasure-maze walks, and `Pantry`, a small environment defined here whose text or JSON observations
carry a volatile turn counter. The critic is a real `PurposeCritic` whose LM is a DummyLM answering
what hypothesis draws: any scores, any evidence, any confidence, as an adversarial or confused model
might. The safeguards must hold the properties whatever it says. `pytest --ablate <safeguard>`
switches one safeguard off; `test_each_safeguard_is_load_bearing` checks that every removal makes a
property here fail. The real embedded model runs the same properties in
`tests/test_testing_module.py` (the example suite).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import dspy
import pytest
from dspy.utils.dummies import DummyLM
from hypothesis import given, settings
from hypothesis import strategies as st
from pantry import Pantry

from purpose_dspy.programs import PurposeCritic
from purpose_dspy.safeguards import SAFEGUARDS, PhiStore, SafeguardConfig
from purpose_dspy.safeguards.canonical import canonical_text
from purpose_dspy.testing import GuardedCritic, Step, WalkSource, score_walk
from purpose_dspy.testing import properties as P
from purpose_dspy.testing.strategies import injected_steps, rewritten_steps, transitions, walks
from purpose_dspy.types import State

FABRICATED = ("treasure", "unlocked", "victory", "gleaming", "achieved", "vault", "golden", "crown")
MAZE = WalkSource("treasure-maze", params={"size": 6})


PANTRY = {mode: WalkSource(Pantry, params={"json": mode == "json"}) for mode in ("text", "json")}

phi = st.floats(0, 10, allow_nan=False).map(lambda x: round(x, 2))
wild = st.floats(-20, 30, allow_nan=False).map(lambda x: round(x, 2))


def answer(before: float, after: float, evidence: str, confidence: float = 1.0) -> dict:
    return {"evidence": evidence, "reasoning": "drawn", "phi_before": before, "phi_after": after,
            "confidence": confidence}


def guarded(ablated, answers: list[dict], base: SafeguardConfig | None = None, volatile=()) -> GuardedCritic:
    """A PurposeCritic (one attempt per answer) whose DummyLM says `answers` in turn, behind the safeguards."""
    lm = DummyLM(list(answers) + [answer(0, 0, "spare")] * 2, adapter=dspy.JSONAdapter())
    return GuardedCritic(PurposeCritic(max_attempts=1), lm, (base or SafeguardConfig()).without(*ablated),
                         volatile=volatile, namespace="dummy")


SURE = st.just(1.0)


def quoting(data, steps: list[Step], scores=phi, confidence=SURE) -> list[dict]:
    """Drawn answers that quote the new state of each step (true evidence, any numbers)."""
    return [answer(data.draw(scores), data.draw(scores), s.after.observation, data.draw(confidence)) for s in steps]


# -- consistency ---------------------------------------------------------------------------------

@given(step=transitions(MAZE), data=st.data())
def test_identical_states_get_identical_phi(ablated, step, data):
    """Two runs sharing a store judge the same step: one Φ, whatever the second answer says."""
    P.identical_states_identical_phi(guarded(ablated, quoting(data, [step, step])), step).check()


@given(walk=walks(MAZE, max_steps=12, min_steps=2), data=st.data())
def test_one_state_has_one_phi_along_a_walk_with_revisits(ablated, walk, data):
    """Along a walk that comes back to states it has seen, and in a second run of it, a state keeps one Φ."""
    store, seen = PhiStore(), {}
    for _run in range(2):
        scores = score_walk(guarded(ablated, quoting(data, list(walk.steps))), walk.steps, store)
        for step, s in zip(walk.steps, scores):
            seen.setdefault(canonical_text(step.before.observation), set()).add(s.phi_before)
            seen.setdefault(canonical_text(step.after.observation), set()).add(s.phi_after)
    assert all(len(values) == 1 for values in seen.values()), seen


@pytest.mark.parametrize("mode", ["text", "json"])
@given(data=st.data())
def test_phi_is_invariant_under_canonical_rewrites(ablated, mode, data):
    """Whitespace, JSON key order and layout, and the volatile turn counter do not change Φ."""
    source = PANTRY[mode]
    step = data.draw(transitions(source, max_steps=4), label="step")
    rewritten = data.draw(rewritten_steps(step, source.volatile), label="rewritten")
    critic = guarded(ablated, quoting(data, [step, rewritten]), volatile=source.volatile)
    P.phi_invariant_under_rewrites(critic, step, rewritten).check()


# -- ranges and the reward rule ------------------------------------------------------------------

@given(step=transitions(MAZE), data=st.data())
def test_outputs_always_in_range_and_reward_only_when_phi_rises(ablated, step, data):
    """Out-of-range answers, as a confused model gives them, never reach a score."""
    critic = guarded(ablated, quoting(data, [step, step], wild, st.floats(-1, 2, allow_nan=False)))
    P.outputs_in_range(critic, step).check()
    P.reward_iff_phi_rises(critic, step).check()


# -- evidence, confidence, injection --------------------------------------------------------------

@given(step=transitions(MAZE), data=st.data())
def test_no_evidence_no_reward(ablated, step, data):
    """Evidence that quotes nothing in the states earns nothing, however sure the critic says it is."""
    made_up = data.draw(st.lists(st.sampled_from(FABRICATED), min_size=3, max_size=8).map(" ".join))
    critic = guarded(ablated, [answer(data.draw(phi), data.draw(phi), made_up, data.draw(st.floats(0, 1)))])
    P.no_evidence_no_reward(critic, step).check()


@given(step=transitions(MAZE), data=st.data())
def test_no_change_no_reward(ablated, step, data):
    P.no_change_no_reward(guarded(ablated, quoting(data, [step])), step).check()


@given(step=transitions(MAZE), data=st.data())
def test_low_confidence_counts_zero(ablated, step, data):
    P.low_confidence_counts_zero(guarded(ablated, quoting(data, [step], confidence=st.floats(0, 0.49))), step).check()


@given(step=transitions(MAZE).flatmap(injected_steps), data=st.data())
def test_injected_text_never_raises_phi(ablated, step, data):
    """A step into or out of a state that addresses the judge never raises Φ, even with true quotes."""
    P.injected_text_never_raises_phi(guarded(ablated, quoting(data, [step])), step).check()


# -- anomaly and normalisation --------------------------------------------------------------------

@given(step=transitions(MAZE), before=phi, after=phi)
def test_anomaly_flags_fire_exactly_above_the_threshold(ablated, step, before, after):
    critic = guarded(ablated, [answer(before, after, step.after.observation)] * 2)
    P.single_step_is_bounded(critic, step).check()
    s = critic.score(step)
    cfg = SafeguardConfig()
    limit, top = cfg.anomaly_abs, cfg.top_phi
    # The top of the scale is the environment's word: Φ above `top_phi` only for a state it reports a success,
    # so Φ(s) is capped before the jump is measured and Φ(s') after it is damped.
    phi_before = before if step.before.success else min(before, top)
    jump = after - phi_before
    assert s.phi_before == pytest.approx(phi_before, abs=1e-6)
    assert ("anomaly_abs" in s.flags) == (abs(jump) > limit)
    damped = max(-limit, min(limit, jump))
    ceiling = 10.0 if step.after.success else top
    assert s.delta == pytest.approx(min(damped, ceiling - phi_before), abs=1e-6)


@given(walk=walks(MAZE, max_steps=40, min_steps=1), data=st.data())
def test_sum_of_deltas_is_bounded_without_the_cache(ablated, walk, data):
    """Normalisation alone (Φ cache off) keeps Σ delta within the 0-10 scale for any length."""
    critic = guarded(ablated, quoting(data, list(walk.steps)), base=SafeguardConfig().without("cache"))
    P.walk_phi_is_bounded(critic, walk).check()


@settings(max_examples=20)
@given(steps=st.integers(5, 60), rise=st.floats(0.1, 2.0))
def test_a_critic_that_always_says_better_cannot_inflate(ablated, steps, rise):
    """The classic inflation: every step re-judged as 5 -> 5 + rise, through new rooms. All safeguards on: bounded."""
    rooms = [State(observation=f"You are in room {i}. the apple is on the table.") for i in range(steps + 1)]
    path = [Step("cook the meal", a, "go", b) for a, b in itertools.pairwise(rooms)]
    scores = score_walk(guarded(ablated, [answer(5, round(5 + rise, 2), s.after.observation) for s in path]), path)
    assert sum(s.reward for s in scores) <= 10 + 1e-6


# -- every safeguard is caught when removed -------------------------------------------------------

CAUGHT_BY = {
    # test_no_change_no_reward is no longer the cache's alone: a rise must quote text that changed, which a step
    # from a state to itself has none of (the evidence safeguard), so it holds with either one switched off.
    "cache": ["test_identical_states_get_identical_phi", "test_one_state_has_one_phi_along_a_walk_with_revisits",
              "test_phi_is_invariant_under_canonical_rewrites"],
    "evidence": ["test_no_evidence_no_reward"],
    "injection": ["test_injected_text_never_raises_phi"],
    "confidence": ["test_low_confidence_counts_zero"],
    "anomaly": ["test_anomaly_flags_fire_exactly_above_the_threshold"],
    "normalise": ["test_sum_of_deltas_is_bounded_without_the_cache"],
}


@pytest.mark.parametrize("safeguard", SAFEGUARDS)
def test_each_safeguard_is_load_bearing(safeguard, ablated):
    if ablated:
        pytest.skip("already running with a safeguard removed")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__)), "-q", "-p", "no:cacheprovider", "-m", "not local_lm",
         "-k", "not load_bearing", "--ablate", safeguard],
        capture_output=True, text=True, cwd=Path(__file__).parent.parent, timeout=600, check=False,
        env={**os.environ, "HYPOTHESIS_PROFILE": "ablation"},
    )
    failed = {line.split("::")[1].split()[0].split("[")[0] for line in run.stdout.splitlines()
              if line.startswith("FAILED")}
    assert run.returncode == 1, run.stdout[-2000:]
    missed = set(CAUGHT_BY[safeguard]) - failed
    assert not missed, f"removing {safeguard} went unnoticed by {missed}"
