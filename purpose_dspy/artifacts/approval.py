"""Pending versions: `approve` promotes one, `reject` marks it never to be served.

A compile run with `pending=True` (`compile --require-approval`, `improve --require-approval`) writes a
version its gate passed as *pending*: a `pending` line in the promotion log and `approval: "required"`
in its manifest. `load()` never serves it (not as the promoted version, and not by number), so nothing
the self-improvement loop builds reaches a caller before an operator has looked. Both decisions are
appended to the promotion log with who and why, and, given a monitor, as a ledger event and an audit line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from purpose_dspy.artifacts import records
from purpose_dspy.artifacts.manifest import Manifest, read_manifest
from purpose_dspy.artifacts.store import verify
from purpose_dspy.artifacts.versions import _log_promotion, approval_state, promoted_stack, resolve, versions
from purpose_dspy.errors import UsageError

if TYPE_CHECKING:
    from purpose_dspy.monitor import Monitor


def pending_versions(root: str | Path) -> list[int]:
    """The versions under `root` waiting for an operator, oldest first."""
    root = Path(root)
    return [m.version for m in versions(root) if approval_state(root / f"v{m.version}", m)[0] == "pending"]


def approve(ref: str | Path, why: str = "", *, who: str = "operator", monitor: Monitor | None = None,
            require_signature: bool = False) -> int:
    """Promote the pending version `ref` (compiled/<name>@v<N>) after verifying it loads; returns N."""
    directory = resolve(ref, explicit="approve")
    manifest = verify(directory, require_signature=require_signature)
    _must_be_pending(directory, manifest, "approve")
    stack = promoted_stack(directory.parent)
    reason = f"approved by {who}" + (f": {why}" if why else "")
    _log_promotion(directory.parent, manifest.version, "promoted", reason, who=who, why=why, approved=True)
    if monitor is not None:
        records.record_decision(monitor, manifest, "approval", root=directory.parent, who=who, why=why,
                                served=manifest.version, replaced=stack[-1] if stack else None)
    return manifest.version


def reject(ref: str | Path, why: str = "", *, who: str = "operator", monitor: Monitor | None = None) -> int:
    """Mark the pending version `ref` rejected: it is never served (an operator may still `promote` it by hand)."""
    directory = resolve(ref, explicit="reject")
    manifest = read_manifest(directory)
    _must_be_pending(directory, manifest, "reject")
    _log_promotion(directory.parent, manifest.version, "rejected", why or f"rejected by {who}", who=who, why=why)
    if monitor is not None:
        stack = promoted_stack(directory.parent)
        records.record_decision(monitor, manifest, "rejection", root=directory.parent, who=who, why=why,
                                served=stack[-1] if stack else None)
    return manifest.version


def _must_be_pending(directory: Path, manifest: Manifest, action: str) -> None:
    state, _ = approval_state(directory, manifest)
    if state == "pending":
        return
    ref = f"{directory.parent}@v{manifest.version}"
    advice = {
        "kept": f"it was never pending (its gate kept the parent: {manifest.gate.reason}); promote it by hand if you "
                f"mean to: purpose-dspy artifacts promote {ref}",
        "rejected": f"it was rejected already; promote it by hand if you mean to: purpose-dspy artifacts promote {ref}",
        "promoted": "it is promoted already",
        "demoted": f"it was promoted, then demoted; promote it again with: purpose-dspy artifacts promote {ref}",
    }[state]
    raise UsageError(f"cannot {action} {ref}: {advice}")
