"""The critic under test: a critic module and its LM, alone (`RawCritic`) or behind the safeguards (`GuardedCritic`).

Both score a `Step` the same way the step loop does (`critic(purpose=, before=, action=, after=, phi_prev=)`,
its `.score`), count the LM calls they cause, and open a fresh Φ store per trajectory
(`new_store()`); sharing one store between two trajectories is what two runs of a program do.
A critic is anything called like `PurposeCritic` that returns a prediction with a `score`
(a `PurposeScore`), or the `PurposeScore` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import dspy

from purpose_dspy.lm.compact_adapter import CompactJSONAdapter
from purpose_dspy.programs.critic import PurposeCritic
from purpose_dspy.safeguards import CriticGuard, PhiStore, SafeguardConfig
from purpose_dspy.testing.walks import Step
from purpose_dspy.types import PurposeScore


class RawCritic:
    """The critic module with its LM and nothing else: what the model itself answers."""

    safeguards: SafeguardConfig | None = None

    def __init__(self, critic: Any = None, lm: Any = None, *, on_call: Callable[[], None] | None = None) -> None:
        self.critic = critic if critic is not None else PurposeCritic()
        self.lm = lm
        self.on_call = on_call
        self.calls = 0  # LM calls made so far (a retried answer counts each attempt)

    @property
    def name(self) -> str:
        model = getattr(self.lm, "model", None) or type(self.lm).__name__
        return f"{type(self.critic).__name__} on {model}"

    def new_store(self) -> PhiStore | None:
        """Where one trajectory's Φ is kept; a raw critic keeps none."""
        return None

    def ask(self, step: Step, phi_prev: float | None = None) -> PurposeScore:
        """The critic's own answer for `step` (one call of the module, in the step loop's prompt format)."""
        with dspy.context(lm=self.lm, adapter=CompactJSONAdapter()) if self.lm is not None else nullcontext():
            answer = self.critic(purpose=step.purpose, before=step.before, action=step.action, after=step.after,
                                 phi_prev=phi_prev or 0.0)
        self.calls += int(getattr(answer, "attempts", 1) or 1)
        if self.on_call:
            self.on_call()
        score = getattr(answer, "score", answer)
        if not isinstance(score, PurposeScore):
            raise TypeError("the critic must return a PurposeScore or a prediction with .score, "
                            f"got {type(score).__name__}")
        return score

    def score(self, step: Step, *, store: PhiStore | None = None, phi_prev: float | None = None,
              history: Sequence[float] = ()) -> PurposeScore:
        """Score `step` as the step loop would; `phi_prev` is the trajectory's Φ (None on its first step)."""
        return self.ask(step, phi_prev)


class GuardedCritic(RawCritic):
    """The critic module behind `CriticGuard`: what a run of the program rewards."""

    def __init__(self, critic: Any = None, lm: Any = None, safeguards: SafeguardConfig | None = None, *,
                 volatile: Sequence[str] = (), namespace: str | None = None,
                 on_call: Callable[[], None] | None = None) -> None:
        super().__init__(critic, lm, on_call=on_call)
        self.safeguards = safeguards if safeguards is not None else SafeguardConfig()
        self.volatile = tuple(volatile)
        self.namespace = namespace if namespace is not None else str(getattr(lm, "model", "critic"))

    @property
    def name(self) -> str:
        off = sorted(set(SafeguardConfig().enabled) - set(self.safeguards.enabled))
        return f"{super().name}, guarded" + (f" without {', '.join(off)}" if off else "")

    def new_store(self) -> PhiStore:
        return PhiStore()

    def score(self, step: Step, *, store: PhiStore | None = None, phi_prev: float | None = None,
              history: Sequence[float] = ()) -> PurposeScore:
        guard = CriticGuard(self.safeguards, store if store is not None else PhiStore(), self.namespace, self.volatile)
        return guard.score(lambda: self.ask(step, phi_prev), purpose=step.purpose, before=step.before,
                           after=step.after, phi_prev=phi_prev, history=history)


def score_walk(critic: RawCritic, steps: Sequence[Step], store: PhiStore | None = None) -> list[PurposeScore]:
    """Score consecutive steps as one trajectory: each step gets the Φ reached so far and the earlier deltas."""
    store = store if store is not None else critic.new_store()
    scores: list[PurposeScore] = []
    for step in steps:
        phi_prev = scores[-1].phi_after if scores else None
        scores.append(critic.score(step, store=store, phi_prev=phi_prev, history=[s.delta for s in scores]))
    return scores

