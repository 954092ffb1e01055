"""Editor: draft -> critique -> refine, scored by a Python-composed rubric, stopping at the target.

Each round is a `Review` (the output, the LM's claims, what a program measured, the composite, the
gate); all rounds are returned. The output kept is the best round (passing first, then composite,
then the later round), so a refinement that made things worse is not what the caller gets.
The rubric is configuration, not learned state: it is passed per call or set on the module, and a
compiled editor's JSON state holds only its three predictors and their demos.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

from purpose_dspy.programs.demo_selection import nearest_demos
from purpose_dspy.programs.retry import Rejected, predict_with_retries
from purpose_dspy.signatures.critique import Critique
from purpose_dspy.signatures.draft import Draft
from purpose_dspy.signatures.refine import Refine
from purpose_dspy.writing.archive import ArchivedOutput, render_examples
from purpose_dspy.writing.review import Review, review
from purpose_dspy.writing.rubric import Rubric
from purpose_dspy.writing.tasks import WritingTask

logger = logging.getLogger(__name__)

CRITIQUE_FIELDS = ("word_count", "sentence_count", "constraints_met", "is_on_brief", "has_concrete_detail",
                   "avoids_cliches", "overall_score")


class Editor(dspy.Module):
    """Writes for a `WritingTask`: up to `max_iterations` drafts, each critiqued and scored in Python."""

    def __init__(self, rubric: Rubric | None = None, max_iterations: int = 3, max_attempts: int = 2,
                 retry_temperature: float = 0.7, demos_per_call: int = 2, max_tokens: int = 256) -> None:
        super().__init__()
        self.draft = dspy.Predict(Draft)
        self.critique = dspy.Predict(Critique)
        self.refine = dspy.Predict(Refine)
        self.rubric = rubric or Rubric()
        self.max_iterations = max_iterations
        self.max_attempts = max_attempts
        self.retry_temperature = retry_temperature
        self.demos_per_call = demos_per_call
        # Answers here are short (a tagline to an 80-word placard, or a critique); the cap stops a small
        # model that starts repeating itself early instead of at the LM's general limit.
        self.max_tokens = max_tokens

    def forward(self, task: WritingTask, examples: Sequence[ArchivedOutput] = (), rubric: Rubric | None = None,
                max_iterations: int | None = None) -> dspy.Prediction:
        rubric = rubric or self.rubric
        shown = [e.output for e in examples]
        output, error = self._write(self.draft, exclude=shown, task=task.text(),
                                    archive_examples=render_examples(list(examples)))
        rounds: list[Review] = []
        for iteration in range(max_iterations or self.max_iterations):
            if iteration:
                output, error = self._write(self.refine, task=task.text(), previous_output=output,
                                            critique=rounds[-1].feedback())
            rounds.append(self._review(task, output, rubric, iteration, shown, error))
            if rounds[-1].passed:
                break
        best = max(rounds, key=lambda r: (r.passed, r.composite, r.iteration))
        return dspy.Prediction(output=best.output, best=best, rounds=rounds)

    # -- named steps ---------------------------------------------------------------------------
    def _ask(self, predictor: dspy.Predict, validate: Any, catch: tuple[type[BaseException], ...],
             **inputs: Any) -> tuple[Any, str | None, int]:
        """`predictor` under the token cap, retried by sampling (see retry.py) while `validate` rejects the answer."""
        return predict_with_retries(predictor, attempts=self.max_attempts, retry_temperature=self.retry_temperature,
                                    config={"max_tokens": self.max_tokens}, validate=validate, catch=catch, **inputs)

    def _write(self, predictor: dspy.Predict, exclude: Sequence[str] = (), **inputs: str) -> tuple[str, str | None]:
        """Text from `predictor` (draft or refine), retried when empty or unreadable; '' and the reason if not.

        Pool demos whose output is an archived example already shown (`exclude`) are left out.
        """
        pool = [d for d in predictor.demos if d.get("output") not in exclude]
        demos = nearest_demos(pool, inputs["task"], ("task",), self.demos_per_call)
        text, error, _ = self._ask(predictor, _text, (AdapterParseError,), **inputs, demos=demos)
        if error is None:
            return text, None
        logger.info("editor produced no text: %s", error)
        return "", error

    def _review(self, task: WritingTask, output: str, rubric: Rubric, iteration: int, shown: list[str],
                write_error: str | None) -> Review:
        """Critique `output` (retried once when unreadable), then measure and score it in Python."""
        claims, text, error = None, "", None
        if output:
            demos = nearest_demos(self.critique.demos, task.text(), ("task",), self.demos_per_call)
            read, error, _ = self._ask(
                self.critique, lambda pred: (_claims(pred), str(pred.critique or "")),
                (AdapterParseError, ValueError, TypeError), task=task.text(), output=output, demos=demos,
            )
            if error is None:
                claims, text = read
            else:
                logger.info("critique unusable after %d attempts: %s", self.max_attempts, error)
        return review(task, output, claims, rubric=rubric, iteration=iteration, shown=shown, critique=text,
                      critique_error=error, write_error=write_error)


def _claims(pred: dspy.Prediction) -> dict[str, Any]:
    """The critique's features as plain values; a field of the wrong shape raises ValueError (then a retry)."""
    claims = {name: getattr(pred, name) for name in CRITIQUE_FIELDS}
    for name in ("word_count", "sentence_count"):
        if not isinstance(claims[name], int) or claims[name] < 0:
            raise ValueError(f"{name} must be a non-negative count, got {claims[name]!r}")
    if not isinstance(claims["constraints_met"], list):
        raise ValueError(f"constraints_met must be a list of booleans, got {claims['constraints_met']!r}")
    return claims


def _text(pred: dspy.Prediction) -> str:
    """The draft or refinement's text, cleaned; an empty one is rejected (then a retry)."""
    text = _clean(pred.output)
    if not text:
        raise Rejected("empty output")
    return text


def _clean(text: Any) -> str:
    """The text without wrapping quotes or a leading 'Output:' label the LM sometimes adds."""
    text = str(text or "").strip()
    for label in ("output:", "text:", "answer:"):
        if text.lower().startswith(label):
            text = text[len(label):].strip()
    if len(text) > 1 and (text[0], text[-1]) in {('"', '"'), ("'", "'"), ("“", "”")}:
        text = text[1:-1].strip()
    return text
