"""PurposeCritic: scores Φ before and after a step; unscorable answers become flagged zero-delta scores."""

from __future__ import annotations

import hashlib
import json
import logging

import dspy

from purpose_dspy.programs.demo_selection import nearest_demos, situation
from purpose_dspy.programs.retry import predict_with_retries
from purpose_dspy.signatures.score_transition import ScoreTransition, ScoreTransitionDirect
from purpose_dspy.types import PurposeScore, State

logger = logging.getLogger(__name__)


class PurposeCritic(dspy.Module):
    """Judges one transition with the `ScoreTransition` signature.

    Out-of-range or unparsable answers are retried once (sampled, so not a cached repeat); if
    that fails too the step is "unscored": Φ carried over from `phi_prev`, delta 0, never a
    silently clamped guess.
    """

    SITUATION = ("state_before", "action", "state_after")

    SETTINGS = ("reasoning", "demos_per_call")

    def __init__(
        self, max_attempts: int = 2, retry_temperature: float = 0.7, demos_per_call: int = 2, reasoning: bool = False
    ) -> None:
        super().__init__()
        # reasoning=True: a sentence of reasoning between the evidence and the scores; False: evidence, then scores.
        self.reasoning = reasoning
        self.judge = dspy.Predict(ScoreTransition if reasoning else ScoreTransitionDirect)
        self.max_attempts = max_attempts
        self.retry_temperature = retry_temperature
        self.demos_per_call = demos_per_call

    @staticmethod
    def demo(purpose: str, before: State, action: str, after: State, score: PurposeScore) -> dspy.Example:
        """A demo of `ScoreTransition`: the transition as `forward` passes it, labelled with `score`'s judgment."""
        return dspy.Example(
            purpose=purpose, state_before=before.observation, action=action, state_after=after.observation,
            evidence=score.evidence, reasoning=score.reasoning,
            phi_before=score.phi_before, phi_after=score.phi_after, confidence=score.confidence,
        ).with_inputs(*ScoreTransition.input_fields)

    def fingerprint(self, model: str) -> str:
        """Names this critic (its LM and its prompt: instructions and demos) for the Φ store."""
        state = json.dumps(self.judge.dump_state(), sort_keys=True, default=str)
        return hashlib.sha256(f"{model}\x1f{state}".encode()).hexdigest()[:16]

    def forward(
        self, purpose: str, before: State, action: str, after: State, phi_prev: float = 0.0
    ) -> dspy.Prediction:
        inputs = {"state_before": before.observation, "action": action, "state_after": after.observation}
        # The compiled calibration demos nearest to this transition (none before compiling).
        demos = nearest_demos(self.judge.demos, situation(inputs, self.SITUATION), self.SITUATION, self.demos_per_call)
        # PurposeScore validates the ranges (DSPy checks only the types of top-level fields); its
        # ValidationError is a ValueError, so an out-of-range answer is retried like an unparsable one.
        score, error, attempts = predict_with_retries(
            self.judge, attempts=self.max_attempts, retry_temperature=self.retry_temperature,
            validate=lambda pred: PurposeScore(
                phi_before=pred.phi_before, phi_after=pred.phi_after, confidence=pred.confidence,
                evidence=pred.evidence, reasoning=pred.get("reasoning", ""),
            ),
            purpose=purpose, **inputs, demos=demos,
        )
        if error is None:
            return dspy.Prediction(score=score, attempts=attempts)
        logger.info("critic could not score the step: %s", error)
        return dspy.Prediction(score=PurposeScore.unscored(phi_prev, error), attempts=attempts)
