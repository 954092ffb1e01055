"""MemoryCI: what may enter memory, what earns a place in every context, and how to undo either.

Admission screens a proposed card (quarantine), folds near-duplicates into the card they repeat, and
links a new version of a known pattern to the card it will replace. Promotion is earned on evidence
only: a candidate is shown in a canary share of tasks, and it is promoted when tasks that showed it
did better than tasks that did not; it is retired when, after enough uses, they did not. Every status
change is a `CardEvent` in the store's log, which is also what `rollback` reads to undo a change.
All read-decide-write work happens inside one store transaction, so processes can share a store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from purpose_dspy.errors import UsageError
from purpose_dspy.memory.cards import CardEvent, CardStats, CardStatus, MemoryCard
from purpose_dspy.memory.config import MemoryConfig
from purpose_dspy.memory.screen import quarantine_reason
from purpose_dspy.memory.store import MemoryStore
from purpose_dspy.text import jaccard

logger = logging.getLogger(__name__)

SHOWABLE: tuple[CardStatus, ...] = ("candidate", "promoted")
"""Statuses of cards that can reach a context, and so can be measured, duplicated or superseded."""


class MemoryCI:
    """Continuous integration for memory: admission, evidence-based promotion, retirement, rollback."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    @property
    def config(self) -> MemoryConfig:
        return self.store.config

    # -- admission -----------------------------------------------------------------------------

    def propose(self, card: MemoryCard, observations: Sequence[str] = ()) -> CardEvent:
        """Admit a new card: quarantined, merged into a duplicate, or stored as a candidate.

        `observations` are the texts of the states of the trajectories the card was distilled from: a card
        copied or paraphrased from one the shared screen flags is quarantined (`memory/screen.py`). The
        card's status, stats, version and supersession are decided here, whatever the caller set.
        """
        card = card.model_copy(update={"status": "candidate", "stats": CardStats(), "version": 1, "supersedes": None})
        with self.store.transaction():
            if card.id in self.store:  # the same proposal again (a resumed compile): its card stands as decided
                had = self.store.get(card.id)
                return CardEvent(card_id=had.id, from_status=had.status, to_status=had.status, reason="proposed again")
            if reason := quarantine_reason(card, observations, copied_words=self.config.copied_words):
                logger.warning("memory card %s quarantined at admission: %s", card.id, reason)
                return self._create(card, "quarantined", f"quarantined at admission: {reason}")
            existing = [c for c in self.store.cards() if c.status in SHOWABLE and c.kind == card.kind and c.overlaps(card)]
            if duplicate := self._duplicate_of(card, existing):
                return self._merge(card, into=duplicate)
            if older := self._same_pattern(card, existing):
                card = card.model_copy(update={"supersedes": older.id, "version": older.version + 1})
            return self._create(card, "candidate", f"proposed by {card.provenance.created_by or 'an unnamed source'}")

    def _duplicate_of(self, card: MemoryCard, existing: Sequence[MemoryCard]) -> MemoryCard | None:
        text = _comparable(card)
        best = max(existing, key=lambda c: jaccard(text, _comparable(c)), default=None)
        if best is not None and jaccard(text, _comparable(best)) >= self.config.duplicate_jaccard:
            return best
        return None

    @staticmethod
    def _same_pattern(card: MemoryCard, existing: Sequence[MemoryCard]) -> MemoryCard | None:
        """The latest card of the same pattern (tool action, procedure title) this one would replace."""
        same = [c for c in existing if card.pattern_key and c.pattern_key == card.pattern_key]
        return max(same, key=lambda c: (c.version, c.created), default=None)

    def _create(self, card: MemoryCard, status: CardStatus, reason: str) -> CardEvent:
        card = card.model_copy(update={"status": status, "reason": reason, "updated": time.time()})
        self.store.add(card)
        event = CardEvent(card_id=card.id, from_status=None, to_status=status, reason=reason, related=card.supersedes)
        self.store.log(event)
        logger.info("memory card %s created as %s: %s", card.id, status, reason)
        return event

    def _merge(self, card: MemoryCard, *, into: MemoryCard) -> CardEvent:
        ids = tuple(dict.fromkeys((*into.provenance.trajectory_ids, *card.provenance.trajectory_ids)))
        provenance = into.provenance.model_copy(update={"trajectory_ids": ids})
        self.store.put(into.model_copy(update={"provenance": provenance, "updated": time.time()}))
        event = CardEvent(card_id=into.id, from_status=into.status, to_status=into.status,
                          reason="merged duplicate", related=card.id)
        self.store.log(event)
        logger.info("memory card proposal %s merged into duplicate %s", card.id, into.id)
        return event

    # -- evidence ------------------------------------------------------------------------------

    def record_outcome(
        self, *, task_id: str, family: str, role: str = "actor", shown: Sequence[str], success: bool, phi_gain: float
    ) -> list[CardEvent]:
        """Count one finished task for every card in scope, shown or not, and review those cards.

        `shown` is `MemoryContext.shown` of that task. A task already counted for a card is skipped.
        Returns the status changes the new evidence caused.
        """
        shown_ids = set(shown)
        events: list[CardEvent] = []
        with self.store.transaction():
            for card in self.store.cards(family=family):
                if card.status not in SHOWABLE or not card.in_scope(role, family) or task_id in card.stats.seen_task_ids:
                    continue
                was_shown = card.id in shown_ids
                stats = card.stats.counted(task_id, shown=was_shown, success=success, phi_gain=phi_gain)
                card = card.model_copy(update={"stats": stats, "updated": time.time()})
                self.store.put(card)
                if card.status == "candidate":
                    events += self._review_candidate(card)
                else:
                    events += self._review_promoted(card, shown=was_shown, improved=success or phi_gain > 0)
        return events

    def _review_candidate(self, card: MemoryCard) -> list[CardEvent]:
        """Promote on positive lift; retire when twice the needed uses showed none; else keep waiting."""
        stats, cfg = card.stats, self.config
        if stats.shown_tasks < cfg.min_uses or stats.unshown_tasks < cfg.min_unshown:
            return []
        lift, lift_phi = card.lift_success or 0.0, card.lift_phi or 0.0  # both sides have tasks: never None here
        evidence = (f"success {lift:+.2f}, Φ {lift_phi:+.2f} "
                    f"over {stats.shown_tasks} shown / {stats.unshown_tasks} unshown tasks")
        if lift > 0 or (lift == 0 and lift_phi > 0):
            if reason := quarantine_reason(card, copied_words=cfg.copied_words):  # admitted by an older screen
                return [self._transition(card, "quarantined", f"quarantined at promotion: {reason}")]
            return self._promote(card, f"lift: {evidence}")
        if stats.shown_tasks >= 2 * cfg.min_uses:
            return [self._transition(card, "retired", f"no lift: {evidence}")]
        return []

    def _review_promoted(self, card: MemoryCard, *, shown: bool, improved: bool) -> list[CardEvent]:
        """Move trust with each outcome the card took part in; retire it once its lift turns negative."""
        if shown:
            step = self.config.trust_step if improved else -self.config.trust_step
            card = card.model_copy(update={"trust": min(1.0, max(0.0, round(card.trust + step, 9)))})
            self.store.put(card)
        lift = card.lift_success
        if card.stats.shown_tasks >= 2 * self.config.min_uses and lift is not None and lift < 0:
            return [self._transition(card, "retired", f"lift turned negative: success {lift:+.2f}, Φ {card.lift_phi:+.2f}")]
        return []

    # -- manual transitions --------------------------------------------------------------------

    def promote(self, card_id: str, reason: str = "by operator", *, force: bool = False) -> list[CardEvent]:
        """Promote a card by hand (retiring the card it supersedes). A quarantined card needs `force`."""
        with self.store.transaction():
            card = self._changeable(card_id, "promoted")
            if card.status == "quarantined" and not force:
                raise UsageError(
                    f"card {card_id} is quarantined ({card.reason}); promoting it would show it in every context. "
                    "Once someone has read it and judged it safe, promote with force=True (CLI: --force)."
                )
            return self._promote(card, reason)

    def quarantine(self, card_id: str, reason: str) -> list[CardEvent]:
        """Take a card out of every context and out of evidence counting, kept for inspection."""
        with self.store.transaction():
            return [self._transition(self._changeable(card_id, "quarantined"), "quarantined", reason)]

    def retire(self, card_id: str, reason: str) -> list[CardEvent]:
        """Take a card out of every context for good (it stays in the store and the log)."""
        with self.store.transaction():
            return [self._transition(self._changeable(card_id, "retired"), "retired", reason)]

    def rollback(self, card_id: str) -> list[CardEvent]:
        """Undo the card's last status change (and the other half of a supersession); nothing is deleted.

        Rolling back a creation retires the card. The rollback is itself logged, so it can be rolled back.
        """
        with self.store.transaction():
            card = self.store.get(card_id)
            last = self._last_transition(card_id)
            if last is None:
                raise UsageError(f"card {card_id} has no status change to undo; `events({card_id!r})` shows its history")
            if last.from_status is None:
                return [self._transition(card, "retired", "rolled back", related=last.related)]
            events = [self._transition(card, last.from_status, f"rolled back: {last.reason}", related=last.related)]
            if last.related is not None:
                other_last = self._last_transition(last.related)
                # Only the other half of the same operation, and only if nothing has moved that card since.
                if other_last is not None and other_last.related == card_id and other_last.from_status is not None:
                    other = self.store.get(last.related)
                    events.append(self._transition(
                        other, other_last.from_status, f"rolled back with {card_id}: {other_last.reason}", related=card_id
                    ))
            return events

    # -- helpers -------------------------------------------------------------------------------

    def _changeable(self, card_id: str, to_status: CardStatus) -> MemoryCard:
        card = self.store.get(card_id)
        if card.status == to_status:
            raise UsageError(f"card {card_id} is already {to_status} ({card.reason})")
        return card

    def _promote(self, card: MemoryCard, reason: str) -> list[CardEvent]:
        """Promote `card`, raise its trust, and retire the card it supersedes if that one is still in use."""
        older = self._superseded(card)
        trust = min(1.0, round(card.trust + self.config.trust_step, 9))
        events = [self._transition(card, "promoted", reason, related=older.id if older else None, trust=trust)]
        if older is not None:
            events.append(self._transition(older, "retired", f"superseded by {card.id}", related=card.id))
        return events

    def _superseded(self, card: MemoryCard) -> MemoryCard | None:
        if card.supersedes is None:
            return None
        try:
            older = self.store.get(card.supersedes)
        except UsageError:  # the older card was removed by hand: nothing left to retire
            return None
        return older if older.status in SHOWABLE else None

    def _transition(self, card: MemoryCard, to_status: CardStatus, reason: str, *, related: str | None = None,
                    **changes: object) -> CardEvent:
        """Write the card with its new status and log the change: the one way statuses change."""
        self.store.put(card.model_copy(update={"status": to_status, "reason": reason, "updated": time.time(), **changes}))
        event = CardEvent(card_id=card.id, from_status=card.status, to_status=to_status, reason=reason, related=related)
        self.store.log(event)
        logger.info("memory card %s: %s -> %s (%s)", card.id, card.status, to_status, reason)
        return event

    def _last_transition(self, card_id: str) -> CardEvent | None:
        return next((e for e in reversed(self.store.events(card_id)) if e.is_transition), None)


def _comparable(card: MemoryCard) -> str:
    """The words that make two cards say the same thing."""
    return " ".join(part for part in (card.title, card.action, card.text) if part)
