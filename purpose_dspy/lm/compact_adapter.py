"""CompactJSONAdapter: DSPy's JSONAdapter with a short system message that is the same on every call.

Why not the stock adapter: with schema-constrained decoding (the embedded engine's grammar, a server's
`json_schema`) the JSON skeleton, the type notes and the input template DSPy writes into every prompt
tell the model nothing the decoder does not already enforce, and they are most of a small prompt.
Worse for speed, the stock system message names each field's type, so the per-call `Literal` of valid
actions changes the *first* message every step and llama.cpp cannot reuse its cached prefix.

What changes, and nothing else (parsing, `response_format` and retries are the JSONAdapter's own):
- system message: the instructions (dedented), then one line per input and output field with its
  description; a `Literal` output reads "one of the listed options", so the message never varies;
- demos: one user/assistant pair each, the answer as one-line JSON; an input field whose value is the
  same as in the current call (the purpose, an empty history) is left out of the demo, since the call
  shows it once below, and so is one that is empty (`EMPTY`: "", "(none)", "(none yet)"), which says
  nothing a missing field does not;
- the closing reminder names the keys in order, nothing more (no allowed values, no type notes).
"""

from __future__ import annotations

import json
import textwrap
from typing import Any, Literal, get_args, get_origin

import dspy
from dspy.adapters.utils import serialize_for_json


# Values that say a field is empty: a demo leaves such a field out (the actor's placeholders, programs/actor.py).
EMPTY = ("", "(none)", "(none yet)")


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "one of the listed options"
    if annotation is str:
        return "text"
    if annotation in (int, float):
        return "number"
    if get_origin(annotation) is list:
        return "list of " + "/".join(_type_name(a) for a in get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def _field_lines(fields: dict[str, Any]) -> str:
    """One line per field: its name, its type unless it is plain text, and its description."""
    lines = []
    for name, info in fields.items():
        desc = (info.json_schema_extra or {}).get("desc", "")
        desc = "" if desc == f"${{{name}}}" else f": {desc}"
        kind = "" if info.annotation is str else f" ({_type_name(info.annotation)})"
        lines.append(f"- {name}{kind}{desc}")
    return "\n".join(lines)


class CompactJSONAdapter(dspy.JSONAdapter):
    """A JSONAdapter whose prompts carry each thing once (see the module docstring for what changes)."""

    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        return (
            f"{textwrap.dedent(signature.instructions).strip()}\n\n"
            f"Inputs:\n{_field_lines(signature.input_fields)}\n"
            f"Answer with one JSON object with these keys, in this order:\n{_field_lines(signature.output_fields)}"
        )

    def format(self, signature: type[dspy.Signature], demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list:
        shared = {k for k in signature.input_fields if k in inputs}
        trimmed = [{k: v for k, v in dict(d).items()
                    if not (k in shared and v == inputs[k]) and not (k in signature.input_fields and v in EMPTY)}
                   for d in demos]
        return super().format(signature, trimmed, inputs)

    def format_demos(self, signature: type[dspy.Signature], demos: list[dict[str, Any]]) -> list[dict[str, Any]]:
        messages = []
        for demo in demos:
            if not any(k in demo for k in signature.output_fields):
                continue
            messages.append({"role": "user", "content": self.format_user_message_content(signature, demo)})
            answer = {k: demo[k] for k in signature.output_fields if k in demo}
            messages.append({"role": "assistant", "content": json.dumps(serialize_for_json(answer), ensure_ascii=False)})
        return messages

    def user_message_output_requirements(self, signature: type[dspy.Signature]) -> str:
        return "JSON keys: " + ", ".join(signature.output_fields) + "."


__all__ = ["CompactJSONAdapter"]
