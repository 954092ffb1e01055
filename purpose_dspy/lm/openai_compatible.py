"""OpenAI-compatible endpoints (llama.cpp server, vLLM, Ollama...) as a DSPy engine, with structured outputs.

Why an engine of our own: DSPy's client sends a JSON schema only to models whose name its model
catalogue (LiteLLM's) knows to support one, and `openai/smollm2` on a local server is not in it, so
a small model got no constraint and its answers did not parse. This engine sends the signature's
schema (with the string caps of `schema.py`, and the per-call `Literal` of valid actions) in the
`structured_outputs` mode the endpoint supports, decided by the LM config or by a short probe at
start-up (`probe`). DSPy keeps the cache, retries, history and usage, as with the embedded engine.

Every request carries the LM's `timeout` (a silent server is a timeout, not a hang), and a reply that is
not a chat completion (no `choices`, not JSON, nested too deeply to decode) is the endpoint's failure:
`MalformedReply`, an `LMUnavailableError` at start-up and a retried server error during a run, never
an empty answer for the adapter to fail on.

The API key comes from `OPENAI_API_KEY` when set (else a placeholder local servers ignore); it lives
in the client object only and is never written anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from purpose_dspy.errors import LMUnavailableError
from purpose_dspy.lm import REQUEST_TIMEOUT_S
from purpose_dspy.lm.schema import MAX_STRING_CHARS, chat_kwargs, response_format

logger = logging.getLogger(__name__)

_PARAMS = frozenset({"temperature", "max_tokens", "top_p", "seed", "stop"})

# The probe asks for a value no model writes unprompted: a server that returns it enforced the schema.
_PROBE_VALUE = "probe-7f3a"
_PROBE_FORMAT = {"name": "probe", "schema": {
    "type": "object", "properties": {"probe": {"type": "string", "enum": [_PROBE_VALUE]}},
    "required": ["probe"], "additionalProperties": False}}
_PROBE_MESSAGES = [{"role": "user", "content": "Answer with a JSON object."}]

# Per (api_base, model id), once per process, shared by every role on that endpoint: the probe's result,
# the endpoint (what it refused), and whether the no-structured-outputs advice was given.
_PROBED: dict[tuple[str, str], str] = {}
_ENDPOINTS: dict[tuple[str, str], Endpoint] = {}
_ADVISED: set[tuple[str, str]] = set()
_LOCK = threading.Lock()

ADVICE = ("structured outputs are off for {model} at {api_base}: answers are parsed from free text, which small "
          "models often get wrong (failed or unscored steps); serve the model where response_format json_schema or json_object "
          "works (README: 'OpenAI-compatible servers') or use the embedded model (--lm local/smollm2-135m)")


# Sampling left neutral where a server's own default is not: llama-cpp-python's server penalises repeats
# (repeat_penalty 1.1) where the in-process model does not (1.0), and its greedy answers differed (Φ out of
# range, unscored steps). Servers that do not know the key ignore it (vLLM, Ollama, llama-server); one that
# refuses it (a strict API) is asked again without it, and from then on gets the server's own defaults.
NEUTRAL_SAMPLING = {"repeat_penalty": 1.0}

# What to do about a reply that is not a chat completion (the usual cause: --api-base points at something else).
CHECK_API_BASE = "check that --api-base is the server's OpenAI-compatible URL (usually ending in /v1) and its log"


class MalformedReply(ValueError):
    """A 200 reply that is not a chat completion: not JSON, nested too deeply to decode, or without choices."""


class Endpoint:
    """One model at one base URL: the HTTP client and the neutral sampling extras the server takes.

    One per (api_base, model) per process (`shared`): every role learns once what the server refuses.
    """

    def __init__(self, api_base: str, model: str) -> None:
        self.api_base, self.model = api_base, model
        self.client = _client(api_base)
        self.extra_body: dict[str, Any] = dict(NEUTRAL_SAMPLING)

    @classmethod
    def shared(cls, api_base: str, model: str) -> Endpoint:
        with _LOCK:
            found = _ENDPOINTS.get((api_base, model))
            if found is None:
                found = _ENDPOINTS[(api_base, model)] = cls(api_base, model)
            return found

    def create(self, *, timeout: float, **kwargs: Any) -> dict[str, Any]:
        """One chat completion within `timeout` s, as the JSON the server sent (openai's errors pass through;
        a reply that is not a chat completion raises `MalformedReply`)."""
        import openai

        try:
            raw = self.client.chat.completions.with_raw_response.create(
                model=self.model, extra_body=self.extra_body or None, timeout=timeout, **kwargs)
        except openai.APIStatusError as exc:
            if self.extra_body and exc.status_code in (400, 422) and any(k in str(exc) for k in self.extra_body):
                logger.info("%s refuses %s: it gets its own sampling defaults", self.api_base, ", ".join(self.extra_body))
                self.extra_body = {}
                return self.create(timeout=timeout, **kwargs)
            raise
        try:
            body = raw.http_response.json()
        except ValueError as exc:
            raise MalformedReply(f"the reply is not JSON ({_first_line(exc)[:80]})") from exc
        except RecursionError as exc:  # JSON nested deeper than the interpreter's recursion limit
            raise MalformedReply("the reply is JSON nested too deeply to decode") from exc
        return _chat_completion(body)


def _chat_completion(body: Any) -> dict[str, Any]:
    """`body` if its first choice carries a message whose content is text (or null); else `MalformedReply`."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices:
        if not isinstance(body, dict):
            detail = f" (a JSON {type(body).__name__})"
        elif isinstance(body.get("error"), dict):
            detail = f" (it says: {' '.join(str(body['error'].get('message')).split())[:120]})"
        else:
            detail = f" (keys: {', '.join(sorted(map(str, body))[:8]) or 'none'})"
        raise MalformedReply("the reply has no choices" + detail)
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), str | None):
        raise MalformedReply("the reply's first choice has no message with text content")
    return body


