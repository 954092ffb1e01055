"""`purpose-dspy artifacts list | show | diff | promote | rollback`: compiled versions."""

from __future__ import annotations

import json

import click


@click.group("artifacts")
def artifacts_group() -> None:
    """List, inspect, compare, promote and roll back compiled versions."""


@artifacts_group.command("list")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def artifacts_list(root: str, as_json: bool) -> None:
    """Every version under ROOT (e.g. compiled/twx-coin), marking the promoted one."""
    from purpose_dspy import artifacts

    manifests, stack = artifacts.versions(root), artifacts.promoted_stack(root)
    rows = [{"version": m.version, "current": bool(stack) and stack[-1] == m.version, "created": m.created,
             "parent": m.parent_version, "gate": m.gate.promoted, "reason": m.gate.reason,
             "dev_after": m.metrics["after"].success_rate if m.metrics.get("after") else None} for m in manifests]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(f"{'*' if r['current'] else ' '} v{r['version']:<3} {r['created']}  parent {r['parent'] or '-':<3} "
                   f"dev {r['dev_after'] if r['dev_after'] is not None else '-'}  {r['reason']}")


@artifacts_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="The whole manifest.")
def artifacts_show(ref: str, as_json: bool) -> None:
    """One version's manifest, verified (REF: compiled/<name>[@v<N>])."""
    from purpose_dspy import artifacts

    m = artifacts.verify(directory := artifacts.resolve(ref))
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
    click.echo(f"  gate: {'promoted' if m.gate.promoted else 'kept'}: {m.gate.reason}")
    click.echo(f"  cost: {m.cost.get('lm_calls')} LM calls, {m.cost.get('tokens')} tokens; content {m.content_hash[:16]}")


@artifacts_group.command("diff")
@click.argument("a")
@click.argument("b")
def artifacts_diff(a: str, b: str) -> None:
    """What changed between two versions (JSON): files, demos, signatures, metrics."""
    from purpose_dspy import artifacts

    ma, mb = (artifacts.verify(artifacts.resolve(ref, explicit="diff")) for ref in (a, b))
    click.echo(json.dumps(artifacts.diff(ma, mb), indent=2))


@artifacts_group.command("promote")
@click.argument("ref")
@click.option("--reason", default="by operator", show_default=True)
def artifacts_promote(ref: str, reason: str) -> None:
    """Make REF (compiled/<name>@v<N>) the version `load` gives, after verifying it loads."""
    from purpose_dspy import artifacts

    version = artifacts.promote(ref, reason)
    click.echo(f"promoted v{version}")


@artifacts_group.command("rollback")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--reason", default="by operator", show_default=True)
def artifacts_rollback(root: str, reason: str) -> None:
    """Demote the current promoted version; the previously promoted one becomes current."""
    from purpose_dspy import artifacts

    demoted, current = artifacts.rollback(root, reason)
    click.echo(f"demoted v{demoted}; current: {f'v{current}' if current else 'none'}")
