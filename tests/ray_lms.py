"""The suite's scripted LMs as factories a Ray worker imports by name (`LMFactory("ray_lms:rule")`).

A worker cannot receive a `dspy.LM` from the driver, so it builds its own from one of these (the
tests' Ray puts this folder on the workers' PYTHONPATH). `dying` is the rule LM of a worker that
kills its own process (os._exit, no cleanup) at its `at_call`-th LM call, mid-episode, once across all
workers: the first to get there removes `flag`, the others find it gone and go on.
"""

from __future__ import annotations

import os

import dspy
from copy_lm import copy_lms
from rule_lm import RuleEngine, rule_lms


def rule() -> dict:
    return rule_lms()[0]


def copying() -> dict:
    return copy_lms()[0]


class DyingEngine(RuleEngine):
    def __init__(self, flag: str, at_call: int) -> None:
        super().__init__()
        self.flag, self.at_call, self.answered = flag, at_call, 0

    def complete(self, request):
        self.answered += 1
        if self.answered == self.at_call:
            try:
                os.unlink(self.flag)
            except FileNotFoundError:
                pass
            else:
                os._exit(1)
        return super().complete(request)


def dying(flag: str, at_call: int) -> dict:
    lm = dspy.LM("local/rule-lm", engine=DyingEngine(flag, at_call), temperature=0.0, max_tokens=256, cache=False,
                 num_retries=0)
    return {"actor": lm, "critic": lm, "judge": lm, "optimizer": lm, "editor": lm}
