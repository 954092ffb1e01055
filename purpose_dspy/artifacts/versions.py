"""Version directories and the promotion log: which `v<N>` a reference names, which one is current.

The promotion log (`promotions.jsonl`, append-only) is the index of each version's status. Format 1 lines
(no `format` key) know `promoted` and `demoted`; format 2 adds `pending` (a candidate the gate passed, held
for a human) and `rejected`, and `who` / `why` on every line. Either kind of line is read; a pending or
rejected version is never on the promoted stack, so even a reader of format 1 never serves one.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from purpose_dspy.artifacts import files as untrusted
from purpose_dspy.artifacts.manifest import Manifest, read_manifest
from purpose_dspy.errors import ArtifactError, UsageError

PROMOTIONS = "promotions.jsonl"
LOG_FORMAT = 2
EVENTS = ("promoted", "demoted", "pending", "rejected")
_REF = re.compile(r"^(?P<root>.+?)(?:@v?(?P<at>\d+)|[/\\]v(?P<dir>\d+))?[/\\]?$")


def parse_ref(ref: str | Path) -> tuple[Path, int | None]:
    """'compiled/x' -> (compiled/x, None); 'compiled/x@v3', 'compiled/x@3', 'compiled/x/v3' -> (compiled/x, 3)."""
    match = _REF.match(str(ref))
    if not match:
        raise UsageError(f"not an artifact reference: {ref!r} (expected compiled/<name>[@v<N>])")
    number = match["at"] or match["dir"]
    return Path(match["root"]), int(number) if number else None


def _next_version(root: Path) -> int:
    return 1 + max((int(p.name[1:]) for p in root.glob("v*") if p.name[1:].isdigit()), default=0)


def versions(root: str | Path) -> list[Manifest]:
    """Every version's manifest, oldest first (unreadable ones raise ArtifactError)."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"no artifacts at {root}; compile one with: purpose-dspy compile <taskset> --out {root}")
    numbers = sorted(int(p.name[1:]) for p in root.glob("v*") if p.is_dir() and p.name[1:].isdigit())
    return [read_manifest(root / f"v{n}") for n in numbers]


def _log_promotion(root: Path, version: int, event: str, reason: str, **extra: Any) -> dict[str, Any]:
    """Append one line (format 2) to the promotion log; returns it. `extra`: e.g. who, why."""
    if event not in EVENTS:
        raise UsageError(f"not a promotion event: {event!r} (known: {', '.join(EVENTS)})")
    entry = {"format": LOG_FORMAT, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "version": version,
             "event": event, "reason": reason, **extra}
    line = json.dumps(entry) + "\n"
    # Never through a symlink, never blocking on a FIFO: the log is part of an artifact that may be untrusted.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(root / PROMOTIONS, flags, 0o644)
    except OSError as exc:
        raise ArtifactError(f"{root / PROMOTIONS} cannot be appended to ({exc.strerror}); it must be a regular file: "
                            "replace it with the log it should be") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArtifactError(f"{root / PROMOTIONS} is not a regular file; replace it with the log it should be")
        os.write(fd, line.encode())  # one O_APPEND write: lines from two processes never interleave
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def promotion_events(root: str | Path) -> list[dict[str, Any]]:
    path = Path(root) / PROMOTIONS
    try:
        raw = untrusted.read(Path(root), PROMOTIONS)  # a regular file under the cap, or refused unopened
        text = raw.decode("utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{path} is not UTF-8 text ({exc.reason}); fix or remove it (it is a log of promotions)") from exc
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{path}:{number}: not JSON; fix or remove the line (it is a log of promotions)") from exc
    return events


def _checked_events(root: str | Path) -> list[tuple[int, str, dict[str, Any]]]:
    """(version, event, line) of every log line, oldest first; a malformed or newer-format line is refused."""
    out = []
    for number, event in enumerate(promotion_events(root), start=1):
        where = f"{Path(root) / PROMOTIONS}:{number}"
        try:
            version, kind, fmt = int(event["version"]), event["event"], int(event.get("format", 1))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"{where}: not a promotion event (needs version and event); fix or remove the line") from exc
        if fmt > LOG_FORMAT:
            raise ArtifactError(f"{where}: written in log format {fmt}, this purpose-dspy reads up to {LOG_FORMAT}; "
                                "upgrade purpose-dspy")
        if kind not in EVENTS[:2 if fmt == 1 else None]:
            raise ArtifactError(f"{where}: unknown event {kind!r} for log format {fmt}; fix or remove the line")
        out.append((version, kind, event))
    return out


