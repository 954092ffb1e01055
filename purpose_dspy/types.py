"""Plain data the whole system passes around: states, actions, scores, trajectories.

Everything here is a pydantic model so it validates on the way in and serialises to JSON on the
way out (artifacts, stores and `--json` output never need pickle). Nothing here imports DSPy.
"""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

Role = Literal["actor", "critic", "judge", "editor", "optimizer"]
ROLES: tuple[Role, ...] = ("actor", "critic", "judge", "editor", "optimizer")


class Task(BaseModel):
    """One concrete task of an environment family: which layout / game / variation to load."""

    model_config = ConfigDict(frozen=True)

    env_id: str = Field(description="Registry id, e.g. 'treasure-maze', 'twx:coin', 'scienceworld:boil'.")
    seed: int = Field(0, description="Seed (TWX), layout seed (treasure-maze) or variation (ScienceWorld).")
    split: Literal["train", "dev", "test"] = Field("train", description="Official fold the seed is drawn from.")
    params: dict[str, Any] = Field(default_factory=dict, description="Environment parameters (grid size, rooms...).")

    @property
    def task_id(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.env_id}/{self.split}/{self.seed}" + (f"[{params}]" if params else "")


class State(BaseModel):
    """What the agent sees: untrusted observation text, structured data, and the actions valid now."""

    model_config = ConfigDict(frozen=True)

    observation: str = Field(description="Text the environment returned; untrusted (may carry injections).")
    data: dict[str, Any] = Field(default_factory=dict, description="Structured facts for code (never shown to models).")
    valid_actions: tuple[str, ...] = Field((), description="Actions accepted now; empty when the env does not list them.")
    done: bool = Field(False, description="The episode has ended (success or failure).")
    success: bool = Field(False, description="The episode ended with the goal reached.")


class Action(BaseModel):
    """What the actor chose, with its stated reasoning. `text` is what is sent to the environment."""

    model_config = ConfigDict(frozen=True)

    text: str
    thought: str = ""


class PurposeScore(BaseModel):
    """The purpose critic's verdict on one transition. Φ is the state value on a 0-10 scale."""

    model_config = ConfigDict(frozen=True)

    phi_before: float = Field(ge=0, le=10)
    phi_after: float = Field(ge=0, le=10)
    confidence: float = Field(1.0, ge=0, le=1)
    evidence: str = ""
    reasoning: str = ""
    flags: tuple[str, ...] = Field((), description="Safeguards that fired or problems met (e.g. 'unscored').")
    raw_phi_before: float | None = Field(None, description="The critic LM's own Φ(s), before the safeguards.")
    raw_phi_after: float | None = Field(None, description="The critic LM's own Φ(s'), before the safeguards.")
    phi_peak: float | None = Field(None, ge=0, le=10, description=(
        "The highest Φ its trajectory reached before this step (Φ_start and every Φ since), stamped by the step "
        "loop; None for a first step or a score judged alone. Reward counts only Φ above it."))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta(self) -> float:
        return round(self.phi_after - self.phi_before, 6)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reward(self) -> float:
        """Reward only for a new high of Φ: max(0, Φ_after - max(Φ_before, phi_peak)), the core rule of the
        purpose function. A walk back and forth between known states earns its rise once, not every lap."""
        floor = self.phi_before if self.phi_peak is None else max(self.phi_before, self.phi_peak)
        return max(0.0, round(self.phi_after - floor, 6))

    def at_peak(self, peak: float | None) -> PurposeScore:
        """This score inside a trajectory whose Φ has reached `peak` so far (None: the first step)."""
        return self if peak is None else self.model_copy(update={"phi_peak": peak})

    @classmethod
    def unscored(cls, phi: float, why: str) -> PurposeScore:
        """A step the critic could not score: Φ carried over, delta 0, flagged with the reason."""
        return cls(phi_before=phi, phi_after=phi, confidence=0.0, reasoning=why, flags=("unscored",))


class LMCall(BaseModel):
    """One call to a language model, as the trace records it."""

    role: Role
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = Field(0, description=(
        "Of the prompt tokens, those the server served from its prefix cache (OpenAI-style "
        "usage.prompt_tokens_details.cached_tokens); 0 when the server reports none (the embedded llama.cpp model)."))
    seconds: float = 0.0
    cached: bool = Field(False, description="Answered from DSPy's response cache (no usage reported, no model run).")

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Transition(BaseModel):
    """One step: state, chosen action, next state, the critic's score and the LM calls it cost."""

    index: int
    before: State
    action: Action | None = Field(description="None when the actor failed to produce a valid action.")
    after: State
    score: PurposeScore
    env_reward: float = 0.0
    progress: float | None = Field(None, description="Environment's ground-truth progress in [0, 1], for measuring only.")
    error: str | None = Field(None, description="Why the step failed (unparsable or invalid action), if it did.")
    lm_calls: list[LMCall] = Field(default_factory=list)
    seconds: float = 0.0

    @property
    def reward(self) -> float:
        return self.score.reward


