"""The chat-completions body both engines send: messages, sampling settings, structured outputs.

Both the embedded engine and the OpenAI-compatible one turn a `dspy.lm15.Request` into the same
OpenAI-shaped keyword arguments, so a small model gets the same constraints in-process and over
HTTP. Structured outputs come in three modes (`STRUCTURED_OUTPUTS`), strongest first:

- `json_schema`: OpenAI's `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`,
  which vLLM, Ollama and llama.cpp's C++ `llama-server` honour with constrained decoding.
- `json_object`: `{"type": "json_object", "schema": ...}`. Servers built on llama.cpp grammars
  (llama-cpp-python's server, `llama-server`, and the embedded engine) constrain decoding by the
  `schema` key; others give valid JSON of any shape.
- `none`: no `response_format`; the answer is parsed from free text.

Two policies are added to every schema because small models ramble: free strings are capped at
`max_string_chars` (an uncapped string runs until `max_tokens` cuts the JSON), and enums (the
per-call `Literal` of valid actions) stay as they are.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

StructuredOutputs = Literal["json_schema", "json_object", "none"]
STRUCTURED_OUTPUTS: tuple[str, ...] = ("json_schema", "json_object", "none")
MAX_STRING_CHARS = 240
# Tighter caps per role. The actor's only free string is its one-sentence thought; at 240 characters the
# embedded model sometimes repeats a sentence until the cap (91 tokens where 25 do). Capped at 120, twx:coin
# dev seeds 0..19 solved the same 18 tasks (`python benchmarks/prompt_variants.py --arms compact-cap240,compact
# --critic-episodes 0`). Other roles write longer text (an editor's draft, a judge's explanation).
ROLE_STRING_CHARS = {"actor": 120}


def string_cap(role: str) -> int:
    """The cap on free strings for `role`'s answers."""
    return ROLE_STRING_CHARS.get(role, MAX_STRING_CHARS)


def cap_strings(schema: Any, limit: int) -> Any:
    """Return a copy of a JSON schema whose free strings carry maxLength <= limit."""
    if isinstance(schema, dict):
        out = {k: cap_strings(v, limit) for k, v in schema.items()}
        if out.get("type") == "string" and "enum" not in out and "const" not in out:
            out["maxLength"] = min(int(out.get("maxLength", limit)), limit)
        return out
    if isinstance(schema, list):
        return [cap_strings(v, limit) for v in schema]
    return schema


def response_format(fmt: dict[str, Any] | None, mode: str, max_string_chars: int = MAX_STRING_CHARS) -> dict | None:
    """The wire `response_format` for DSPy's canonical one (`Request.config.response_format`) in `mode`."""
    if fmt is None or mode == "none":
        return None
    schema = fmt.get("schema")
    if not schema:
        return {"type": "json_object"}
    capped = cap_strings(copy.deepcopy(schema), max_string_chars)
    if mode == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": fmt.get("name") or "output", "schema": capped, "strict": True}}
    return {"type": "json_object", "schema": capped}


def chat_kwargs(request: Any, mode: str, max_string_chars: int = MAX_STRING_CHARS) -> dict[str, Any]:
    """OpenAI chat-completions keyword arguments (no `model`) for one `dspy.lm15.Request`."""
    messages: list[dict[str, str]] = []
    if request.system is not None:
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        messages.append({"role": "system", "content": system})
    messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)

    config = request.config
    kwargs: dict[str, Any] = {
        "messages": messages,
        "temperature": 0.0 if config.temperature is None else config.temperature,
        "max_tokens": config.max_tokens or 512,
    }
    if config.top_p is not None:
        kwargs["top_p"] = config.top_p
    if config.seed is not None:
        kwargs["seed"] = config.seed
    if config.stop:
        kwargs["stop"] = list(config.stop)
    wire_format = response_format(config.response_format, mode, max_string_chars)
    if wire_format is not None:
        kwargs["response_format"] = wire_format
    return kwargs
