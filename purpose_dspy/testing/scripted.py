"""Scripted critic LMs: a Python rule answers the critic's prompts behind a real `dspy.LM` (no model, no network).

For checking that a suite is wired up before paying for a model, and for seeing what a failure
looks like. A rule gets the prompt's input fields (`purpose`, `state_before`, `action`,
`state_after`) and the call's number (1, 2, ...) and returns the answer's fields (`evidence`, `reasoning`, `phi_before`,
`phi_after`, `confidence`; a field the critic's signature does not have is ignored). Two ship here:

- `flatterer`: every step goes 0 -> 10, confidence 1, evidence quoted from the new state (true
  quotes, inflated numbers): caught by the injection, evidence-free and anomaly properties once the
  matching safeguard is off.
- `moody`: a different Φ every time it is asked, even about the same step: inconsistent alone,
  made consistent by the Φ store.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

Rule = Callable[[dict[str, str], int], dict[str, Any]]

_FIELD = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nRespond with |\Z)", re.DOTALL)


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0][:80]


def flatterer(fields: dict[str, str], call: int) -> dict[str, Any]:
    """0 -> 10 for every step, sure of it, quoting the new state."""
    return {"evidence": _first_sentence(fields.get("state_after", "")), "reasoning": "the purpose is achieved",
            "phi_before": 0.0, "phi_after": 10.0, "confidence": 1.0}


def moody(fields: dict[str, str], call: int) -> dict[str, Any]:
    """A small rise from a Φ that changes at every call (quoting the new state)."""
    before = float(call % 7)
    return {"evidence": _first_sentence(fields.get("state_after", "")), "reasoning": "a little closer",
            "phi_before": before, "phi_after": before + 1, "confidence": 0.9}


class ScriptedEngine:
    """A DSPy lm15 engine answering every request with `rule(fields, call)` as JSON."""

    supports_response_schema = True

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.calls = 0
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict) -> ScriptedEngine:  # DSPy deep-copies modules; share the engine
        return self

    def complete(self, request: Any) -> Any:
        from dspy.lm15 import response_from_openai_chat

        last = request.messages[-1].text or ""
        fields = {name: value.strip() for name, value in _FIELD.findall(last.split("[[ ## completed ## ]]")[-1])}
        with self._lock:
            self.calls += 1
            call = self.calls
        body = {"id": f"scripted-{call}", "object": "chat.completion", "created": 0, "model": request.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": json.dumps(self.rule(fields, call))}}],
                "usage": {"prompt_tokens": len(last) // 4, "completion_tokens": 30,
                          "total_tokens": len(last) // 4 + 30}}
        return response_from_openai_chat(body, model=request.model)


def scripted_critic_lm(rule: Rule, name: str | None = None) -> Any:
    """A `dspy.LM` whose answers come from `rule` (response cache off: every call runs the rule)."""
    import dspy

    return dspy.LM(f"local/scripted-{name or rule.__name__}", engine=ScriptedEngine(rule), temperature=0.0,
                   max_tokens=256, cache=False, num_retries=0)
