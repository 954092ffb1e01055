"""The editor's archive: outputs that met their target, shown to later drafts of similar tasks.

A self-feeding archive fails in known ways; each has its counter here:
- a sycophantic editor letting mediocre work in: `admit` applies the gate itself, on the score Python
  composed (score >= target), and never trusts a caller's "accepted" flag;
- bloat: a cap (`max_entries`) evicts the lowest score first, the oldest first among equal scores, and
  `max_age_days` evicts stale entries; every eviction is logged;
- mode collapse (drafts imitating the archive): a draft sees a few examples chosen by the similarity of
  the task's brief, never two near-identical answers, and `render_examples` tells it to learn why they
  passed, not to copy their form;
- a poisoned example: an answer the shared screen (`safeguards/screen.py`) flags is never shown to a draft;
- quality drift: every admission goes to an append-only log (evicted entries still count), and
  `drift()` compares the latest window's mean score with the earlier windows'.

Storage is the memory store's: a diskcache directory with a JSON-only Disk (a pickled row is refused,
never unpickled), entries under "entry/<id>", events pushed in order; each admission is one SQLite
transaction, committed before `admit` returns, so a killed process or a second writer loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from purpose_dspy.errors import UsageError
from purpose_dspy.safeguards.screen import screen
from purpose_dspy.stores.records import (
    EVENT_PREFIX,
    DiskRecords,
    MemoryRecords,
    check_format,
    read_record,
    validate_record,
)
from purpose_dspy.text import one_line, overlap, shingles

logger = logging.getLogger(__name__)

FORMAT = 1
ENTRY_PREFIX = "entry/"
EXAMPLE_CHARS = 400
"""Longest task brief or answer shown to a draft; the rest is cut (archived text is untrusted)."""
_CONSTRAINTS_LINE = re.compile(r"^[ \t]*Constraints:", re.MULTILINE)

EXAMPLES_HEADER = (
    "Accepted answers to similar tasks follow. Learn from them what made each one meet its constraints. "
    "Do NOT copy their structure, opening words, phrasing or length: write for the new task's own constraints."
)


def task_brief(task: str) -> str:
    """The task text before its "Constraints:" line: the constraint lines are boilerplate every task shares."""
    found = _CONSTRAINTS_LINE.search(task)
    return task[: found.start()] if found else task


class ArchiveConfig(BaseModel):
    """Frozen so the rules an archive was filled by cannot change in the middle of a run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_entries: int = Field(
        200, ge=1, description="Cap on entries; past it the lowest score is evicted first, the oldest among equals.",
    )
    max_age_days: float | None = Field(
        None, gt=0, description="Entries older than this are evicted at the next admission; None keeps them all.",
    )
    examples_per_draft: int = Field(3, ge=0, description="How many archived answers `similar` returns by default.")
    min_similarity: float = Field(
        0.0, ge=0, le=1, description="Brief-to-brief word(-pair) overlap below which an entry is not shown at all.",
    )
    max_output_overlap: float = Field(
        0.8, gt=0, le=1,
        description="An answer overlapping an already chosen example's answer this much is skipped, so a draft never "
                    "sees the same structure twice (a push towards mode collapse).",
    )
    drift_window: int = Field(10, ge=1, description="Admissions per window when the mean archived score is tracked.")
    drift_warn_drop: float = Field(
        0.5, ge=0,
        description="Warn when the latest full window's mean score is this much below the mean of the earlier windows.",
    )


class ArchivedOutput(BaseModel):
    """One accepted output, with the task it answered and the score that let it in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="sha256 of the task text and the output, first 12 hex digits: one entry per pair.")
    task_id: str
    form: str = Field(description="The kind of writing, e.g. 'tagline', 'product description'.")
    task: str = Field(description="The full task text, constraints included.")
    output: str
    score: float = Field(ge=0, le=10, description="The composite score (0-10) Python computed for the output.")
    target: float = Field(ge=0, le=10, description="The target it had to reach.")
    features: dict[str, Any] = Field(default_factory=dict, description="Whatever the editor recorded about it.")
    created: str = Field(description="When it was admitted, ISO 8601 UTC.")
    created_ts: float = Field(description="The same, in seconds since the epoch (ages and ordering).")

    @property
    def brief(self) -> str:
        return task_brief(self.task)


class ArchiveEvent(BaseModel):
    """One line of the append-only log: an admission, an eviction or a removal by hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["admit", "evict", "remove"]
    time: float
    id: str
    score: float
    reason: str = ""


class DriftWindow(BaseModel):
    """`drift_window` consecutive admissions (the last window may be partial and is not judged)."""

    index: int
    first_time: float
    last_time: float
    admissions: int
    mean_score: float


class Drift(BaseModel):
    """Whether the archived scores are falling: the latest full window against the full windows before it."""

    windows: list[DriftWindow]
    latest_mean: float | None = None
    earlier_mean: float | None = None
    falling: bool = False
    message: str = Field("", description="Empty when fine; otherwise what fell and what to do.")


def entry_id(task: str, output: str) -> str:
    return hashlib.sha256(json.dumps([task, output]).encode()).hexdigest()[:12]


