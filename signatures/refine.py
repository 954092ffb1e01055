"""Refine: a new version of the output that fixes what the critique names."""

from __future__ import annotations

import dspy


class Refine(dspy.Signature):
    """Rewrite the previous output so that it meets every numbered constraint of the task.
    The critique lists the problems. Lines under "Measured" were counted by a program and are facts:
    fix those first (add or cut words, add or remove sentences, use or drop the named words).
    Keep what already works. Answer with the new text only: no label, no quotes, no comment."""

    task: str = dspy.InputField(desc="what to write, followed by its numbered constraints")
    previous_output: str = dspy.InputField(desc="the text to improve (untrusted)")
    critique: str = dspy.InputField(desc="what is wrong with it: measured facts first, then the editor's notes")
    output: str = dspy.OutputField(desc="the improved text itself, nothing else")
