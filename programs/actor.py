"""Actor: picks one valid action per step; a bad answer is retried, then reported, never raised."""

from __future__ import annotations

import logging

import dspy
from dspy.utils.exceptions import AdapterParseError

from purpose_dspy.errors import describe_bad_answer
from purpose_dspy.signatures.act import Act, constrain_action
from purpose_dspy.types import State

logger = logging.getLogger(__name__)


def match_action(answer: str, valid_actions: tuple[str, ...]) -> str | None:
    """The valid action `answer` names (exact, then case- and space-insensitive), else None.

    With no list of valid actions, any non-empty answer stands.
    """
    answer = (answer or "").strip()
    if not valid_actions:
        return answer or None
    if answer in valid_actions:
        return answer
    folded = " ".join(answer.lower().split())
    return next((a for a in valid_actions if " ".join(a.lower().split()) == folded), None)


class Actor(dspy.Module):
    """Chooses the next action with the `Act` signature.

    The first attempt uses the LM's own settings; a retry samples at `retry_temperature` (so it
    is not a cached copy of the failure). After `max_attempts` the prediction carries
    `action=None` and the reason in `error`, and the orchestrator records a failed step.
    """

    def __init__(self, max_attempts: int = 2, retry_temperature: float = 0.7) -> None:
        super().__init__()
        self.act = dspy.Predict(Act)
        self.max_attempts = max_attempts
        self.retry_temperature = retry_temperature

    def forward(
        self, purpose: str, state: State, history: str = "", experience: str = "", demos: list | None = None
    ) -> dspy.Prediction:
        """`experience`: memory and replay lines for this state; `demos`: examples for this call only."""
        signature = constrain_action(self.act.signature, state.valid_actions)
        errors: list[str] = []
        for attempt in range(self.max_attempts):
            config = {} if attempt == 0 else {"temperature": self.retry_temperature, "rollout_id": attempt}
            try:
                pred = self.act(
                    purpose=purpose, observation=state.observation, history=history or "(none yet)",
                    valid_actions=list(state.valid_actions), experience=experience or "(none)",
                    signature=signature, config=config, **({"demos": demos} if demos is not None else {}),
                )
            except (AdapterParseError, ValueError) as exc:
                errors.append(f"unparsable answer: {describe_bad_answer(exc)}")
                continue
            action = match_action(str(pred.action), state.valid_actions)
            if action is not None:
                return dspy.Prediction(action=action, thought=str(pred.thought), error=None, attempts=attempt + 1)
            errors.append(f"invalid action {str(pred.action)[:80]!r}")
        logger.info("actor failed after %d attempts: %s", self.max_attempts, "; ".join(errors))
        return dspy.Prediction(action=None, thought="", error="; ".join(errors), attempts=self.max_attempts)
