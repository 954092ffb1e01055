"""Actor: picks one valid action per step; a bad answer is retried, then reported, never raised."""

from __future__ import annotations

import logging

import dspy

from purpose_dspy.errors import describe_bad_answer
from purpose_dspy.programs.demo_selection import focused, nearest_demos, situation
from purpose_dspy.programs.retry import Rejected, predict_with_retries
from purpose_dspy.signatures.act import Act, ActDirect, constrain_action
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

    # What an artifact records to rebuild this module with the same signature (see artifacts/store.py).
    SETTINGS = ("reasoning", "demos_per_call", "demo_chars")

    # What a demo is compared on when choosing the ones a call sees (see demo_selection.py).
    SITUATION = ("observation", "valid_actions")

    def __init__(
        self, max_attempts: int = 2, retry_temperature: float = 0.7, demos_per_call: int = 3, reasoning: bool = True,
        demo_chars: int = 160,
    ) -> None:
        super().__init__()
        # reasoning=True (the default): a `thought` before the action (the ChainOfThought way); False: the action
        # alone. Measured (benchmarks/prompt_variants.py, twx:coin dev 0..19): the action alone solved 2/20
        # against 16/20 with the thought, so the saving is not one for this model; it stays a setting.
        self.reasoning = reasoning
        self.act = dspy.Predict(Act if reasoning else ActDirect)
        self.max_attempts = max_attempts
        self.retry_temperature = retry_temperature
        self.demos_per_call = demos_per_call
        self.demo_chars = demo_chars  # a pool demo's observation is shown `focused` on its action, this long at most

    @staticmethod
    def demo(
        purpose: str, state: State, action: str, thought: str, history: str = "", experience: str = ""
    ) -> dspy.Example:
        """A demo of `Act` for the step taken from `state`, its inputs filled in as `forward` fills them."""
        return dspy.Example(
            purpose=purpose, observation=state.observation, history=history or "(none yet)",
            valid_actions=list(state.valid_actions), experience=experience or "(none)",
            thought=thought, action=action,
        ).with_inputs(*Act.input_fields)

    def demos_for(self, state: State, demos: list | None = None) -> list:
        """This call's demos: the caller's own (e.g. a remembered step of this very task) first, then
        the compiled pool's nearest to the state, `demos_per_call` of them."""
        query = situation({"observation": state.observation, "valid_actions": state.valid_actions}, self.SITUATION)
        chosen = nearest_demos(self.act.demos, query, self.SITUATION, self.demos_per_call)
        return list(demos or []) + [
            demo.copy(observation=focused(str(demo.observation), str(demo.action), self.demo_chars)) for demo in chosen
        ]

    def forward(
        self, purpose: str, state: State, history: str = "", experience: str = "", demos: list | None = None
    ) -> dspy.Prediction:
        """`experience`: memory and replay lines for this state; `demos`: extra examples for this call only."""
        signature = constrain_action(self.act.signature, state.valid_actions)
        call_demos = self.demos_for(state, demos)

        def valid(pred: dspy.Prediction) -> tuple[str, str]:
            action = match_action(str(pred.action), state.valid_actions)
            if action is None:
                raise Rejected(f"invalid action {str(pred.action)[:80]!r}")
            return action, str(pred.get("thought", ""))

        chosen, error, attempts = predict_with_retries(
            self.act, attempts=self.max_attempts, retry_temperature=self.retry_temperature, validate=valid,
            describe=lambda exc: f"unparsable answer: {describe_bad_answer(exc)}",
            purpose=purpose, observation=state.observation, history=history or "(none yet)",
            valid_actions=list(state.valid_actions), experience=experience or "(none)",
            signature=signature, demos=call_demos,
        )
        if error is None:
            action, thought = chosen
            return dspy.Prediction(action=action, thought=thought, error=None, attempts=attempts)
        logger.info("actor failed after %d attempts: %s", self.max_attempts, error)
        return dspy.Prediction(action=None, thought="", error=error, attempts=attempts)
