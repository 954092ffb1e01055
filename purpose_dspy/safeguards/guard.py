"""CriticGuard: the critic's safeguards, applied in Python around one raw judgment.

Order, for a transition s -> s' inside a trajectory:

1. cache      Φ(s) and Φ(s') come from the `PhiStore` when the canonical state was scored before
              (if both are known the LM is not called at all); a step whose canonical states are
              identical changes nothing. New values are settled into the store at the end.
2. normalise  Φ(s) is the Φ the trajectory already holds for s (the previous Φ_after), not a fresh
              re-judgment, so the deltas of a trajectory sum to Φ_end - Φ_start and stay within the
              0-10 scale however long it runs. (A re-judging critic that says 5 -> 6 at every step
              would otherwise collect +1 per step forever.)
3. injection  text that addresses the judge in s or s' is flagged; such a step never raises Φ.
4. evidence   a non-zero delta needs a quote of at least `evidence_min_chars` from s or s'; a rise needs
              one of text that changed: the sentence of s' it lies in is not in s, and it is no
              instruction to the judge (`unchanged_evidence`).
5. confidence a non-zero delta below the confidence threshold counts 0.
6. anomaly    a jump too large in absolute terms or against the trajectory's recent deltas (z-score)
              is flagged and damped.
7. top        Φ above `top_phi` only for a state the environment reports a success (`State.success`);
              any other is capped at it (`capped_no_success`): a forged "You found the treasure!" is text.

An unscored answer settles nothing and carries the run's current Φ on both sides (`phi_prev`; on a
first step the stored Φ(s)), never a number the critic carried from elsewhere. Reward is not made
here: it counts only a new high of Φ in the run (`PurposeScore.phi_peak`, stamped by the step loop).

Each step records the safeguards that fired in `PurposeScore.flags`, and the LM's own numbers in
`raw_phi_before` / `raw_phi_after`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from purpose_dspy.safeguards.anomaly import check_jump
from purpose_dspy.safeguards.canonical import state_key
from purpose_dspy.safeguards.config import SafeguardConfig
from purpose_dspy.safeguards.evidence import evidence_in_states, evidence_of_change
from purpose_dspy.safeguards.injection import find_injection
from purpose_dspy.safeguards.phi_store import PhiStore
from purpose_dspy.types import PurposeScore, State

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Known:
    """What step 1 (cache) found: the store keys of s and s' (None with the cache off), the Φ the
    store already holds for each (None if not scored before), and whether both are one canonical state."""

    key_b: str | None = None
    key_a: str | None = None
    phi_b: float | None = None
    phi_a: float | None = None
    same: bool = False


class CriticGuard:
    """Turns raw critic judgments into trustworthy scores. One guard serves many trajectories."""

    def __init__(
        self,
        config: SafeguardConfig | None = None,
        store: PhiStore | None = None,
        namespace: str = "",
        volatile: Sequence[str] = (),
    ) -> None:
        self.config = config or SafeguardConfig()
        self.store = store if store is not None else PhiStore()
        # Φ values belong to one critic (LM + prompt) under one safeguard setting; another has its own.
        self.namespace = f"{namespace}|{self.config.model_dump_json()}"
        self.volatile = tuple(volatile)

    def score(
        self,
        judge: Callable[[], PurposeScore],
        *,
        purpose: str,
        before: State,
        after: State,
        phi_prev: float | None = None,
        history: Sequence[float] = (),
    ) -> PurposeScore:
        """Score s -> s'. `judge` asks the LM (called only if needed); `phi_prev` is the trajectory's
        current Φ (None on its first step) and `history` its earlier deltas."""
        known = self._look_up(purpose, before, after)  # 1. cache
        if known.phi_b is not None and known.phi_a is not None:
            return PurposeScore(
                phi_before=known.phi_b, phi_after=known.phi_a, evidence="", reasoning="Φ of both states already settled",
                flags=("cached",),  # no LM call: both numbers come from the store
            )
        raw = judge()
        if "unscored" in raw.flags:
            return self._unscored(raw, known, phi_prev, before, after)
        flags: list[str] = []
        phi_b = self._phi_before(raw, known, phi_prev, before, flags)  # 1. cache, 2. normalise, 7. top
        phi_a = self._phi_after(raw, known, phi_b, before, after, history, flags)  # 1. cache, 3-7. the gates
        return PurposeScore.model_validate(
            {
                **raw.model_dump(), "phi_before": phi_b, "phi_after": phi_a, "flags": tuple(dict.fromkeys(flags)),
                "raw_phi_before": raw.phi_before, "raw_phi_after": raw.phi_after,
            }
        )

    def _look_up(self, purpose: str, before: State, after: State) -> _Known:
        """Step 1 (cache): the canonical keys of s and s' and the Φ the store already holds for them."""
        if not self.config.on("cache"):
            return _Known()
        key_b = state_key(self.namespace, purpose, before.observation, self.volatile)
        key_a = state_key(self.namespace, purpose, after.observation, self.volatile)
        same = key_a == key_b
        phi_b = self.store.get(key_b)
        phi_a = phi_b if same else self.store.get(key_a)
        return _Known(key_b, key_a, phi_b, phi_a, same)

    def _unscored(
        self, raw: PurposeScore, known: _Known, phi_prev: float | None, before: State, after: State
    ) -> PurposeScore:
        """No Φ to gate: the run's current Φ on both sides (`phi_prev`, else the stored Φ(s), else the
        critic's own), nothing settled; still say when a state addressed the judge."""
        phi = next(p for p in (phi_prev, known.phi_b, raw.phi_before) if p is not None)
        hit = self.config.on("injection") and (find_injection(before.observation) or find_injection(after.observation))
        return raw.model_copy(update={"phi_before": phi, "phi_after": phi,
                                      "flags": (*raw.flags, "injection") if hit else raw.flags})

    def _phi_before(
        self, raw: PurposeScore, known: _Known, phi_prev: float | None, before: State, flags: list[str]
    ) -> float:
        """Φ(s): the stored value (step 1), else the trajectory's current Φ (step 2), else the LM's (capped
        below the top unless s is a success, step 7); settled."""
        phi_b = raw.phi_before
        if known.phi_b is not None:
            if abs(known.phi_b - raw.phi_before) > 1e-9:
                flags.append("cached")  # the store overrode the LM's number for s
            phi_b = known.phi_b
        elif self.config.on("normalise") and phi_prev is not None:
            if abs(phi_prev - raw.phi_before) > 1e-9:
                flags.append("normalised")
            phi_b = phi_prev
        else:
            phi_b = self._below_top(phi_b, before, flags)
        if known.key_b is not None and known.phi_b is None:
            phi_b = self.store.settle(known.key_b, phi_b)
        return phi_b

    def _phi_after(
        self, raw: PurposeScore, known: _Known, phi_b: float, before: State, after: State, history: Sequence[float],
        flags: list[str],
    ) -> float:
        """Φ(s'): Φ(s) for the same state, the stored value (step 1), else Φ(s) plus the gated delta
        (steps 3-6), clamped to 0-10, capped below the top unless s' is a success (step 7) and settled
        (a value another run settled first holds)."""
        if known.same:
            if raw.delta != 0:
                flags.append("same_state")
            return phi_b
        if known.phi_a is not None:
            if abs(known.phi_a - raw.phi_after) > 1e-9:
                flags.append("cached")  # the store overrode the LM's number for s'
            return known.phi_a
        delta = self._gated_delta(raw, raw.phi_after - phi_b, before, after, history, flags)
        phi_a = self._below_top(round(min(10.0, max(0.0, phi_b + delta)), 6), after, flags)
        if known.key_a is not None:
            settled = self.store.settle(known.key_a, phi_a)
            if settled != phi_a:  # another run or process scored this state first: its Φ holds
                phi_a = settled
                flags.append("cached")
        return phi_a

    def _gated_delta(
        self, raw: PurposeScore, delta: float, before: State, after: State, history: Sequence[float], flags: list[str]
    ) -> float:
        """Steps 3-6, in order: injection, evidence, confidence, anomaly; each appends the flag it fires."""
        on, cfg = self.config.on, self.config
        if on("injection"):
            hits = find_injection(before.observation) + find_injection(after.observation)
            if hits:
                flags.append("injection")
                logger.info("state text addresses the judge (%r); this step cannot raise Φ", hits[0][:80])
                delta = min(delta, 0.0)
        if on("evidence") and delta != 0:
            if not evidence_in_states(raw.evidence, [before.observation, after.observation], cfg.evidence_min_chars):
                flags.append("no_evidence")
                delta = 0.0
            elif delta > 0 and not evidence_of_change(raw.evidence, before.observation, after.observation,
                                                      cfg.evidence_min_chars):
                flags.append("unchanged_evidence")  # true words, but none of them is what changed
                delta = 0.0
        if on("confidence") and delta != 0 and raw.confidence < cfg.confidence_threshold:
            flags.append("low_confidence")
            delta = 0.0
        if on("anomaly") and delta != 0:
            fired, delta = check_jump(delta, history, cfg)
            flags.extend(fired)
        return delta

    def _below_top(self, phi: float, state: State, flags: list[str]) -> float:
        """Step 7: the top of the scale is the environment's word, not the critic's."""
        if phi > self.config.top_phi and not state.success:
            flags.append("capped_no_success")
            return self.config.top_phi
        return phi
