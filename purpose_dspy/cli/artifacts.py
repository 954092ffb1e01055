"""`purpose-dspy artifacts list | show | diff | promote | rollback | sign`: compiled versions."""

from __future__ import annotations

import json

import click

require_signature_option = click.option(
    "--require-signature", is_flag=True,
    help="Refuse an unsigned version; needs PURPOSE_DSPY_SIGNING_KEY (with the key set, a bad or missing signature "
         "is refused anyway).")


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
    click.echo(f"  gate: {'promoted' if m.gate.promoted else 'kept'}: {m.gate.reason}")
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
def artifacts_promote(ref: str, reason: str, require_signature: bool) -> None:
    """Make REF (compiled/<name>@v<N>) the version `load` gives, after verifying it loads."""
    from purpose_dspy import artifacts

    version = artifacts.promote(ref, reason, require_signature=require_signature)
    click.echo(f"promoted v{version}")


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
def artifacts_rollback(root: str, reason: str) -> None:
    """Demote the current promoted version; the previously promoted one becomes current."""
    from purpose_dspy import artifacts

    demoted, current = artifacts.rollback(root, reason)
    click.echo(f"demoted v{demoted}; current: {f'v{current}' if current else 'none'}")
