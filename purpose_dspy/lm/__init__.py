"""Which language model serves which role, and how to build it as a `dspy.LM`.

Roles are actor, critic, judge, editor and optimizer. Each gets an `LMSpec`, resolved in this
order (first wins): CLI flags, environment variables (`PURPOSE_DSPY_LM`, `PURPOSE_DSPY_API_BASE`,
`PURPOSE_DSPY_<ROLE>_LM`, `PURPOSE_DSPY_STRUCTURED_OUTPUTS`, `PURPOSE_DSPY_LM_TIMEOUT`,
`PURPOSE_DSPY_LM_RETRIES`), a TOML file (`[lm]` and `[lm.<role>]`
tables), then the embedded default `local/smollm2-135m`. A model behind `api_base` with the `openai/`
provider runs on our own `OpenAICompatibleEngine` (structured outputs by the endpoint's mode, see
`openai_compatible.py`); any other non-local model on DSPy's own client. API keys are read by DSPy from the usual environment variables
(`OPENAI_API_KEY`...); nothing here ever writes one anywhere.

A remote LM fails fast when its endpoint goes silent: before a run `check_endpoint` sends a real
request (`GET <api_base>/models`, `STARTUP_TIMEOUT_S`), and every completion has a `timeout` and a
bounded `retries` count whose worst case (`worst_case_seconds`) is under 30 s by default.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from purpose_dspy.errors import LMUnavailableError, UsageError
from purpose_dspy.lm.schema import string_cap
from purpose_dspy.types import ROLES, Role

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "local/smollm2-135m"

# A silent endpoint must end a run within 30 s in all, process start included, yet a slow CPU server must
# get its answers: 10 s is ~1.5x the mean call through llama-cpp-python's server on 2 shared cores (6.5 s,
# benchmarks/results/server_vs_embedded.json; a GPU server takes a second or two), and one retry covers a
# transient 5xx or reset. Worst case 10 + 1 (DSPy's backoff) + 10 = 21 s, leaving 9 s for start-up.
REQUEST_TIMEOUT_S = 10.0
REQUEST_RETRIES = 1
# The start-up check's request is answered at once by any live server: a few seconds is plenty.
STARTUP_TIMEOUT_S = 5.0


def worst_case_seconds(timeout: float = REQUEST_TIMEOUT_S, retries: int = REQUEST_RETRIES) -> float:
    """How long one call to a silent endpoint takes to fail: every attempt times out, with DSPy's backoff of
    1, 2, 4... s (capped at 60) between attempts (`dspy/clients/execution.py`, `_delay`)."""
    return timeout * (retries + 1) + sum(min(2 ** min(attempt, 6), 60) for attempt in range(retries))

# Flags a CLI command takes for every LM it builds without passing them down (`--structured-outputs`):
# set for the command's duration by `flag_overrides`, read by `load_lm_config` above everything else.
_FLAGS: ContextVar[Mapping[str, Any] | None] = ContextVar("purpose_dspy_lm_flags", default=None)


@contextmanager
def flag_overrides(**flags: Any) -> Iterator[None]:
    """Within the block, `load_lm_config` treats `flags` (None values dropped) as CLI flags for every role."""
    token = _FLAGS.set({k: v for k, v in flags.items() if v is not None})
    try:
        yield
    finally:
        _FLAGS.reset(token)


class LMSpec(BaseModel):
    """How to reach the LM for one role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(DEFAULT_MODEL, description="'local/<name>' for an embedded model, else provider/model (openai/gpt-4o-mini).")
    api_base: str | None = Field(None, description="Base URL of an OpenAI-compatible server (vLLM, Ollama, llama.cpp).")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature; 0 is greedy.")
    max_tokens: int = Field(384, gt=0, description="Completion token limit per call.")
    cache: bool = Field(True, description="Use DSPy's response cache (turn off to measure consistency).")
    structured_outputs: Literal["auto", "json_schema", "json_object", "none"] = Field(
        "auto", description="How an api_base endpoint is asked for the signature's JSON: response_format json_schema, "
                            "json_object (+ schema), none (free text), or auto: a probe at start-up picks one.")
    timeout: float = Field(REQUEST_TIMEOUT_S, gt=0, le=3600,
                           description="Seconds one request to a remote LM may take before it counts as failed.")
    retries: int = Field(REQUEST_RETRIES, ge=0, le=10,
                         description="Further attempts after a timeout, 429, 5xx or transport error (DSPy's num_retries).")

    @property
    def is_local(self) -> bool:
        return self.model.startswith("local/")


