"""Experience: the agent's memory and replay buffer, as the orchestrator uses them.

Before each actor call `advise` gathers what the agent has learned about this state: the memory
cards in scope (three tiers, within a token budget) and the replay's encouraged / discouraged
actions. When the very same state was on a successful path before, that step is also shown as a
one-turn demo (a tiny model copies a step-aligned demo far more reliably than it reads advice).
After each task `learn` stores the trajectory (Q-values update) and tells MemoryCI which cards
were shown, so their lift is measured. After a batch `distill` turns the best trajectories into
candidate cards; MemoryCI admits, quarantines or merges them.

One directory holds both stores: `<dir>/replay.sqlite3` and `<dir>/memory/`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dspy
from dspy.utils.exceptions import LMError
from pydantic import BaseModel, ConfigDict, Field

from purpose_dspy.errors import LMUnavailableError
from purpose_dspy.experience.recall import ACTION_CHARS
from purpose_dspy.experience.replay import ExperienceReplay, Recall, ReplayConfig
from purpose_dspy.memory import MemoryCard, MemoryCI, MemoryConfig, MemoryStore
from purpose_dspy.memory.cards import Provenance
from purpose_dspy.programs.actor import Actor
from purpose_dspy.text import one_line
from purpose_dspy.types import MemoryReport, State, Trajectory

logger = logging.getLogger(__name__)


class ExperienceConfig(BaseModel):
    """What the actor is shown from its own experience."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recall_k: int = Field(3, ge=0, description="Encouraged and discouraged actions shown per step (each).")
    show_memory: bool = Field(True, description="Put the memory cards' three tiers in the actor's prompt.")
    show_replay: bool = Field(True, description="Put the replay's encouraged / discouraged actions in the prompt.")
    step_demo: bool = Field(True, description="Show a remembered successful step from this very state as a demo.")
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    # The loop knows which task it is on: "the same state" means the same task too, so a remembered
    # path is replayed step by step only in its own task; look-alike states elsewhere are advice.
    replay: ReplayConfig = Field(default_factory=lambda: ReplayConfig(per_task=True))


@dataclass
class Advice:
    """What one actor call gets from experience."""

    text: str = ""
    demos: list[dspy.Example] = field(default_factory=list)
    cards: tuple[str, ...] = ()
    recall: Recall | None = None

    @property
    def knows_a_path(self) -> bool:
        """A successful trajectory went on from this very state (so there is no need to explore)."""
        return bool(self.recall and any(r.on_success_path for r in self.recall.encouraged))

    @property
    def best(self) -> str | None:
        return self.recall.encouraged[0].action if self.recall and self.recall.encouraged else None


class Experience:
    """Memory + replay in one persistence directory (None: in memory, gone when the process ends)."""

    def __init__(
        self, directory: str | Path | None = None, config: ExperienceConfig | None = None, embedder: Any = None
    ) -> None:
        """`embedder`: a `dspy.Embedder` for replay's dense phase 1 (default: the lexical index)."""
        self.config = config or ExperienceConfig()
        self.directory = Path(directory) if directory is not None else None
        self.replay = ExperienceReplay(self.directory, self.config.replay, embedder=embedder)
        self.memory = MemoryStore(self.directory / "memory" if self.directory else None, self.config.memory)
        self.ci = MemoryCI(self.memory)

    def advise(
        self, purpose: str, state: State, *, family: str, task_id: str, history: str = ""
    ) -> Advice:
        parts, cards = [], ()
        if self.config.show_memory:
            context = self.memory.context(purpose, state, family=family, task_id=task_id)
            if context.text:
                parts.append(context.text)
            cards = tuple(context.shown)
        recall = self.replay.recall(purpose, state, self.config.recall_k, family=family, task_id=task_id)
        if self.config.show_replay and self.config.recall_k and recall.render(self.config.recall_k):
            parts.append("From earlier attempts:\n" + recall.render(self.config.recall_k))
        advice = Advice(text="\n\n".join(parts), cards=cards, recall=recall)
        if self.config.step_demo and advice.knows_a_path:
            top = next(r for r in recall.encouraged if r.on_success_path)
            nxt = ", ".join(one_line(a, ACTION_CHARS) for a in top.continuation[:3])  # environment text: one line each
            then = f"then {nxt}" if top.continuation else "it finished the task"
            advice.demos = [Actor.demo(purpose, state, top.action, thought=f"This worked here before; {then}.",
                                       history=history)]
        return advice

    def learn(self, trajectory: Trajectory, *, shown_cards: set[str], family: str | None = None) -> MemoryReport:
        """After a task: store its steps (Q backups) and record the outcome for every card in scope."""
        family = family or trajectory.task.env_id
        stored = self.replay.add(trajectory, family)
        gain = (trajectory.phi_end or 0.0) - (trajectory.phi_start or 0.0)
        events = self.ci.record_outcome(
            task_id=trajectory.task.task_id, family=family, shown=sorted(shown_cards),
            success=trajectory.success, phi_gain=gain,
        )
        return MemoryReport(
            cards_shown=sorted(shown_cards), steps_stored=stored,
            card_events=[e.model_dump(mode="json") for e in events],
        )

    def distill(self, trajectories: list[Trajectory], distiller: Any, *, family: str) -> list[dict[str, Any]]:
        """Run the distiller (under the caller's `dspy.context`) and submit its proposals to MemoryCI.

        An LM that cannot be reached raises `LMUnavailableError` (an unusable answer proposes nothing)."""
        if not trajectories:
            return []
        try:
            pred = distiller(task_family=family, trajectories=trajectories)
        except LMError as exc:
            raise LMUnavailableError(f"the distiller's LM failed: {str(exc).splitlines()[0]}") from exc
        sources = tuple(pred.sources)
        chosen = [t for t in trajectories if t.id in sources]
        observations = [s.after.observation for t in chosen for s in t.steps] + [
            t.steps[0].before.observation for t in chosen if t.steps
        ]
        prov = Provenance(trajectory_ids=sources, created_by="distiller")
        cards = [MemoryCard(kind="strategic", text=tip, families=(family,), provenance=prov) for tip in pred.strategic_tips]
        cards += [
            MemoryCard(kind="procedural", title=p.title, text=" -> ".join(p.steps), families=(family,), provenance=prov)
            for p in pred.procedures
        ]
        cards += [
            MemoryCard(kind="tool", action=t.action, text=t.tip, families=(family,), provenance=prov)
            for t in pred.tool_tips
        ]
        events = [self.ci.propose(card, observations) for card in cards]
        logger.info("distilled %d proposals for %s: %s", len(cards), family, [e.to_status for e in events])
        return [e.model_dump(mode="json") for e in events]

    def close(self) -> None:
        self.replay.close()
        self.memory.close()
