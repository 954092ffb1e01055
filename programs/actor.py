"""Actor: picks one valid action per step; a bad answer is retried, then reported, never raised."""

from __future__ import annotations

import logging

import dspy

from purpose_dspy.errors import describe_bad_answer
from purpose_dspy.programs import abstraction
from purpose_dspy.programs.demo_selection import focused, scored_demos, situation
from purpose_dspy.programs.retry import Rejected, predict_with_retries
from purpose_dspy.programs.task_paths import TaskPaths
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
    SETTINGS = ("reasoning", "demos_per_call", "demo_chars", "follow_rules")

    # What a demo is compared on when choosing the ones a call sees (see demo_selection.py).
    SITUATION = ("observation", "valid_actions")

    def __init__(
        self, max_attempts: int = 2, retry_temperature: float = 0.7, demos_per_call: int = 3, reasoning: bool = True,
        demo_chars: int = 160, follow_rules: int = 0,
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
        self.paths = TaskPaths()  # per train task, the path that worked (compiled; see programs/task_paths.py)
        # > 0: a pool rule that held on at least this many train tasks is followed without an LM call (compiled)
        self.follow_rules = follow_rules

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

    def demos_for(self, state: State, demos: list | None = None, avoid: tuple[str, ...] = (), purpose: str = "") -> list:
        """This call's demos. The caller's own (a remembered step of this very task) are shown alone. Otherwise
        the pool demos that `rule_for` finds, the most similar last (nearest the question)."""
        if demos:
            return list(demos)
        return [demo.copy(observation=focused(str(demo.observation), str(demo.action), self.demo_chars))
                for demo in reversed(self.rule_for(state, avoid, purpose)[1])]

    def rule_for(self, state: State, avoid: tuple[str, ...] = (), purpose: str = "") -> tuple[str | None, list]:
        """The action the pool's rules name here, and their demos (most similar first); (None, []) when none apply.

        A pool demo applies when its situation is the one here (`abstraction.rule_key`: the abstract one for a
        template with a slot, the very state text for a literal action), its template names exactly one valid
        action here, that action is not in `avoid` (taken
        from this very state already: the agent is back), and its own action is not another valid action here
        (a small model copies the literal text). At most `demos_per_call`; none when they disagree."""
        query = situation({"observation": state.observation, "valid_actions": state.valid_actions}, self.SITUATION)
        usable = []
        for _, demo in scored_demos(self.act.demos, query, self.SITUATION):
            p, seen, shown = str(demo.get("purpose", purpose)), str(demo.observation), str(demo.action)
            rule = abstraction.template(shown, p, seen)
            there = abstraction.rule_key(p, seen, demo.valid_actions, rule)
            here = abstraction.rule_key(purpose, state.observation, state.valid_actions, rule)
            action = abstraction.concrete(rule, purpose, state.valid_actions, state.observation)
            trap = shown in state.valid_actions and shown != action
            if there == here and action and not trap and not (avoid and match_action(action, avoid)):
                usable.append((action, demo))
        usable = usable[: self.demos_per_call]
        if len({action for action, _ in usable}) != 1:
            return None, []
        return usable[0][0], [demo for _, demo in usable]

    @staticmethod
    def rule_line(action: str, demos: list) -> str:
        """What the pool's rule says here, in Python's words (true: counted on the train tasks)."""
        support = max(int(d.get("support", 0) or 0) for d in demos)
        tasks = f"{support} train tasks" if support else "the train tasks"
        return f"A step of this kind was right on {tasks} and never wrong; here that step is '{action}'."

    def dump_state(self, json_mode: bool = True) -> dict:
        """DSPy's state of the predictor, plus the remembered paths (plain JSON) when there are any."""
        state = super().dump_state(json_mode=json_mode)
        if self.paths.paths:
            state["paths"] = self.paths.model_dump(mode="json")
        return state

    def load_state(self, state: dict, **kwargs) -> Actor:
        """DSPy's load, plus the paths (an artifact without them has none)."""
        super().load_state(state, **kwargs)
        self.paths = TaskPaths.model_validate(state["paths"]) if "paths" in state else TaskPaths()
        return self

    def forward(
        self, purpose: str, state: State, history: str = "", experience: str = "", demos: list | None = None,
        avoid: tuple[str, ...] = (),
    ) -> dspy.Prediction:
        """`experience`: memory and replay lines for this state; `demos`: this call's only examples (default: the
        pool's, see `demos_for`); `avoid`: actions taken from this very state already without progress."""
        signature = constrain_action(self.act.signature, state.valid_actions)
        call_demos = self.demos_for(state, demos, avoid, purpose)
        if not demos and call_demos:
            rule, _ = self.rule_for(state, avoid, purpose)
            line = self.rule_line(rule, call_demos)
            if self.follow_rules and max(int(d.get("support", 0) or 0) for d in call_demos) >= self.follow_rules:
                return dspy.Prediction(action=rule, thought=f"rule: {line}", error=None, attempts=0)
            experience = "\n".join(x for x in (line, experience) if x)

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
