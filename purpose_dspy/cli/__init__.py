"""The `purpose-dspy` command: parses, calls the library, renders. Nothing else lives here.

This module builds the group and adds each command module's commands to it; no command module
imports back from here. Expected failures (`PurposeDspyError`) become one line on stderr and an exit
code in one place, `Cli.invoke`, for every command and subcommand.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from purpose_dspy.cli import (
    archive,
    artifacts,
    compile,
    critic_check,
    edit,
    improve,
    memory,
    monitor,
    run,
)
from purpose_dspy.errors import (
    EnvironmentUnavailableError,
    LMUnavailableError,
    PurposeDspyError,
    UsageError,
)

EXIT_CODES = {UsageError: 2, LMUnavailableError: 3, EnvironmentUnavailableError: 4}


def exit_code(exc: PurposeDspyError) -> int:
    return next((code for kind, code in EXIT_CODES.items() if isinstance(exc, kind)), 1)


class Cli(click.Group):
    """A click group whose commands may raise `PurposeDspyError`: it prints one line, no traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except PurposeDspyError as exc:
            click.echo(f"purpose-dspy: error: {exc}", err=True)
            ctx.exit(exit_code(exc))


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="purpose-dspy")
@click.option("-v", "--verbose", count=True, help="Log more to stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Agents that improve at a family of tasks from their own experience, as DSPy programs.

    Every command runs on the embedded local model by default (no key, no network); point a
    role at any OpenAI-compatible server with --lm and --api-base.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


for command in (run.run, critic_check.critic_check, memory.memory, compile.compile_command, compile.eval_command,
                compile.demo, artifacts.artifacts_group, edit.edit_command, archive.archive_group):
    main.add_command(command)
main.add_command(improve.improve_command)
for command in (monitor.report_command, monitor.monitor_command, monitor.pause_command, monitor.resume_command,
                monitor.audit_group):
    main.add_command(command)
