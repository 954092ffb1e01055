"""Distiller: from the best trajectories of a batch, propose strategic, procedural and tool lessons.

What it returns are proposals, not memories: the runtime turns them into candidate cards and
MemoryCI decides, on measured lift, whether any of them is ever promoted.
"""

from __future__ import annotations

import logging

import dspy

from purpose_dspy.programs.retry import predict_with_retries
from purpose_dspy.signatures.distill import DistillLessons
from purpose_dspy.text import one_line
from purpose_dspy.types import Trajectory

logger = logging.getLogger(__name__)


def rank_trajectories(trajectories: list[Trajectory]) -> list[Trajectory]:
    """Best first: success, then Φ gain (end - start, which oscillation cannot inflate), then fewer steps."""

    def key(t: Trajectory) -> tuple[bool, float, int]:
        gain = t.phi_gain
        return (not t.success, -gain, len(t.steps))

    return sorted(trajectories, key=key)


def render_trajectory(t: Trajectory, observation_chars: int = 120) -> str:
    """One compact block: the outcome, then one line per step (action -> start of what followed, ΔΦ)."""
    lines = [f"outcome: {'success' if t.success else 'no success'} in {len(t.steps)} steps"]
    for s in t.steps:
        after = one_line(s.after.observation, observation_chars)
        action = s.action.text if s.action else "(no valid action)"
        lines.append(f"{s.index + 1}. {action} -> {after} (ΔΦ {s.score.delta:+.1f})")
    return "\n".join(lines)


class Distiller(dspy.Module):
    """Calls `DistillLessons` on the top `top_k` trajectories; an unusable answer yields no proposals."""

    def __init__(self, top_k: int = 3, max_attempts: int = 2, retry_temperature: float = 0.7, max_tokens: int = 768) -> None:
        super().__init__()
        self.max_tokens = max_tokens  # three short lists in JSON: more than a step's answer needs
        self.distill = dspy.Predict(DistillLessons)
        self.top_k = top_k
        self.max_attempts = max_attempts
        self.retry_temperature = retry_temperature

    def forward(self, task_family: str, trajectories: list[Trajectory]) -> dspy.Prediction:
        best = rank_trajectories(trajectories)[: self.top_k]
        empty = dspy.Prediction(strategic_tips=[], procedures=[], tool_tips=[], sources=[], error=None)
        if not best:
            return empty
        text = "\n\n".join(f"Trajectory {i + 1}\n{render_trajectory(t)}" for i, t in enumerate(best))
        pred, error, _ = predict_with_retries(
            self.distill, attempts=self.max_attempts, retry_temperature=self.retry_temperature,
            config={"max_tokens": self.max_tokens},
            task_family=task_family, purpose=best[0].purpose, trajectories=text,
        )
        if error is not None:
            logger.info("distiller gave no usable answer: %s", error)
            return dspy.Prediction(**{**empty.toDict(), "error": error})
        return dspy.Prediction(
            strategic_tips=[t for t in pred.strategic_tips if t.strip()][:3],
            procedures=[p for p in pred.procedures if p.title.strip() and p.steps][:2],
            tool_tips=[t for t in pred.tool_tips if t.action.strip() and t.tip.strip()][:3],
            sources=[t.id for t in best],
            error=None,
        )