def promoted_stack(root: str | Path) -> list[int]:
    """Promoted versions, oldest first; the last is the one `load(root)` gives. Pending and rejected versions
    are never on it."""
    stack: list[int] = []
    for version, kind, _ in _checked_events(root):
        if version in stack:
            stack.remove(version)
        if kind == "promoted":
            stack.append(version)
    return stack


def status(root: str | Path, version: int) -> tuple[str, dict[str, Any] | None]:
    """A version's status and the log line that set it: "promoted" (now or earlier), "demoted", "pending",
    "rejected", or "kept" (written, never promoted; line None)."""
    last = next((event for v, _, event in reversed(_checked_events(root)) if v == version), None)
    return (str(last["event"]), last) if last else ("kept", None)


def rollback(root: str | Path, reason: str = "by operator") -> tuple[int, int | None]:
    """Demote the current promoted version; the one promoted before it (if any) becomes current."""
    root = Path(root)
    stack = promoted_stack(root)
    if not stack:
        raise UsageError(f"{root} has no promoted version to roll back")
    current = stack[-1]
    _log_promotion(root, current, "demoted", reason)
    return current, (stack[-2] if len(stack) > 1 else None)


def resolve(ref: str | Path, *, explicit: str | None = None) -> Path:
    """The version directory `ref` names: `compiled/x@v3` (or `compiled/x/v3`) -> compiled/x/v3, and
    `compiled/x` -> its current promoted version. `explicit`: what needs a numbered version (the error
    then asks for one instead of taking the promoted version)."""
    root, version = parse_ref(ref)
    if version is None:
        if explicit:
            raise UsageError(f"{explicit} needs a version: {root}@v<N> (see: purpose-dspy artifacts list {root})")
        if not root.is_dir():
            raise UsageError(f"no artifacts at {root}; compile one with: purpose-dspy compile <taskset> --out {root}")
        stack = promoted_stack(root)
        if not stack:
            kept = ", ".join(f"v{m.version} ({m.gate.reason})" for m in versions(root)) or "none"
            raise ArtifactError(f"{root} has no promoted version (versions: {kept}); load one explicitly as "
                                f"{root}@v<N> or promote it: purpose-dspy artifacts promote {root}@v<N>")
        version = stack[-1]
    directory = root / f"v{version}"
    if not directory.is_dir():
        raise UsageError(f"{root} has no version {version}; see: purpose-dspy artifacts list {root}")
    return directory


def approval_state(directory: Path, manifest: Manifest) -> tuple[str, dict[str, Any] | None]:
    """`status` of a version, where one written pending whose log line is gone still counts as pending (its
    manifest says approval is required, and nothing in the log ever promoted it)."""
    state, line = status(directory.parent, manifest.version)
    if state == "kept" and manifest.approval == "required":
        return "pending", None
    return state, line


def check_servable(directory: Path, manifest: Manifest) -> None:
    """Refuse a pending or rejected version: neither is ever served (`load(..., allow_unapproved=True)` to inspect)."""
    state, line = approval_state(directory, manifest)
    ref = f"{directory.parent}@v{manifest.version}"
    if state == "pending":
        raise ArtifactError(f"{ref} is pending approval (its gate passed, but it waits for an operator); it is not served "
                            f"until approved: purpose-dspy artifacts approve {ref} (or: purpose-dspy artifacts reject {ref})")
    if state == "rejected":
        who, reason = (line or {}).get("who", "an operator"), (line or {}).get("reason", "")
        raise ArtifactError(f"{ref} was rejected by {who} ({reason}); it is never served: load another version, or "
                            f"promote it by hand if you mean to: purpose-dspy artifacts promote {ref}")