class Trajectory(BaseModel):
    """A whole episode of one task under one purpose."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    purpose: str
    task: Task
    started_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    steps: list[Transition] = Field(default_factory=list)
    success: bool = False
    stop_reason: str = ""

    @property
    def phi_start(self) -> float | None:
        return self.steps[0].score.phi_before if self.steps else None

    @property
    def phi_end(self) -> float | None:
        return self.steps[-1].score.phi_after if self.steps else None

    @property
    def phi_peak(self) -> float | None:
        """The highest Φ reached (Φ_start and every Φ since; None with no steps): what the next step must beat."""
        return phi_peak(s.score for s in self.steps)

    @property
    def phi_gain(self) -> float:
        """Φ at the end minus Φ at the start (0 for an episode with no steps)."""
        return (self.phi_end or 0.0) - (self.phi_start or 0.0)

    @property
    def total_reward(self) -> float:
        return sum(s.reward for s in self.steps)

    @property
    def lm_calls(self) -> list[LMCall]:
        return [c for s in self.steps for c in s.lm_calls]


class MemoryReport(BaseModel):
    """What experience did in one run: what the actor was shown, and what changed afterwards."""

    cards_shown: list[str] = Field(default_factory=list, description="Ids of memory cards the actor saw.")
    recalls: int = Field(0, description="Steps at which replay had something to say about the state.")
    followed: int = Field(0, description="Steps where the actor chose replay's top encouraged action.")
    demo_steps: int = Field(0, description="Steps shown a remembered successful step from the same state.")
    explored: int = Field(0, description="Steps that took a never-tried action instead of asking the actor.")
    steps_stored: int = Field(0, description="Steps written to the replay buffer after the run.")
    card_events: list[dict[str, Any]] = Field(default_factory=list, description="MemoryCI transitions the outcome caused.")


class RunResult(BaseModel):
    """What `run_task` returns: the trajectory plus the cost of producing it."""

    trajectory: Trajectory
    seconds: float
    model_by_role: dict[str, str] = Field(default_factory=dict)
    memory: MemoryReport | None = Field(None, description="Set when the run used experience (memory + replay).")
    phi_scored: bool = Field(True, description="The critic scored Φ (False: an actor-only run, every step unscored).")

    def memory_report(self) -> dict[str, Any]:
        """What was used and what changed ({} when the run had no experience attached)."""
        return self.memory.model_dump(mode="json") if self.memory else {}

    def summary(self) -> dict[str, Any]:
        """The figures `purpose-dspy run --json` prints: one flat JSON-ready dict."""
        traj = self.trajectory
        calls = traj.lm_calls
        lm_seconds = sum(c.seconds for c in calls)
        return {
            "task": traj.task.task_id,
            "success": traj.success,
            "steps": len(traj.steps),
            "failed_steps": sum(1 for s in traj.steps if s.error),
            "phi": {
                "start": traj.phi_start,
                "end": traj.phi_end,
                "max": traj.phi_peak,
                "total_reward": round(traj.total_reward, 4),
            },
            "critic_flags": dict(Counter(f for s in traj.steps for f in s.score.flags)),
            "progress": traj.steps[-1].progress if traj.steps else None,
            "stop_reason": traj.stop_reason,
            "phi_scored": self.phi_scored,
            "lm_calls": len(calls),
            "tokens": sum(c.tokens for c in calls),
            "prompt_tokens": sum(c.prompt_tokens for c in calls),
            "completion_tokens": sum(c.completion_tokens for c in calls),
            "cached_tokens": sum(c.cached_tokens for c in calls),
            "lm_seconds": round(lm_seconds, 3),
            "seconds": round(self.seconds, 3),
            "models": self.model_by_role,
            "by_role": self.lm_calls_by_role(),
            "memory": self.memory_report(),
        }

    def lm_calls_by_role(self) -> dict[str, dict[str, float]]:
        """Calls, tokens (in all, prompt, of it cached, completion) and median latency per role."""
        calls = self.trajectory.lm_calls
        usage = usage_by_role(calls)
        return {role: {"calls": u["calls"], "tokens": u["prompt_tokens"] + u["completion_tokens"],
                       "prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
                       "cached_tokens": u["cached_tokens"],
                       "median_seconds": round(statistics.median(c.seconds for c in calls if c.role == role), 4)}
                for role, u in usage.items()}


def phi_peak(scores: Iterable[PurposeScore]) -> float | None:
    """The highest Φ among `scores`, before and after each (None for no scores): a run's reward floor."""
    return max((phi for s in scores for phi in (s.phi_before, s.phi_after)), default=None)


def usage_by_role(calls: Iterable[LMCall]) -> dict[str, dict[str, int]]:
    """Per role that made a call (in `ROLES` order): calls, prompt_tokens, completion_tokens, cached_tokens."""
    out: dict[str, dict[str, int]] = {}
    for call in calls:
        u = out.setdefault(call.role, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0})
        u["calls"] += 1
        u["prompt_tokens"] += call.prompt_tokens
        u["completion_tokens"] += call.completion_tokens
        u["cached_tokens"] += call.cached_tokens
    return {role: out[role] for role in ROLES if role in out}
