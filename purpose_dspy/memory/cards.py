"""The records of memory: cards (what the agent learned), their evidence, and the log of their status.

Plain pydantic, JSON-serialisable, no DSPy: the same records go to disk, to `--json` output and to
the context renderer. Cards are frozen; a change is a new copy written back by `MemoryCI`, which also
logs a `CardEvent` for every status change so any decision can be explained and rolled back.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from purpose_dspy.text import words
from purpose_dspy.types import Role

CardKind = Literal["strategic", "procedural", "tool", "critic_calibration", "failure_pattern"]
CardStatus = Literal["candidate", "promoted", "quarantined", "retired"]


class Provenance(BaseModel):
    """Where a card came from: the trajectories it was distilled from and who proposed it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trajectory_ids: tuple[str, ...] = Field(
        (), description="Trajectories the card was distilled from (merged on duplicates)."
    )
    created_by: str = Field("", description="Who proposed it, e.g. 'distiller', 'user', 'meta-judge'.")


class CardStats(BaseModel):
    """Outcomes of the tasks in scope, split by whether the card was shown: the evidence for promotion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    SEEN_LIMIT: ClassVar[int] = 200

    shown_tasks: int = Field(0, ge=0)
    shown_successes: int = Field(0, ge=0)
    shown_phi_gain: float = Field(0.0, description="Sum of Φ gains over the tasks where the card was shown.")
    unshown_tasks: int = Field(0, ge=0)
    unshown_successes: int = Field(0, ge=0)
    unshown_phi_gain: float = Field(0.0, description="Sum of Φ gains over the tasks where the card was not shown.")
    seen_task_ids: tuple[str, ...] = Field(
        (), description=f"The last {SEEN_LIMIT} task ids counted, so a task reported twice counts once."
    )

    def counted(self, task_id: str, *, shown: bool, success: bool, phi_gain: float) -> CardStats:
        """These stats with one more task's outcome added on the shown or the unshown side."""
        seen = (*self.seen_task_ids, task_id)[-self.SEEN_LIMIT :]
        if shown:
            return self.model_copy(update={
                "shown_tasks": self.shown_tasks + 1,
                "shown_successes": self.shown_successes + int(success),
                "shown_phi_gain": self.shown_phi_gain + phi_gain,
                "seen_task_ids": seen,
            })
        return self.model_copy(update={
            "unshown_tasks": self.unshown_tasks + 1,
            "unshown_successes": self.unshown_successes + int(success),
            "unshown_phi_gain": self.unshown_phi_gain + phi_gain,
            "seen_task_ids": seen,
        })

    @property
    def lift_success(self) -> float | None:
        """Success rate when shown minus when not shown; None until both sides have a task."""
        if not self.shown_tasks or not self.unshown_tasks:
            return None
        # Rounded so that equal rates compare equal (2/3 - 4/6 must be exactly 0).
        return round(self.shown_successes / self.shown_tasks - self.unshown_successes / self.unshown_tasks, 9)

    @property
    def lift_phi(self) -> float | None:
        """Mean Φ gain when shown minus when not shown; None until both sides have a task."""
        if not self.shown_tasks or not self.unshown_tasks:
            return None
        return round(self.shown_phi_gain / self.shown_tasks - self.unshown_phi_gain / self.unshown_tasks, 9)


class MemoryCard(BaseModel):
    """One thing the agent learned: a strategy, a procedure (SOP), a tip about one action, a critic
    calibration note or a failure to avoid. `text` is untrusted data, rendered as such."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field("", description="Given; else derived (sha256) from what the card says and the trajectories it "
                    "came from, so one compile's cards get the same ids on every backend; random for a card with no "
                    "trajectory (a user's).")
    kind: CardKind
    text: str = Field(description="The tip, or the SOP body for a procedural card.")
    title: str = Field("", description="Procedural cards: the one-line index entry (required for them).")
    action: str = Field("", description="Tool cards: the action prefix the tip is about, e.g. 'open door' (required).")
    status: CardStatus = "candidate"
    trust: float = Field(0.5, ge=0, le=1, description="Ranks cards in the context; moved by evidence.")
    roles: tuple[Role, ...] = Field(("actor",), description="Roles whose context may show the card.")
    families: tuple[str, ...] = Field((), description="Env ids like 'twx:coin' the card is for; empty = every family.")
    provenance: Provenance = Field(default_factory=Provenance)
    version: int = Field(1, ge=1, description="1 + the version of the card it supersedes.")
    supersedes: str | None = Field(
        None, description="Id of the older card of the same pattern this one replaces once promoted."
    )
    created: float = Field(default_factory=time.time)
    updated: float = Field(default_factory=time.time)
    stats: CardStats = Field(default_factory=CardStats)
    reason: str = Field("", description="Why the last status change happened.")

    @model_validator(mode="before")
    @classmethod
    def _content_id(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("id"):
            return data
        provenance = data.get("provenance") or {}
        provenance = provenance.model_dump() if isinstance(provenance, BaseModel) else provenance
        if not dict(provenance).get("trajectory_ids"):
            return {**data, "id": uuid.uuid4().hex[:12]}
        said = [data.get(k, "") for k in ("kind", "title", "text", "action")]
        said += [list(data.get("families", ())), data.get("version", 1), provenance]
        return {**data, "id": hashlib.sha256(json.dumps(said, sort_keys=True, default=str).encode()).hexdigest()[:12]}

    @model_validator(mode="after")
    def _kind_fields(self) -> MemoryCard:
        if self.kind == "procedural" and not self.title.strip():
            raise ValueError("a procedural card needs a non-empty `title`: the one-line index entry every context shows")
        if self.kind == "tool" and not self.action.strip():
            raise ValueError("a tool card needs a non-empty `action`: the action prefix the tip is about, e.g. 'open door'")
        return self

    @property
    def lift_success(self) -> float | None:
        return self.stats.lift_success

    @property
    def lift_phi(self) -> float | None:
        return self.stats.lift_phi

    @property
    def pattern_key(self) -> str:
        """What makes two cards "the same pattern", so a newer one supersedes an older one; "" = none."""
        if self.kind == "tool":
            return "tool:" + " ".join(self.action.lower().split())
        if self.kind == "procedural":
            return "procedural:" + " ".join(words(self.title))
        return ""

    def in_scope(self, role: str, family: str) -> bool:
        """Whether the card applies to this role working on this task family."""
        return role in self.roles and (not self.families or family in self.families)

    def overlaps(self, other: MemoryCard) -> bool:
        """Whether some role and family are in the scope of both cards."""
        families_meet = not self.families or not other.families or bool(set(self.families) & set(other.families))
        return bool(set(self.roles) & set(other.roles)) and families_meet


class CardEvent(BaseModel):
    """One entry of the memory's log: a card created, merged into or moved between statuses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: float = Field(default_factory=time.time)
    card_id: str
    from_status: CardStatus | None = Field(description="None when the event created the card.")
    to_status: CardStatus
    reason: str
    related: str | None = Field(None, description="The other card of a supersession or merge.")

    @property
    def is_transition(self) -> bool:
        """A creation or a status change (a merge leaves the status as it was)."""
        return self.from_status != self.to_status


class MemoryContext(BaseModel):
    """What `MemoryStore.context` gives a role: the text to include, and which cards it holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    shown: tuple[str, ...] = Field((), description="Ids of the cards rendered (report them to `record_outcome`).")
    dropped: tuple[str, ...] = Field((), description="Ids of applicable cards left out to stay within the budget.")
    tokens: int = Field(0, description="Estimated tokens of `text` (ceil(len/4)).")