class LMConfig(BaseModel):
    """The LM spec of every role: one default plus per-role overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: LMSpec = LMSpec()
    roles: dict[Role, LMSpec] = Field(default_factory=dict)

    def for_role(self, role: Role) -> LMSpec:
        return self.roles.get(role, self.default)


def load_lm_config(
    *,
    model: str | None = None,
    api_base: str | None = None,
    role_models: Mapping[str, str | None] | None = None,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> LMConfig:
    """Resolve the LM config from flags (the arguments), environment variables and a TOML file.

    `overrides` (temperature, max_tokens, cache, structured_outputs, timeout, retries) apply to every role, and
    so do the flags of `flag_overrides`.
    """
    env = os.environ if environ is None else environ
    table: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            table = tomllib.loads(path.read_text()).get("lm", {})
        except FileNotFoundError as exc:
            raise UsageError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"config file {path} is not valid TOML: {exc}") from exc

    base = {k: v for k, v in table.items() if k not in ROLES}
    base.update({k: v for k, v in {"model": env.get("PURPOSE_DSPY_LM"), "api_base": env.get("PURPOSE_DSPY_API_BASE"),
                                   "structured_outputs": env.get("PURPOSE_DSPY_STRUCTURED_OUTPUTS"),
                                   "timeout": env.get("PURPOSE_DSPY_LM_TIMEOUT"),
                                   "retries": env.get("PURPOSE_DSPY_LM_RETRIES")}.items() if v})
    base.update({k: v for k, v in {"model": model, "api_base": api_base}.items() if v})
    overrides = {**overrides, **(_FLAGS.get() or {})}
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        default = LMSpec(**base)
        roles: dict[Role, LMSpec] = {}
        for role in ROLES:
            role_table = dict(table.get(role, {}))
            flag = (role_models or {}).get(role) or env.get(f"PURPOSE_DSPY_{role.upper()}_LM")
            if flag:
                role_table["model"] = flag
            if role_table:
                roles[role] = LMSpec(**{**default.model_dump(), **role_table})
        return LMConfig(default=default, roles=roles)
    except ValidationError as exc:
        raise UsageError(f"invalid LM settings: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc


def check_endpoint(api_base: str, timeout: float = STARTUP_TIMEOUT_S, *, model: str | None = None) -> None:
    """Fail fast, naming the endpoint (and `model`), unless a server answers a real request at `api_base`.

    The request is `GET <api_base>/models`, which OpenAI-compatible servers answer at once without running
    a model. Any HTTP reply counts, even a 401 or 404 (the first completion reports those); what fails here
    is no server, or one that accepts the connection and never answers, within `timeout` seconds.
    """
    import httpx

    url = urlparse(api_base)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UsageError(f"--api-base must be an http(s) URL such as http://127.0.0.1:8080/v1, got {api_base!r}")
    where = f"the LM endpoint {api_base}" + (f" (model {model!r})" if model else "")
    try:
        httpx.get(api_base.rstrip("/") + "/models", timeout=timeout)
    except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout) as exc:
        raise LMUnavailableError(
            f"{where} accepted a connection but did not answer GET /models within {timeout:g} s; check that "
            "the server there is running and not stuck, or pass another --api-base") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # refused, unknown host, no connection in time, TLS...
        reason = next(iter(str(exc).splitlines()), "") or type(exc).__name__
        raise LMUnavailableError(f"cannot reach {where} ({reason}); start the server or pass another --api-base") from exc


# Loaded local models, one per (GGUF file, role) per process. A role keeps its own llama.cpp context
# because consecutive prompts of one role share a long prefix (instructions, demos) that llama.cpp
# then reuses from its KV cache; alternating roles in one context would evict it at every call.
_ENGINES: dict[tuple[str, str], Any] = {}


def build_lm(spec: LMSpec, role: str = "any") -> Any:
    """A `dspy.LM` for `spec`: the embedded llama.cpp engine for 'local/...', our OpenAI-compatible engine for
    'openai/<model id>' at an api_base (probing its structured outputs when "auto"), else DSPy's own client."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no metadata fetch over the network
    import dspy

    if spec.is_local:
        from purpose_dspy.lm.llama_cpp_engine import LlamaCppEngine
        from purpose_dspy.lm.local_models import resolve_local

        if spec.api_base:
            raise UsageError("--api-base is for remote models; a 'local/...' model runs in this process")
        model_string, path = resolve_local(spec.model.removeprefix("local/"))
        engine = _ENGINES.get((str(path), role))
        if engine is None:
            engine = _ENGINES[(str(path), role)] = LlamaCppEngine(path, max_string_chars=string_cap(role))
        return dspy.LM(model_string, engine=engine, temperature=spec.temperature, max_tokens=spec.max_tokens,
                       cache=spec.cache, num_retries=1)
    provider, _, model_id = spec.model.partition("/") if "/" in spec.model else ("openai", "", spec.model)
    if spec.api_base and provider == "openai":
        from purpose_dspy.lm.openai_compatible import OpenAICompatibleEngine

        check_endpoint(spec.api_base, min(STARTUP_TIMEOUT_S, spec.timeout), model=model_id)
        engine = OpenAICompatibleEngine(spec.api_base, model_id, structured_outputs=spec.structured_outputs,
                                        timeout=spec.timeout, max_string_chars=string_cap(role))
        return dspy.LM(spec.model, engine=engine, temperature=spec.temperature, max_tokens=spec.max_tokens,
                       cache=spec.cache, num_retries=spec.retries)
    kwargs: dict[str, Any] = {}
    if spec.api_base:  # another provider's own API at a custom address: DSPy's client speaks it
        check_endpoint(spec.api_base, min(STARTUP_TIMEOUT_S, spec.timeout), model=spec.model)
        kwargs["api_base"] = spec.api_base
    return dspy.LM(spec.model, temperature=spec.temperature, max_tokens=spec.max_tokens, cache=spec.cache,
                   num_retries=spec.retries, timeout=spec.timeout, **kwargs)


def structured_outputs_of(lms: Mapping[str, Any]) -> dict[str, str | None]:
    """The structured-outputs mode each role's LM runs in (None where DSPy's own client decides)."""
    return {role: getattr(getattr(lm, "engine", None), "structured_outputs", None) for role, lm in lms.items()}


def build_role_lms(config: LMConfig, roles: tuple[Role, ...] = ("actor", "critic")) -> dict[Role, Any]:
    """One `dspy.LM` per role (local models get a llama.cpp context per role; see `_ENGINES`)."""
    return {role: build_lm(config.for_role(role), role=role) for role in roles}


__all__ = ["DEFAULT_MODEL", "REQUEST_RETRIES", "REQUEST_TIMEOUT_S", "STARTUP_TIMEOUT_S", "LMConfig", "LMSpec", "build_lm",
           "build_role_lms", "check_endpoint", "flag_overrides", "load_lm_config", "structured_outputs_of",
           "worst_case_seconds"]