def _client(api_base: str, timeout: float = REQUEST_TIMEOUT_S) -> Any:
    try:
        import openai
    except ImportError as exc:  # a dependency of purpose-dspy; only a broken install lacks it
        raise LMUnavailableError("the openai package is missing: pip install 'purpose-dspy'") from exc
    # Retries are DSPy's (num_retries on the dspy.LM), so the client makes one attempt per call; every call
    # passes its LM's own timeout (`timeout` here is only the client's default).
    return openai.OpenAI(base_url=api_base, api_key=os.environ.get("OPENAI_API_KEY") or "no-key",
                         timeout=timeout, max_retries=0)


def probe(endpoint: Endpoint, timeout: float = REQUEST_TIMEOUT_S) -> tuple[str, list[str]]:
    """The strongest structured-outputs mode the endpoint honours, and what each attempt showed.

    `json_schema` counts only when the answer is the one value the schema allows (the server enforced
    it); `json_object` when the answer is a JSON object. An endpoint that refuses both gets `none`.
    A dead, silent (no answer in `timeout` s), unauthorised or unknown endpoint, or one whose reply is not
    a chat completion, is an `LMUnavailableError`, not a fallback.
    """
    import openai

    seen: list[str] = []
    for mode in ("json_schema", "json_object"):
        try:
            body = endpoint.create(messages=_PROBE_MESSAGES, max_tokens=48, temperature=0, timeout=timeout,
                                   response_format=response_format(_PROBE_FORMAT, mode))
        except openai.APITimeoutError as exc:
            raise LMUnavailableError(
                f"the LM endpoint {endpoint.api_base} (model {endpoint.model!r}) did not answer the start-up probe "
                f"within {timeout:g} s; check that the server is running and not stuck, or allow slower answers "
                "with --lm-timeout SECONDS") from exc
        except (openai.APIConnectionError, openai.AuthenticationError, openai.PermissionDeniedError,
                openai.NotFoundError, MalformedReply) as exc:
            advice = f"; {CHECK_API_BASE}" if isinstance(exc, MalformedReply) else ""
            raise LMUnavailableError(f"the LM endpoint {endpoint.api_base} failed the start-up probe for "
                                     f"{endpoint.model!r}: {_first_line(exc)}{advice}") from exc
        except (openai.APIStatusError, ValueError) as exc:
            seen.append(f"{mode}: refused ({_first_line(exc)[:80]})")
            continue
        answer = _json_object(_content(body))
        honoured = answer == {"probe": _PROBE_VALUE}
        if (mode == "json_schema" and honoured) or (mode == "json_object" and answer is not None):
            seen.append(f"{mode}: ok" + (", schema enforced" if honoured else ", any JSON object"))
            return mode, seen
        seen.append(f"{mode}: accepted but not followed")
    return "none", seen


