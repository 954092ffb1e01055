"""Flags several commands share, and the LM configuration they resolve to."""

from __future__ import annotations

import functools
from typing import Any

import click

from purpose_dspy.errors import UsageError
from purpose_dspy.lm import REQUEST_RETRIES, REQUEST_TIMEOUT_S, worst_case_seconds


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param takes KEY=VALUE, got {pair!r}")
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    return params


def lm_options(command: Any = None, *, critic: bool = True) -> Any:
    """The LM flags every command that calls a model shares (`critic=False`: one LM, no --critic-lm)."""
    if command is None:
        return lambda c: lm_options(c, critic=critic)
    flags = [
        click.option("--lm", "model", default=None,
                     help="Model for every role: local/smollm2-135m (default), local/gemma3-270m, or provider/model."),
        click.option("--api-base", default=None,
                     help="Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1."),
        click.option("--critic-lm", default=None, help="Model for the critic only."),
        click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False),
                     help="TOML file with [lm] and [lm.<role>] tables."),
    ]
    if not critic:
        del flags[2]
    command = _with_lm_flags(command)
    flags.append(click.option(
        "--structured-outputs", type=click.Choice(["auto", "json_schema", "json_object", "none"]), default=None,
        help="How an --api-base endpoint is asked for JSON (response_format): json_schema, json_object, none; "
             "default auto: a probe at start-up picks the strongest that works."))
    flags.append(click.option(
        "--lm-timeout", type=click.FloatRange(0, 3600, min_open=True), default=None, metavar="SECONDS",
        help=f"Seconds one request to a remote LM may take before it fails [env PURPOSE_DSPY_LM_TIMEOUT; default "
             f"{REQUEST_TIMEOUT_S:g}]. Raise it for a slow server (a big model on CPU)."))
    flags.append(click.option(
        "--lm-retries", type=click.IntRange(0, 10), default=None, metavar="N",
        help=f"Further attempts after a timeout, 429, 5xx or dropped connection [env PURPOSE_DSPY_LM_RETRIES; default "
             f"{REQUEST_RETRIES}: a silent endpoint fails within {worst_case_seconds():g} s]."))
    for option in reversed(flags):
        command = option(command)
    return command


def _with_lm_flags(command: Any) -> Any:
    """Apply --structured-outputs, --lm-timeout and --lm-retries to every LM config the command resolves, without
    parameters of its own."""

    @functools.wraps(command)
    def wrapper(*args: Any, structured_outputs: str | None = None, lm_timeout: float | None = None,
                lm_retries: int | None = None, **kwargs: Any) -> Any:
        from purpose_dspy.lm import flag_overrides

        with flag_overrides(structured_outputs=structured_outputs, timeout=lm_timeout, retries=lm_retries):
            return command(*args, **kwargs)

    return wrapper


def safeguard_options(command: Any) -> Any:
    """Where Φ is stored, and which of the critic's safeguards to switch off (for ablations)."""
    from purpose_dspy.safeguards.config import SAFEGUARDS

    command = click.option(
        "--ablate", multiple=True, type=click.Choice(SAFEGUARDS), metavar="SAFEGUARD",
        help=f"Switch one of the critic's safeguards off (repeatable): {', '.join(SAFEGUARDS)}.",
    )(command)
    return click.option(
        "--store", default=None, envvar="PURPOSE_DSPY_STORE", type=click.Path(file_okay=False),
        help="Directory where Φ of scored states persists, shared by runs and processes "
             "[env PURPOSE_DSPY_STORE; default: memory only, nothing written].",
    )(command)


def lm_config(model: str | None, api_base: str | None, critic_lm: str | None, config_file: str | None,
              no_cache: bool = False, actor_lm: str | None = None) -> Any:
    """The `LMConfig` the LM flags describe (flags, then environment variables, then the --config file)."""
    from purpose_dspy.lm import load_lm_config

    return load_lm_config(model=model, api_base=api_base, config_file=config_file,
                          role_models={"actor": actor_lm, "critic": critic_lm}, cache=False if no_cache else None)


monitor_dir_option = click.option(
    "--monitor-dir", "monitor_dir", default=None, envvar="PURPOSE_DSPY_MONITOR", type=click.Path(file_okay=False),
    help="Run directory of the monitor: its ledger, audit log, limits.toml and triggers.toml record and limit this "
         "command [env PURPOSE_DSPY_MONITOR; default: not monitored].")


def backend_options(command: Any) -> Any:
    """`--backend local|ray` and `--ray-address`: where the command's rollouts run, for its whole duration
    (`runtime.backends.backend_flags`), without parameters of the command's own."""

    @functools.wraps(command)
    def wrapper(*args: Any, backend: str | None = None, ray_address: str | None = None, **kwargs: Any) -> Any:
        from purpose_dspy.runtime.backends import backend_flags

        with backend_flags(backend, ray_address):
            return command(*args, **kwargs)

    wrapper = click.option(
        "--ray-address", default=None, envvar="PURPOSE_DSPY_RAY_ADDRESS", metavar="ADDRESS",
        help="Ray cluster to run on (implies --backend ray): auto, <head>:6379 or ray://<head>:10001 "
             "[env PURPOSE_DSPY_RAY_ADDRESS; default: a local Ray started for the run with this machine's CPUs].",
    )(wrapper)
    return click.option(
        "--backend", type=click.Choice(["local", "ray"]), default=None,
        help="Where rollouts run: local (threads in this process, the default) or ray (--num-threads Ray workers, "
             "one environment and the LMs each; same results). Needs pip install 'purpose-dspy[ray]'.",
    )(wrapper)
