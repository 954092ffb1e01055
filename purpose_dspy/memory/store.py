"""MemoryStore: memory cards and their event log, on disk for every process or in memory for one.

On disk it is a diskcache directory opened with a JSON-only Disk (a pickled row is refused, never
unpickled). Cards live under "card/<id>"; events are appended with `Cache.push`, which is atomic and
ordered across processes. Callers that read, decide and write (`MemoryCI`) do so inside
`transaction()`, so two processes never overwrite each other's updates. Every record is validated
on read: a store this version cannot trust raises `StoreCorruptError` naming the record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from purpose_dspy.errors import UsageError
from purpose_dspy.memory.cards import (
    CardEvent,
    CardKind,
    CardStatus,
    MemoryCard,
    MemoryContext,
)
from purpose_dspy.memory.config import MemoryConfig
from purpose_dspy.memory.render import render_context, shows_candidate
from purpose_dspy.stores.records import (
    EVENT_PREFIX,
    DiskRecords,
    MemoryRecords,
    check_format,
    read_record,
    validate_record,
)
from purpose_dspy.types import State

logger = logging.getLogger(__name__)

FORMAT = 1
CARD_PREFIX = "card/"


class MemoryStore:
    """Cards by id plus an append-only event log. `directory=None` keeps both in this process."""

    def __init__(self, directory: str | Path | None = None, config: MemoryConfig | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.config = config or MemoryConfig()
        self._records = DiskRecords(self.directory) if self.directory is not None else MemoryRecords()
        if self.directory is not None:
            self._check_format()

    # -- cards ---------------------------------------------------------------------------------

    def add(self, card: MemoryCard) -> None:
        """Insert a new card as it is (no admission checks: `MemoryCI.propose` is the way in)."""
        if not self._records.add(CARD_PREFIX + card.id, card.model_dump(mode="json")):
            raise UsageError(f"card {card.id} already exists in {self._where}; use put() to replace it")

    def put(self, card: MemoryCard) -> None:
        """Write `card`, replacing the stored card with the same id."""
        self._records.set(CARD_PREFIX + card.id, card.model_dump(mode="json"))

    def __contains__(self, card_id: object) -> bool:
        return isinstance(card_id, str) and self._read(CARD_PREFIX + card_id) is not None

    def get(self, card_id: str) -> MemoryCard:
        key = CARD_PREFIX + card_id
        record = self._read(key)
        if record is None:
            raise UsageError(f"no card {card_id} in {self._where}; {self._listing_hint}")
        return self._validate(MemoryCard, key, record)

    def cards(
        self, status: CardStatus | None = None, kind: CardKind | None = None, family: str | None = None
    ) -> list[MemoryCard]:
        """Cards matching the filters (a family matches cards for it and cards for every family),
        most trusted first, then oldest first."""
        found = []
        for key in self._records.keys(CARD_PREFIX):
            record = self._read(key)
            if record is None:  # deleted by hand between listing and reading
                continue
            card = self._validate(MemoryCard, key, record)
            if (status is None or card.status == status) and (kind is None or card.kind == kind) and (
                family is None or not card.families or family in card.families
            ):
                found.append(card)
        return sorted(found, key=lambda c: (-c.trust, c.created))

    def __len__(self) -> int:
        return len(self._records.keys(CARD_PREFIX))

    # -- events --------------------------------------------------------------------------------

    def log(self, event: CardEvent) -> None:
        """Append `event` to the log (atomic; ordered across processes)."""
        self._records.push_event(event.model_dump(mode="json"))

    def events(self, card_id: str | None = None) -> list[CardEvent]:
        """The log in the order it was written, optionally only one card's events."""
        events = []
        for key in self._records.keys(EVENT_PREFIX + "-"):
            event = self._validate(CardEvent, key, self._read(key))
            if card_id is None or event.card_id == card_id:
                events.append(event)
        return events

    # -- the context ---------------------------------------------------------------------------

    def context(self, purpose: str, state: State, *, family: str, task_id: str, role: str = "actor") -> MemoryContext:
        """The memory a role sees for this state: promoted cards, plus the candidates this task is a
        canary for, most trusted first, rendered within `config.budget_tokens`."""
        share = self.config.canary_share
        chosen = [
            card for card in self.cards(family=family)
            if card.in_scope(role, family)
            and (card.status == "promoted" or (card.status == "candidate" and shows_candidate(card.id, task_id, share)))
        ]
        chosen.sort(key=lambda c: (-c.trust, c.status != "promoted", c.created))
        return render_context(chosen, purpose=purpose, state=state, role=role, budget_tokens=self.config.budget_tokens)

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Read, decide and write with no other writer in between (other processes wait, up to 30 s)."""
        with self._records.transact():
            yield

    def close(self) -> None:
        self._records.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _where(self) -> str:
        return str(self.directory) if self.directory is not None else "the in-memory store"

    @property
    def _listing_hint(self) -> str:
        if self.directory is None:
            return "`MemoryStore.cards()` lists the ids"
        return "`purpose-dspy memory list --dir DIR` shows the ids"

    def _check_format(self) -> None:
        check_format(self._records, f"memory store {self.directory}", FORMAT)
        logger.debug("memory store %s opened (format %s)", self.directory, FORMAT)

    def _read(self, key: str) -> Any:
        return read_record(self._records, key)

    def _validate(self, model: type[BaseModel], key: str, record: Any) -> Any:
        return validate_record(model, key, record, f"memory store {self._where}")
