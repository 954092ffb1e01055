"""`purpose-dspy artifacts list | show | diff | promote | approve | reject | rollback | sign`: compiled versions."""

from __future__ import annotations

import json
from typing import Any

import click

from purpose_dspy.cli.options import monitor_dir_option

require_signature_option = click.option(
    "--require-signature", is_flag=True,
    help="Refuse an unsigned version; needs PURPOSE_DSPY_SIGNING_KEY (with the key set, a bad or missing signature "
         "is refused anyway).")


@click.group("artifacts")
def artifacts_group() -> None:
    """List, inspect, compare, promote, approve or reject, and roll back compiled versions."""


def _monitor(monitor_dir: str | None) -> Any:
    from purpose_dspy.monitor import Monitor

    return Monitor.open(monitor_dir) if monitor_dir else None


@artifacts_group.command("list")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def artifacts_list(root: str, as_json: bool) -> None:
    """Every version under ROOT (e.g. compiled/twx-coin), marking the promoted one (*) and each one's status:
    promoted, demoted, pending (waiting for `artifacts approve`), rejected, or kept (its gate kept the parent)."""
    from pathlib import Path

    from purpose_dspy import artifacts

    manifests, stack = artifacts.versions(root), artifacts.promoted_stack(root)
    rows = [{"version": m.version, "current": bool(stack) and stack[-1] == m.version, "created": m.created,
             "status": artifacts.approval_state(Path(root) / f"v{m.version}", m)[0],
             "parent": m.parent_version, "gate": m.gate.promoted, "reason": m.gate.reason,
             "dev_after": m.metrics["after"].success_rate if m.metrics.get("after") else None} for m in manifests]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(f"{'*' if r['current'] else ' '} v{r['version']:<3} {r['status']:<8} {r['created']}  "
                   f"parent {r['parent'] or '-':<3} "
                   f"dev {r['dev_after'] if r['dev_after'] is not None else '-'}  {r['reason']}")


@artifacts_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="The whole manifest.")
@require_signature_option
def artifacts_show(ref: str, as_json: bool, require_signature: bool) -> None:
    """One version's manifest, verified (REF: compiled/<name>[@v<N>])."""
    from purpose_dspy import artifacts

    m = artifacts.verify(directory := artifacts.resolve(ref), require_signature=require_signature)
    root = directory.parent
    if as_json:
        click.echo(m.model_dump_json())
        return
    click.echo(f"{root}/v{m.version}  created {m.created}  parent {m.parent_version}  dspy {m.dspy_version}")
    click.echo(f"taskset {m.taskset.get('name')} ({str(m.taskset.get('content_hash'))[:12]})  lms "
               + ", ".join(f"{r}={v['model']}" for r, v in m.lms.items()))
    for name, c in m.components.items():
        click.echo(f"  {name}: {c.program}  demos {c.demos}")
    for key in ("before", "after"):
        if m.metrics.get(key):
            click.echo(f"  dev {key:<6} {m.metrics[key].row()}")
    click.echo(f"  status: {artifacts.approval_state(directory, m)[0]}; gate: "
               f"{'passed' if m.gate.promoted else 'kept the parent'}: {m.gate.reason}")
    click.echo(f"  cost: {m.cost.get('lm_calls')} LM calls, {m.cost.get('tokens')} tokens; content {m.content_hash[:16]}")


@artifacts_group.command("diff")
@click.argument("a")
@click.argument("b")
@require_signature_option
def artifacts_diff(a: str, b: str, require_signature: bool) -> None:
    """What changed between two versions (JSON): files, demos, signatures, metrics."""
    from purpose_dspy import artifacts

    ma, mb = (artifacts.verify(artifacts.resolve(ref, explicit="diff"), require_signature=require_signature)
              for ref in (a, b))
    click.echo(json.dumps(artifacts.diff(ma, mb), indent=2))


