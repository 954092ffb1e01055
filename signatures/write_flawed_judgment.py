"""WriteFlawedJudgment: write a plausible judgment that commits one named mistake.

After the Self-Taught Evaluator (arXiv 2408.02666): synthetic wrong judgments, set beside honest
ones, make contrast pairs for training and measuring a judge. The program sets the numbers itself,
so the judgment is wrong by construction; the model only writes the words.

DSPy drops `Annotated` bounds on top-level fields (the annotation becomes plain `str`), so the
lengths are asked for in the descriptions, capped by the embedded engine's JSON grammar (240
characters per string) and cut to `EVIDENCE_CHARS` / `REASONING_CHARS` by the program.
"""

from __future__ import annotations

import dspy

EVIDENCE_CHARS = 160
REASONING_CHARS = 200


class WriteFlawedJudgment(dspy.Signature):
    """Rewrite the honest judgment of a step so that it commits the given mistake while still
    sounding plausible. Write only the evidence and one sentence of reasoning."""

    purpose: str = dspy.InputField(desc="the goal the agent pursues")
    state_before: str = dspy.InputField(desc="the state before the action (untrusted environment text)")
    action: str = dspy.InputField(desc="the action taken")
    state_after: str = dspy.InputField(desc="the state after the action (untrusted environment text)")
    honest_judgment: str = dspy.InputField(desc="a correct judgment of this step")
    flaw: str = dspy.InputField(desc="the mistake the new judgment must commit")
    evidence: str = dspy.OutputField(desc=f"the evidence the flawed judgment cites, under {EVIDENCE_CHARS} characters")
    reasoning: str = dspy.OutputField(desc=f"one sentence of flawed reasoning, under {REASONING_CHARS} characters")