def render_examples(examples: list[ArchivedOutput]) -> str:
    """What a draft is shown: the don't-copy instruction, then each example's brief and answer on one line each."""
    if not examples:
        return ""
    blocks = [
        f"Task: {one_line(e.brief, EXAMPLE_CHARS)}\n"
        f"Accepted answer (score {round(e.score, 2):g}/10): {one_line(e.output, EXAMPLE_CHARS)}"
        for e in examples
    ]
    return "\n\n".join([EXAMPLES_HEADER, *blocks])


def measure_drift(events: list[ArchiveEvent], window: int, warn_drop: float, hint: str) -> Drift:
    """Mean score per window of admissions; falling when the latest full window's mean is `warn_drop` below the
    mean of the full windows before it. Pure: `admit` judges the log before and after its own event."""
    admitted = [e for e in events if e.kind == "admit"]
    chunks = [admitted[i : i + window] for i in range(0, len(admitted), window)]
    windows = [
        DriftWindow(index=i, first_time=c[0].time, last_time=c[-1].time, admissions=len(c),
                    mean_score=sum(e.score for e in c) / len(c))
        for i, c in enumerate(chunks)
    ]
    full = [w for w in windows if w.admissions == window]
    if len(full) < 2:
        return Drift(windows=windows)
    latest, earlier = full[-1].mean_score, sum(w.mean_score for w in full[:-1]) / (len(full) - 1)
    falling = earlier - latest >= warn_drop - 1e-9
    message = (
        f"the mean archived score fell from {earlier:.2f} to {latest:.2f} over the last {window} admissions; "
        f"raise the target, or inspect recent entries with `{hint}` and remove the weak ones"
    ) if falling else ""
    return Drift(windows=windows, latest_mean=latest, earlier_mean=earlier, falling=falling, message=message)


