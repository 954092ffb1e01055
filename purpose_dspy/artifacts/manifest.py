"""The manifest of a compiled version: its pydantic model, canonical JSON, hashes, and what changed between two."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from purpose_dspy.artifacts import files as untrusted
from purpose_dspy.artifacts.fingerprint import fingerprint_differences
from purpose_dspy.errors import ArtifactError, UsageError
from purpose_dspy.metrics import SplitMetrics
from purpose_dspy.teleprompt.base import DemoSource
from purpose_dspy.teleprompt.gate import GateDecision

SCHEMA_VERSION = 2  # 2 added `approval`; version 1 manifests (no such field) are read as they are
READABLE_SCHEMAS = (1, 2)
MANIFEST = "manifest.json"
_SECRET_KEY = re.compile(r"(api[_-]?key|secret|token|password)$", re.IGNORECASE)


class ComponentEntry(BaseModel):
    file: str
    program: str = Field(description="Class of the module, e.g. purpose_dspy.programs.actor.Actor.")
    predictors: dict[str, dict[str, Any]] = Field(description="Signature fingerprint per predictor.")
    demos: dict[str, int] = Field(default_factory=dict, description="Demos per predictor.")
    settings: dict[str, Any] | None = Field(
        None, description="Constructor settings the module lists in its SETTINGS (e.g. reasoning, demos_per_call), "
        "so a load rebuilds the same signature; None: written before settings were recorded (reasoning was on).")


# The promotion gate's decision, made by the compile (`teleprompt/gate.py`) and kept in the manifest. Versions
# written before it tested carry only promoted, reason and comparison (p_value and alpha None).
Gate = GateDecision


class Manifest(BaseModel):
    schema_version: int = SCHEMA_VERSION
    name: str
    version: int
    created: str
    parent_version: int | None = None
    purpose_dspy_version: str
    dspy_version: str
    python_version: str
    components: dict[str, ComponentEntry]
    lms: dict[str, dict[str, Any]] = Field(description="Per role: model id (and api_base); never a key.")
    taskset: dict[str, Any] = Field(default_factory=dict, description="name, env, content_hash, file, max_steps, purpose.")
    splits: dict[str, list[int]] = Field(default_factory=dict, description="Seeds of each split the compile used.")
    metrics: dict[str, SplitMetrics | None] = Field(default_factory=dict, description="before / after on the valset, train.")
    cost: dict[str, Any] = Field(default_factory=dict, description="LM calls, tokens, seconds, per phase.")
    demos: list[DemoSource] = Field(default_factory=list)
    judge: dict[str, Any] = Field(default_factory=dict)
    memory: dict[str, Any] = Field(default_factory=dict)
    gate: Gate
    approval: str | None = Field(None, description=(
        "'required': the gate passed it but it was written pending (`compile --require-approval`, `improve`); it is "
        "never served until `artifacts approve`. None: promoted by its gate or kept, as before schema 2."))
    files: dict[str, str] = Field(description="sha256 of every other file in the version directory.")
    content_hash: str = Field(description="sha256 over the sorted (file, sha256) pairs.")
    manifest_hash: str = Field("", description="sha256 of this manifest's canonical JSON with this field empty.")


def _canonical(data: Any) -> bytes:
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _content_hash(files: dict[str, str]) -> str:
    return _sha("\n".join(f"{name}:{digest}" for name, digest in sorted(files.items())).encode())


def _no_secrets(data: Any, where: str) -> None:
    """Refuse to write anything that looks like a credential (an LM state can carry one)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if _SECRET_KEY.search(str(key)) and value not in (None, "", "no-key"):
                raise UsageError(f"refusing to write {where}: field {key!r} looks like a credential")
            _no_secrets(value, where)
    elif isinstance(data, list):
        for value in data:
            _no_secrets(value, where)


def read_manifest(directory: Path) -> Manifest:
    """The manifest of `directory`, strictly: canonical bytes, its own hash, and only plain file names listed
    (checked before anything it names is opened; see files.py)."""
    path = directory / MANIFEST
    try:
        raw = untrusted.read(directory, MANIFEST)
    except OSError as exc:
        raise ArtifactError(f"{directory} has no readable {MANIFEST}: not an artifact, or an interrupted write") from exc
    manifest = _parse_manifest(path, raw)
    for name in manifest.files:
        untrusted.check_name(directory, name, "files")
    for component, entry in manifest.components.items():
        untrusted.check_name(directory, entry.file, f"component {component!r}")
        if entry.file not in manifest.files:
            raise ArtifactError(f"{path}: component {component!r} is in {entry.file!r}, which `files` does not list "
                                "(so it has no hash to check); recompile")
    return manifest


def _parse_manifest(path: Path, raw: bytes) -> Manifest:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ArtifactError(f"{path} is not valid JSON ({exc}); the artifact was damaged: recompile or load another version") from exc
    if not isinstance(data, dict) or data.get("schema_version") not in READABLE_SCHEMAS:
        got = data.get("schema_version") if isinstance(data, dict) else None
        raise ArtifactError(f"{path}: schema version {got!r}, this purpose-dspy reads {READABLE_SCHEMAS}; recompile "
                            "with this version (or upgrade purpose-dspy if the artifact is newer)")
    if raw != _canonical(data):
        raise ArtifactError(f"{path} was edited (its bytes are not the canonical form written at compile time); recompile or restore it")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ArtifactError(f"{path}: invalid manifest: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    if _sha(_canonical(data | {"manifest_hash": ""})) != manifest.manifest_hash:
        raise ArtifactError(f"{path}: content does not match its manifest_hash (edited after compile); recompile or restore it")
    return manifest


def diff(a: Manifest, b: Manifest) -> dict[str, Any]:
    """What changed from version a to version b: files, demos, fingerprints, metrics."""
    def metric(m: Manifest, key: str) -> float | None:
        split = m.metrics.get(key)
        return split.success_rate if split else None

    return {
        "versions": [a.version, b.version],
        "files_changed": sorted(n for n in set(a.files) | set(b.files) if a.files.get(n) != b.files.get(n)),
        "demos": {name: [a.components[name].demos if name in a.components else None,
                         b.components[name].demos if name in b.components else None]
                  for name in sorted(set(a.components) | set(b.components))},
        "signature_changes": [d for name in sorted(set(a.components) & set(b.components))
                              for d in fingerprint_differences(name, a.components[name].predictors,
                                                               b.components[name].predictors)],
        "valset_success_after": [metric(a, "after"), metric(b, "after")],
        "lm_calls": [a.cost.get("lm_calls"), b.cost.get("lm_calls")],
        "taskset_hash_changed": a.taskset.get("content_hash") != b.taskset.get("content_hash"),
        "gate": [a.gate.promoted, b.gate.promoted],
    }
