"""A scripted LM that copies: the actor follows its last demo whose action fits here, else takes the first
valid action (a poor blind policy, so what the demos carry is what shows). Every other role answers as
rule_lm does.

It first follows the actor's rule line (programs/actor.py `rule_line`: "here that step is 'X'") when X is
valid. "Fits": the demo's action is valid here, or (`abstract=True`, the default) its template under the abstract
view of programs/abstraction.py (`take <goal>`) names exactly one valid action here. A stand-in for what the
embedded models were measured to do (copy a demo whose situation is the one in front of them) and, with
templates, for an LM that can abstract; control-flow evidence only, never a measurement of a real model.
"""

from __future__ import annotations

import json
import re

import dspy
from rule_lm import _FIELD, RuleEngine


class CopyEngine(RuleEngine):
    def __init__(self, abstract: bool = True) -> None:
        super().__init__()
        self.abstract = abstract
        self.demos_seen: list[list[str]] = []  # per actor call: the demo actions it was shown

    def complete(self, request):
        self._demo_actions = []
        for message in request.messages[:-1]:
            if message.role == "assistant":
                try:
                    self._demo_actions.append(str(json.loads(message.text or "{}").get("action", "")))
                except ValueError:
                    pass
        self._purpose = ""
        for message in request.messages:  # the call's purpose (a demo that leaves it out shares it)
            fields = dict(_FIELD.findall(message.text or ""))
            self._purpose = fields.get("purpose", self._purpose).strip()
        return super().complete(request)

    def _answer(self, system, f):
        role, answer = super()._answer(system, f)
        if role != "actor":
            return role, answer
        try:
            valid = [str(a) for a in json.loads(f.get("valid_actions", "[]"))]
        except ValueError:
            valid = []
        with self._lock:
            self.demos_seen.append(list(self._demo_actions))
        hint = re.search(r"here that step is '([^']+)'", f.get("experience", ""))
        copied = hint.group(1) if hint and hint.group(1) in valid else None  # the pool's rule, in Python's words
        copied = copied or next((a for a in map(lambda d: self._fit(d, valid), reversed(self._demo_actions)) if a), None)
        return role, {"thought": "copy" if copied else "blind", "action": copied or (valid[0] if valid else "north")}

    def _fit(self, demo_action: str, valid: list[str]) -> str | None:
        if demo_action in valid:
            return demo_action
        if not self.abstract:
            return None
        from purpose_dspy.programs.abstraction import concrete, template

        return concrete(template(demo_action, self._purpose), self._purpose, valid)


def copy_lms(abstract: bool = True) -> tuple[dict, CopyEngine]:
    engine = CopyEngine(abstract)
    lm = dspy.LM("local/copy-lm", engine=engine, temperature=0.0, max_tokens=256, cache=False, num_retries=0)
    return {"actor": lm, "critic": lm, "judge": lm, "optimizer": lm, "editor": lm}, engine