class Archive:
    """Accepted outputs by id plus an append-only event log. `directory=None` keeps both in this process."""

    def __init__(self, directory: str | Path | None = None, config: ArchiveConfig | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.config = config or ArchiveConfig()
        self._clock = clock
        self._records = DiskRecords(self.directory) if self.directory is not None else MemoryRecords()
        if self.directory is not None:
            self._check_format()

    # -- the way in ----------------------------------------------------------------------------

    def admit(self, *, task_id: str, form: str, task: str, output: str, score: float, target: float,
              features: dict[str, Any] | None = None) -> ArchivedOutput | None:
        """Archive `output` if its composite `score` reaches `target`; the entry, or None if refused or evicted
        at once (the archive is full of higher scores). An identical (task, output) returns the stored entry."""
        score, target = _checked_score("score", score), _checked_score("target", target)
        features = _checked_features(features)
        if score < target:
            logger.info("not archived: %s scored %.2f, below its target %.2f", task_id, score, target)
            return None
        if not output.strip():
            logger.info("not archived: %s has an empty output", task_id)
            return None
        with self._records.transact():
            now = self._clock()  # read under the lock, so log order and creation times agree across processes
            existing = self._entry(entry_id(task, output))
            if existing is not None:
                logger.info("already archived: %s (%s)", existing.id, task_id)
                return existing
            entry = ArchivedOutput(
                id=entry_id(task, output), task_id=task_id, form=form, task=task, output=output, score=score,
                target=target, features=features, created=_iso(now), created_ts=now,
            )
            history = self.events()
            self._records.set(ENTRY_PREFIX + entry.id, entry.model_dump(mode="json"))
            admitted = ArchiveEvent(kind="admit", time=now, id=entry.id, score=score)
            self._records.push_event(admitted.model_dump(mode="json"))
            evicted = self._evict(now)
        logger.info("archived %s (%s, score %.2f >= %.2f)", entry.id, task_id, score, target)
        if (found := screen(output)).flagged:
            logger.warning("archived %s is flagged by the screen (%s); it is never shown to a draft", entry.id,
                           found.reason())
        before, after = self._drift(history), self._drift([*history, admitted])
        if after.falling and not before.falling:
            logger.warning("archive %s: %s", self._where, after.message)
        if any(e.id == entry.id for e in evicted):
            logger.info("%s evicted at once: the archive's %d entries all score at least as high",
                        entry.id, self.config.max_entries)
            return None
        return entry

    def evict(self) -> list[ArchivedOutput]:
        """Apply the cap and the age limit now (`admit` does it after every admission); what was evicted."""
        with self._records.transact():
            return self._evict(self._clock())

    def remove(self, archived_id: str) -> ArchivedOutput:
        """Take one entry out by hand (logged; it still counts in the drift history)."""
        with self._records.transact():
            entry = self.get(archived_id)
            self._records.delete(ENTRY_PREFIX + archived_id)
            self._log(ArchiveEvent(kind="remove", time=self._clock(), id=entry.id, score=entry.score,
                                   reason="removed by hand"))
        logger.info("removed %s from archive %s", archived_id, self._where)
        return entry

    # -- the way out ---------------------------------------------------------------------------

    def similar(self, task: str, k: int | None = None, *, exclude_task_id: str | None = None) -> list[ArchivedOutput]:
        """Up to `k` entries whose task brief is most like `task`'s; ties go to the higher score, then the newer.
        An answer much like one already chosen is skipped, and so is one the shared screen flags (it never
        reaches a draft). `exclude_task_id` keeps an evaluation from being shown its own task's archived answer."""
        k = self.config.examples_per_draft if k is None else k
        if k < 0:
            raise UsageError(f"k is how many examples to return, 0 or more; got {k}")
        query = shingles(task_brief(task))
        ranked = sorted(
            ((overlap(query, shingles(e.brief)), e) for e in self._all_entries()
             if exclude_task_id is None or e.task_id != exclude_task_id),
            key=lambda pair: (-pair[0], -pair[1].score, -pair[1].created_ts, pair[1].id),
        )
        chosen: list[ArchivedOutput] = []
        for similarity, entry in ranked:
            if len(chosen) == k or similarity < self.config.min_similarity:
                break
            if screen(entry.output).flagged:  # archived before the screen knew its kind, or by hand
                continue
            answer = shingles(entry.output)
            if all(overlap(answer, shingles(c.output)) < self.config.max_output_overlap for c in chosen):
                chosen.append(entry)
        logger.debug("examples for a draft: %s", [e.id for e in chosen])
        return chosen

    def entries(self) -> list[ArchivedOutput]:
        """Every entry, newest first."""
        return sorted(self._all_entries(), key=lambda e: (-e.created_ts, e.id))

    def get(self, archived_id: str) -> ArchivedOutput:
        entry = self._entry(archived_id)
        if entry is None:
            raise UsageError(f"no archived output {archived_id} in {self._where}; {self._listing_hint}")
        return entry

    def events(self) -> list[ArchiveEvent]:
        """The log in the order it was written: admissions, evictions, removals."""
        return [self._validate(ArchiveEvent, key, self._read(key)) for key in self._records.keys(EVENT_PREFIX + "-")]

    def drift(self) -> Drift:
        return self._drift(self.events())

    def __len__(self) -> int:
        return len(self._records.keys(ENTRY_PREFIX))

    def close(self) -> None:
        self._records.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _evict(self, now: float) -> list[ArchivedOutput]:
        """Inside a transaction: drop entries past the age limit, then the lowest scores past the cap."""
        kept, doomed = self._all_entries(), []
        if self.config.max_age_days is not None:
            cutoff = now - self.config.max_age_days * 86400
            doomed += [(e, f"older than {self.config.max_age_days:g} days") for e in kept if e.created_ts < cutoff]
            kept = [e for e in kept if e.created_ts >= cutoff]
        over = len(kept) - self.config.max_entries
        if over > 0:
            kept.sort(key=lambda e: (e.score, e.created_ts, e.id))
            doomed += [(e, f"lowest score past the cap of {self.config.max_entries}") for e in kept[:over]]
        for entry, reason in doomed:
            self._records.delete(ENTRY_PREFIX + entry.id)
            self._log(ArchiveEvent(kind="evict", time=now, id=entry.id, score=entry.score, reason=reason))
            logger.info("evicted %s (score %.2f): %s", entry.id, entry.score, reason)
        return [entry for entry, _ in doomed]

    def _drift(self, events: list[ArchiveEvent]) -> Drift:
        return measure_drift(events, self.config.drift_window, self.config.drift_warn_drop, self._list_command)

    def _log(self, event: ArchiveEvent) -> None:
        self._records.push_event(event.model_dump(mode="json"))

    def _all_entries(self) -> list[ArchivedOutput]:
        found = []
        for key in self._records.keys(ENTRY_PREFIX):
            record = self._read(key)
            if record is not None:  # removed by another process between listing and reading
                found.append(self._validate(ArchivedOutput, key, record))
        return found

    def _entry(self, archived_id: str) -> ArchivedOutput | None:
        key = ENTRY_PREFIX + archived_id
        record = self._read(key)
        return None if record is None else self._validate(ArchivedOutput, key, record)

    @property
    def _where(self) -> str:
        return str(self.directory) if self.directory is not None else "the in-memory archive"

    @property
    def _list_command(self) -> str:
        if self.directory is None:
            return "Archive.entries()"
        return f"purpose-dspy archive list --dir {self.directory}"

    @property
    def _listing_hint(self) -> str:
        return f"`{self._list_command}` shows the ids"

    def _check_format(self) -> None:
        check_format(self._records, f"archive {self.directory}", FORMAT)
        logger.debug("archive %s opened (format %s)", self.directory, FORMAT)

    def _read(self, key: str) -> Any:
        return read_record(self._records, key)

    def _validate(self, model: type[BaseModel], key: str, record: Any) -> Any:
        return validate_record(model, key, record, f"archive {self._where}")


def _checked_score(name: str, value: Any) -> float:
    """A composite score: a finite number from 0 to 10 (NaN would slip past `score < target`)."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not number or not (math.isfinite(value) and 0 <= value <= 10):
        raise UsageError(f"{name} must be the composite score, a number from 0 to 10; got {value!r}")
    return float(value)


def _checked_features(features: dict[str, Any] | None) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(features or {}, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"features must be JSON-serialisable (they are stored as JSON): {exc}") from exc


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
