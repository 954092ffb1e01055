"""Signature fingerprints: what a predictor's prompt is built from, to compare compile time with now."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dspy
from pydantic import TypeAdapter


def _type_name(annotation: Any) -> str:
    name = getattr(annotation, "__name__", None)
    return name if isinstance(annotation, type) and name else str(annotation).replace("typing.", "")


def _schema_hash(annotation: Any) -> str | None:
    try:
        schema = TypeAdapter(annotation).json_schema()
    except Exception:  # noqa: BLE001 - a type pydantic cannot describe has no schema to compare
        return None
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()[:16]


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def signature_fingerprint(signature: type[dspy.Signature]) -> dict[str, Any]:
    """What the prompt is built from: each field's name (in order), kind, type, JSON schema, prefix and
    description, and the instructions. All of it is content; none of it is the class's name.

    The class name is recorded too, for a reader, but never compared: DSPy's `load_state` rebuilds a
    predictor's signature as a `StringSignature` with the same content, so a name would tell apart two
    signatures that prompt the model identically (and refuse every compile that starts from a loaded
    parent).
    """
    fields = []
    for name, info in signature.model_fields.items():
        extra = info.json_schema_extra or {}
        fields.append({
            "name": name, "kind": extra.get("__dspy_field_type", "?"),
            "type": _type_name(info.annotation), "schema": _schema_hash(info.annotation),
            "text_sha256": _text_hash(json.dumps([extra.get("prefix", ""), extra.get("desc", "")])),
        })
    return {
        "signature": signature.__name__, "fields": fields,
        "instructions_sha256": _text_hash(signature.instructions),
    }


def component_fingerprints(component: dspy.Module) -> dict[str, dict[str, Any]]:
    return {name: signature_fingerprint(pred.signature) for name, pred in component.named_predictors()}


def fingerprint_differences(component: str, compiled: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Human-readable differences between the fingerprints at compile time and now."""
    out = []
    for pred in sorted(set(compiled) | set(now)):
        where = f"{component}.{pred}"
        if pred not in now:
            out.append(f"{where}: the compiled artifact has this predictor, the code no longer does")
            continue
        if pred not in compiled:
            out.append(f"{where}: the code has a predictor the artifact was not compiled with")
            continue
        a, b = compiled[pred], now[pred]
        for kind in ("input", "output"):
            fa = [f for f in a["fields"] if f["kind"] == kind]
            fb = [f for f in b["fields"] if f["kind"] == kind]
            names_a, names_b = [f["name"] for f in fa], [f["name"] for f in fb]
            gone, new = [n for n in names_a if n not in names_b], [n for n in names_b if n not in names_a]
            if gone and new and len(gone) == len(new):
                out.append(f"{where}: {kind} field(s) renamed {', '.join(f'{g!r} -> {n!r}' for g, n in zip(gone, new))}")
            else:
                if gone:
                    out.append(f"{where}: {kind} field(s) removed: {', '.join(map(repr, gone))}")
                if new:
                    out.append(f"{where}: {kind} field(s) added: {', '.join(map(repr, new))}")
            if not gone and not new and names_a != names_b:
                out.append(f"{where}: {kind} fields reordered: {names_a} -> {names_b}")
            by_name = {f["name"]: f for f in fb}
            for f in fa:
                g = by_name.get(f["name"])
                if g and (f["type"], f["schema"]) != (g["type"], g["schema"]):
                    out.append(f"{where}: field {f['name']!r} was {f['type']}, is now {g['type']}")
                elif g and "text_sha256" in f and "text_sha256" in g and f["text_sha256"] != g["text_sha256"]:
                    out.append(f"{where}: field {f['name']!r}: its prefix or description changed")
        if a["instructions_sha256"] != b["instructions_sha256"]:
            out.append(f"{where}: the signature's instructions (docstring) changed")
    return out