def resolve_structured_outputs(setting: str, endpoint: Endpoint, timeout: float = REQUEST_TIMEOUT_S) -> str:
    """The mode to use: `setting` itself, or for "auto" the probe's result (probed and logged once per endpoint)."""
    key = (endpoint.api_base, endpoint.model)
    with _LOCK:
        if setting == "auto" and key not in _PROBED:
            _PROBED[key], seen = probe(endpoint, timeout)
            logger.info("structured outputs for %s at %s: %s (probe: %s)", endpoint.model, endpoint.api_base,
                        _PROBED[key], "; ".join(seen))
        mode = _PROBED[key] if setting == "auto" else setting
        advise = mode == "none" and key not in _ADVISED
        if advise:
            _ADVISED.add(key)
    if advise:
        logger.warning(ADVICE.format(model=endpoint.model, api_base=endpoint.api_base))
    return mode


class OpenAICompatibleEngine:
    """One model behind an OpenAI-compatible chat-completions endpoint, in one structured-outputs mode.

    DSPy reads `supports_response_schema` / `supported_params` from the engine, never from a model
    catalogue: with a mode other than "none" JSONAdapter hands over the signature's schema.
    """

    def __init__(self, api_base: str, model: str, *, structured_outputs: str = "auto",
                 max_string_chars: int = MAX_STRING_CHARS, timeout: float = REQUEST_TIMEOUT_S) -> None:
        self.api_base, self.model, self.timeout = api_base, model, timeout
        self.max_string_chars = max_string_chars
        self.endpoint = Endpoint.shared(api_base, model)
        self.structured_outputs = resolve_structured_outputs(structured_outputs, self.endpoint, timeout)
        on = self.structured_outputs != "none"
        self.supports_response_schema = on
        self.supported_params = _PARAMS | {"response_format"} if on else _PARAMS

    # Teleprompters deep-copy modules (and the LMs on them): share the endpoint instead.
    def __deepcopy__(self, memo: dict) -> OpenAICompatibleEngine:
        return self

    def complete(self, request: Any) -> Any:
        import openai
        from dspy.lm15 import response_from_openai_chat

        kwargs = chat_kwargs(request, self.structured_outputs, self.max_string_chars)
        try:
            body = self.endpoint.create(timeout=self.timeout, **kwargs)
        except (openai.APIError, ValueError) as exc:
            raise _lm15_error(exc, f"{self.api_base} (model {self.model!r})", self.timeout) from exc
        return response_from_openai_chat(body, model=request.model)

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))


def _lm15_error(exc: Exception, where: str, timeout: float) -> Exception:
    """The dspy.lm15 error DSPy retries (timeouts, 429, 5xx, transport, malformed replies) or reports once (the
    rest); `where` names the endpoint and model, and the message says what to do."""
    import openai
    from dspy import lm15

    message = f"{where}: {_first_line(exc)}"
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.APITimeoutError):
        return lm15.TimeoutError(f"{where} did not answer within {timeout:g} s; check that the server is running and "
                                 "not stuck, or allow slower answers with --lm-timeout SECONDS")
    if isinstance(exc, MalformedReply):
        return lm15.ServerError(f"{message}; {CHECK_API_BASE}")
    if isinstance(exc, openai.APIConnectionError):
        return lm15.TransportError(message)
    if status in (401, 403):
        return lm15.AuthError(message)
    if status == 429:
        return lm15.RateLimitError(message)
    if (status is not None and status >= 500) or isinstance(exc, ValueError):
        return lm15.ServerError(message)
    if "context" in str(exc).lower() and any(w in str(exc).lower() for w in ("length", "window", "exceed")):
        return lm15.ContextLengthError(message)
    return lm15.InvalidRequestError(message)


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter's limit
        return None
    return value if isinstance(value, dict) else None


def _content(body: Any) -> str:
    choices = (body.get("choices") if isinstance(body, dict) else None) or [{}]
    return (choices[0].get("message") or {}).get("content") or ""


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