@artifacts_group.command("promote")
@click.argument("ref")
@click.option("--reason", default="by operator", show_default=True)
@require_signature_option
@monitor_dir_option
def artifacts_promote(ref: str, reason: str, require_signature: bool, monitor_dir: str | None) -> None:
    """Make REF (compiled/<name>@v<N>) the version `load` gives, after verifying it loads.

    A pending version is approved instead (`artifacts approve`). With --monitor-dir the promotion is a ledger
    event and an audit line (who: operator)."""
    from purpose_dspy import artifacts
    from purpose_dspy.artifacts import records

    root = artifacts.parse_ref(ref)[0]
    stack = artifacts.promoted_stack(root) if root.is_dir() else []
    version = artifacts.promote(ref, reason, require_signature=require_signature)
    if (monitor := _monitor(monitor_dir)) is not None:
        records.record_decision(monitor, artifacts.read_manifest(root / f"v{version}"), "promotion", root=root,
                                who="operator", why=reason, served=version, replaced=stack[-1] if stack else None)
    click.echo(f"promoted v{version}")


@artifacts_group.command("approve")
@click.argument("ref")
@click.option("--reason", default="", help="Why (kept in the promotion log and the audit line).")
@require_signature_option
@monitor_dir_option
def artifacts_approve(ref: str, reason: str, require_signature: bool, monitor_dir: str | None) -> None:
    """Approve the pending version REF (compiled/<name>@v<N>): verify it loads, then promote it.

    A version is pending when its gate passed it but the compile asked for approval (`compile
    --require-approval`, `improve --require-approval`); until approved, `load` and `eval` never serve it.
    With --monitor-dir the approval is a ledger event and an audit line (who: operator).

    \b
    Example:
      purpose-dspy artifacts approve compiled/treasure-maze@v3 --reason "read the demos" --monitor-dir runs/maze
    """
    from purpose_dspy.artifacts import approve

    version = approve(ref, reason, monitor=_monitor(monitor_dir), require_signature=require_signature)
    click.echo(f"approved v{version}: promoted")


@artifacts_group.command("reject")
@click.argument("ref")
@click.option("--reason", default="", help="Why (kept in the promotion log and the audit line).")
@monitor_dir_option
def artifacts_reject(ref: str, reason: str, monitor_dir: str | None) -> None:
    """Reject the pending version REF (compiled/<name>@v<N>): it is never served; the promoted one stays.

    With --monitor-dir the rejection is a ledger event and an audit line (who: operator). A rejected version
    can still be promoted by hand (`artifacts promote`) if you change your mind."""
    from purpose_dspy.artifacts import reject

    version = reject(ref, reason, monitor=_monitor(monitor_dir))
    click.echo(f"rejected v{version}: never served")


@artifacts_group.command("sign")
@click.argument("ref")
def artifacts_sign(ref: str) -> None:
    """Sign REF (compiled/<name>@v<N>) with the key in PURPOSE_DSPY_SIGNING_KEY, after verifying it.

    Only sign a version you trust (e.g. one written before you set the key): with the key set, every
    load refuses a version whose signature is missing or does not match.
    """
    from purpose_dspy import artifacts

    directory = artifacts.sign(ref)
    click.echo(f"signed {directory}")


@artifacts_group.command("rollback")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--reason", default="by operator", show_default=True)
@monitor_dir_option
def artifacts_rollback(root: str, reason: str, monitor_dir: str | None) -> None:
    """Demote the current promoted version; the previously promoted one becomes current.

    With --monitor-dir the rollback is a ledger event and an audit line (who: operator)."""
    from pathlib import Path

    from purpose_dspy import artifacts
    from purpose_dspy.artifacts import records

    demoted, current = artifacts.rollback(root, reason)
    if (monitor := _monitor(monitor_dir)) is not None:
        records.record_decision(monitor, artifacts.read_manifest(Path(root) / f"v{demoted}"), "rollback",
                                root=Path(root), who="operator", why=reason, served=current, replaced=demoted)
    click.echo(f"demoted v{demoted}; current: {f'v{current}' if current else 'none'}")
