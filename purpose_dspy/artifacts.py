"""Compiled artifacts: versioned, hashed, JSON-only directories that applications load in one call.

    compiled/<name>/v<N>/  actor.json, critic.json[, judge.json]   DSPy state of each component
                           memory.json                             the memory snapshot (cards)
                           taskset.toml                            the task set it was compiled on
                           manifest.json                           everything below, canonical JSON
    compiled/<name>/promotions.jsonl                               promotion log (append-only)

The manifest records the schema version, creation time, parent version, the signature fingerprint of
every predictor (field names, kinds, types, JSON schema, instruction hash), dspy / python versions,
the LM per role (never a key), the task set's name and content hash, the splits used, metrics before
and after with 95% intervals, LM calls and tokens, where every demo came from, the promotion gate's
decision, each file's sha256 and a content hash over all of them.

`load()` reads every file once, checks its hash, checks the manifest is byte-for-byte canonical and
self-consistent, and compares the fingerprints with the signatures of the code now running: anything
that differs is refused with what differs and what to do (DSPy's own loader would instead match
fields by position and silently shift them). There is no pickle anywhere. The hashes detect damage
and edits, not a forger who rewrites them too: sign the directory if that is your threat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dspy
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from purpose_dspy.errors import ArtifactError, StaleArtifactError, UsageError
from purpose_dspy.metrics import PairedComparison, SplitMetrics, paired
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.tasksets import TaskSet
from purpose_dspy.teleprompter import CompileReport, DemoSource

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
PROMOTIONS = "promotions.jsonl"
_REF = re.compile(r"^(?P<root>.+?)(?:@v?(?P<at>\d+)|[/\\]v(?P<dir>\d+))?[/\\]?$")
_SECRET_KEY = re.compile(r"(api[_-]?key|secret|token|password)$", re.IGNORECASE)


# -- fingerprints ------------------------------------------------------------------------------
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


# -- the manifest ------------------------------------------------------------------------------
class ComponentEntry(BaseModel):
    file: str
    program: str = Field(description="Class of the module, e.g. purpose_dspy.programs.actor.Actor.")
    predictors: dict[str, dict[str, Any]] = Field(description="Signature fingerprint per predictor.")
    demos: dict[str, int] = Field(default_factory=dict, description="Demos per predictor.")


class Gate(BaseModel):
    """The promotion gate's decision, made once when the version is written."""

    promoted: bool
    reason: str
    comparison: PairedComparison | None = None


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


# -- writing -----------------------------------------------------------------------------------
def components_of(program: PurposeAgent, **extra: dspy.Module | None) -> dict[str, dspy.Module]:
    """The modules an artifact stores: the agent's actor and critic, plus e.g. judge=MetaJudge()."""
    return {"actor": program.actor, "critic": program.critic, **{k: v for k, v in extra.items() if v is not None}}


def save_artifact(
    root: str | Path,
    components: dict[str, dspy.Module],
    report: CompileReport,
    *,
    lms: dict[str, dict[str, Any]],
    taskset: TaskSet | None = None,
    taskset_bytes: bytes | None = None,
    parent_version: int | None = None,
) -> Manifest:
    """Write the next version under `root` (atomically: a temp dir renamed into place) and apply the gate.

    Gate: promoted when the compiled program solved at least as many valset tasks as its parent (the
    compile's "before" run, on the same seeds); otherwise kept unpromoted, with the reason.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    blobs: dict[str, bytes] = {}
    entries = {}
    for name, module in components.items():
        state = module.dump_state()
        _no_secrets(state, f"{name}.json")
        blobs[f"{name}.json"] = _canonical(state)
        entries[name] = ComponentEntry(
            file=f"{name}.json", program=f"{type(module).__module__}.{type(module).__qualname__}",
            predictors=component_fingerprints(module),
            demos={p: len(pred.demos) for p, pred in module.named_predictors()},
        )
    blobs["memory.json"] = _canonical({"format": 1, "cards": report.memory_cards})
    if taskset_bytes is not None:
        blobs["taskset.toml"] = taskset_bytes
    _no_secrets(lms, MANIFEST)
    files = {name: _sha(data) for name, data in blobs.items()}
    gate = _gate(report)
    import purpose_dspy

    version = _next_version(root)
    manifest = Manifest(
        name=root.name, version=version, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        parent_version=parent_version, purpose_dspy_version=purpose_dspy.__version__, dspy_version=dspy.__version__,
        python_version=platform.python_version(), components=entries, lms=lms,
        taskset=({"name": taskset.name, "env": taskset.env, "content_hash": taskset.content_hash,
                  "file": "taskset.toml" if taskset_bytes is not None else None, "max_steps": taskset.max_steps,
                  "purpose": taskset.purpose, "params": taskset.params} if taskset else {}),
        splits=({split: list(seeds) for split, seeds in taskset.splits.items()
                 if split in {"train", "dev"}} if taskset else {}),
        metrics={"before": report.before, "after": report.after, "train": report.train},
        cost={"lm_calls": report.lm_calls, "tokens": report.tokens, "seconds": report.seconds,
              "phases": report.phases, "budget_exhausted": report.budget_exhausted},
        demos=report.demos, judge=report.judge,
        memory={"file": "memory.json", "cards": len(report.memory_cards)},
        gate=gate, files=files, content_hash=_content_hash(files),
    )
    manifest.manifest_hash = _sha(_canonical(manifest.model_dump(mode="json") | {"manifest_hash": ""}))
    blobs[MANIFEST] = _canonical(manifest.model_dump(mode="json"))

    while True:  # another process may take the same number: then take the next one
        staging = root / f".v{version}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name, data in blobs.items():
            with open(staging / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        try:
            os.rename(staging, root / f"v{version}")
            break
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            version = _next_version(root)
            manifest.version = version
            manifest.manifest_hash = _sha(_canonical(manifest.model_dump(mode="json") | {"manifest_hash": ""}))
            blobs[MANIFEST] = _canonical(manifest.model_dump(mode="json"))
    if gate.promoted:
        _log_promotion(root, version, "promoted", f"gate: {gate.reason}")
    logger.info("wrote %s/v%d (%s)", root, version, "promoted" if gate.promoted else f"not promoted: {gate.reason}")
    return manifest


def _gate(report: CompileReport) -> Gate:
    if report.before is None or report.after is None:
        return Gate(promoted=False, reason="no valset evaluation to compare with the parent; promote by hand after a look")
    comparison = paired(report.after, report.before)
    if comparison.n == 0:
        return Gate(promoted=False, reason="the valset runs share no task (budget?); promote by hand", comparison=comparison)
    if comparison.not_worse:
        return Gate(promoted=True, reason=f"not worse than the parent: {comparison.describe()}", comparison=comparison)
    return Gate(promoted=False, reason=f"worse than the parent: {comparison.describe()}", comparison=comparison)


def _next_version(root: Path) -> int:
    return 1 + max((int(p.name[1:]) for p in root.glob("v*") if p.name[1:].isdigit()), default=0)


# -- promotion log -----------------------------------------------------------------------------
def _log_promotion(root: Path, version: int, event: str, reason: str) -> None:
    line = json.dumps({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "version": version,
                       "event": event, "reason": reason}) + "\n"
    fd = os.open(root / PROMOTIONS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one O_APPEND write: lines from two processes never interleave
        os.fsync(fd)
    finally:
        os.close(fd)


def promotion_events(root: str | Path) -> list[dict[str, Any]]:
    path = Path(root) / PROMOTIONS
    if not path.exists():
        return []
    events = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{path}:{number}: not JSON; fix or remove the line (it is a log of promotions)") from exc
    return events


def promoted_stack(root: str | Path) -> list[int]:
    """Promoted versions, oldest first; the last is the one `load(root)` gives."""
    stack: list[int] = []
    for event in promotion_events(root):
        version = int(event["version"])
        if version in stack:
            stack.remove(version)
        if event["event"] == "promoted":
            stack.append(version)
    return stack


def promote(ref: str | Path, reason: str = "by operator") -> int:
    """Promote a version after a trial load (a damaged or stale version is never promoted)."""
    root, version = parse_ref(ref)
    if version is None:
        raise UsageError(f"say which version to promote, e.g. {root}@v2")
    verify(root / f"v{version}")
    _log_promotion(root, version, "promoted", reason)
    return version


def rollback(root: str | Path, reason: str = "by operator") -> tuple[int, int | None]:
    """Demote the current promoted version; the one promoted before it (if any) becomes current."""
    root = Path(root)
    stack = promoted_stack(root)
    if not stack:
        raise UsageError(f"{root} has no promoted version to roll back")
    current = stack[-1]
    _log_promotion(root, current, "demoted", reason)
    return current, (stack[-2] if len(stack) > 1 else None)


# -- reading -----------------------------------------------------------------------------------
def parse_ref(ref: str | Path) -> tuple[Path, int | None]:
    """'compiled/x' -> (compiled/x, None); 'compiled/x@v3', 'compiled/x@3', 'compiled/x/v3' -> (compiled/x, 3)."""
    match = _REF.match(str(ref))
    if not match:
        raise UsageError(f"not an artifact reference: {ref!r} (expected compiled/<name>[@v<N>])")
    number = match["at"] or match["dir"]
    return Path(match["root"]), int(number) if number else None


def versions(root: str | Path) -> list[Manifest]:
    """Every version's manifest, oldest first (unreadable ones raise ArtifactError)."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"no artifacts at {root}; compile one with: purpose-dspy compile <taskset> --out {root}")
    numbers = sorted(int(p.name[1:]) for p in root.glob("v*") if p.is_dir() and p.name[1:].isdigit())
    return [read_manifest(root / f"v{n}") for n in numbers]


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{directory} has no readable {MANIFEST}: not an artifact, or an interrupted write") from exc
    return _parse_manifest(path, raw)


def _parse_manifest(path: Path, raw: bytes) -> Manifest:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); the artifact was damaged: recompile or load another version") from exc
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        got = data.get("schema_version") if isinstance(data, dict) else None
        raise ArtifactError(f"{path}: schema version {got!r}, this purpose-dspy reads {SCHEMA_VERSION}; recompile with this version")
    if raw != _canonical(data):
        raise ArtifactError(f"{path} was edited (its bytes are not the canonical form written at compile time); recompile or restore it")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ArtifactError(f"{path}: invalid manifest: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    if _sha(_canonical(data | {"manifest_hash": ""})) != manifest.manifest_hash:
        raise ArtifactError(f"{path}: content does not match its manifest_hash (edited after compile); recompile or restore it")
    return manifest


def _read_verified(directory: Path) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest and every file's bytes, each checked against its hash (read once, then used)."""
    manifest = read_manifest(directory)
    present = {p.name for p in directory.iterdir() if p.is_file()} - {MANIFEST}
    if extra := present - set(manifest.files):
        raise ArtifactError(f"{directory}: unexpected file(s) {sorted(extra)} not listed in the manifest; remove them or recompile")
    blobs = {}
    for name, digest in sorted(manifest.files.items()):
        try:
            data = (directory / name).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{directory}: {name} is missing; the artifact is incomplete: recompile or restore it") from exc
        if _sha(data) != digest:
            raise ArtifactError(f"{directory}/{name} changed since compile (sha256 differs from the manifest); "
                                "recompile or restore the file")
        blobs[name] = data
    if _content_hash(manifest.files) != manifest.content_hash:
        raise ArtifactError(f"{directory}: content hash does not match the file list; recompile")
    return manifest, blobs


def verify(directory: str | Path, components: dict[str, dspy.Module] | None = None) -> Manifest:
    """Check an artifact without keeping it: hashes, canonical manifest, and fingerprints vs the code."""
    directory = Path(directory)
    manifest, _ = _read_verified(directory)
    _check_fingerprints(directory, manifest, components or _fresh_components(manifest))
    return manifest


def _fresh_components(manifest: Manifest) -> dict[str, dspy.Module]:
    from purpose_dspy.programs.editor import Editor
    from purpose_dspy.programs.meta_judge import MetaJudge

    fresh = PurposeAgent()
    known: dict[str, Any] = {"actor": fresh.actor, "critic": fresh.critic, "judge": MetaJudge(), "editor": Editor()}
    missing = set(manifest.components) - set(known)
    if missing:
        raise ArtifactError(f"this purpose-dspy does not know component(s) {sorted(missing)}; upgrade it to load this artifact")
    return {name: known[name] for name in manifest.components}


def _check_fingerprints(directory: Path, manifest: Manifest, components: dict[str, dspy.Module]) -> None:
    problems = []
    for name, entry in manifest.components.items():
        problems += fingerprint_differences(name, entry.predictors, component_fingerprints(components[name]))
    if problems:
        raise StaleArtifactError(
            f"{directory} was compiled against different signatures than this code has:\n  - " + "\n  - ".join(problems)
            + f"\nIts demos would be shown under the wrong fields. Recompile (a compile into {directory.parent} starts "
            f"from the zero-shot program when its promoted version no longer fits): {_recompile_command(directory, manifest)}"
        )


def _recompile_command(directory: Path, manifest: Manifest) -> str:
    """The compile command for this artifact: its task set file if it is where the repository keeps it,
    else the copy the artifact carries."""
    name = manifest.taskset.get("name")
    shipped = Path("tasksets") / f"{name}.toml"
    taskset = shipped if name and shipped.exists() else directory / (manifest.taskset.get("file") or "taskset.toml")
    return f"purpose-dspy compile {taskset} --out {directory.parent}"


def _keep_code_signatures(loaded: dspy.Module, fresh_signatures: dict[str, type[dspy.Signature]]) -> None:
    """Give each loaded predictor back the code's signature class when the content is the same.

    `load_state` rebuilds signatures as `StringSignature`s; the fingerprints were checked before the
    load, so the class the code defines prompts exactly as the rebuilt one does, and keeps its name.
    """
    for name, pred in loaded.named_predictors():
        code = fresh_signatures.get(name)
        if code is not None and _same_prompt(signature_fingerprint(pred.signature), signature_fingerprint(code)):
            pred.signature = code


def _same_prompt(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "signature"} == {k: v for k, v in b.items() if k != "signature"}


class CompiledAgent:
    """A loaded artifact: the compiled program plus its manifest, ready to run."""

    def __init__(self, path: Path, manifest: Manifest, program: dspy.Module, components: dict[str, dspy.Module],
                 memory_cards: list[dict[str, Any]], taskset_toml: bytes | None) -> None:
        self.path, self.manifest, self.program, self.components = path, manifest, program, components
        self.memory_cards = memory_cards
        self.taskset_toml = taskset_toml

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def is_editor(self) -> bool:
        """An editor artifact (`edit`), not an agent one (`run`)."""
        return "editor" in self.components and "actor" not in self.components

    def build_lms(self, roles: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The LMs the artifact was compiled with (keys come from the environment, as always)."""
        from purpose_dspy.lm import LMSpec, build_lm

        roles = roles or (("editor",) if self.is_editor else ("actor", "critic"))
        out = {}
        for role in roles:
            spec = self.manifest.lms.get(role) or self.manifest.lms.get("actor") or {}
            out[role] = build_lm(LMSpec(**{k: v for k, v in spec.items() if k in LMSpec.model_fields}), role=role)
        return out

    def run(self, purpose: str | None, env: Any, *, task: Any = None, lms: dict[str, Any] | None = None,
            config: Any = None, experience: Any = None) -> Any:
        """One episode with the compiled program (`task` default: seed 0 of the artifact's environment)."""
        from purpose_dspy.config import RunConfig
        from purpose_dspy.orchestrator import Orchestrator
        from purpose_dspy.types import Task

        if self.is_editor:
            raise UsageError(f"{self.path} is a compiled editor: call .edit(task), not .run(purpose, env)")
        ts = self.manifest.taskset
        if task is None:
            task = Task(env_id=getattr(env, "env_id", ts.get("env", "treasure-maze")), seed=0, split="test",
                        params=ts.get("params") or {})
        config = config or RunConfig(max_steps=int(ts.get("max_steps") or 20))
        return Orchestrator(self.program, lms or self.build_lms(), config, experience=experience).run(
            env, task, purpose if purpose is not None else ts.get("purpose"))


    def edit(self, task: Any, *, archive: Any = None, lm: Any = None, learn: bool = True) -> Any:
        """One writing task (a `WritingTask` or a request in words) with the compiled editor; see `editing.edit`."""
        from purpose_dspy.editing import edit

        if not self.is_editor:
            raise UsageError(f"{self.path} is a compiled agent: call .run(purpose, env), not .edit(task)")
        return edit(task, lm=lm or self.build_lms()["editor"], editor=self.program, archive=archive, learn=learn)


def load(ref: str | Path) -> CompiledAgent:
    """Load `compiled/<name>` (its current promoted version) or `compiled/<name>@v<N>`, verified."""
    root, version = parse_ref(ref)
    if version is None:
        if not root.is_dir():
            raise UsageError(f"no artifacts at {root}; compile one with: purpose-dspy compile <taskset> --out {root}")
        stack = promoted_stack(root)
        if not stack:
            kept = ", ".join(f"v{m.version} ({m.gate.reason})" for m in versions(root)) or "none"
            raise ArtifactError(f"{root} has no promoted version (versions: {kept}); load one explicitly as "
                                f"{root}@v<N> or promote it: purpose-dspy artifacts promote {root}@v<N>")
        version = stack[-1]
    directory = root / f"v{version}"
    if not directory.is_dir():
        raise UsageError(f"{root} has no version {version}; see: purpose-dspy artifacts list {root}")
    manifest, blobs = _read_verified(directory)
    components = _fresh_components(manifest)
    _check_fingerprints(directory, manifest, components)
    for name, module in components.items():
        code_signatures = {p: pred.signature for p, pred in module.named_predictors()}
        try:
            module.load_state(json.loads(blobs[manifest.components[name].file]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{directory}/{name}.json does not fit {type(module).__name__}: {exc}; recompile") from exc
        for _, pred in module.named_predictors():  # DSPy restores demos as dicts; make them Examples again
            pred.demos = [dspy.Example(**d) if isinstance(d, dict) else d for d in pred.demos]
        _keep_code_signatures(module, code_signatures)
    if "actor" in components:
        program: dspy.Module = PurposeAgent(actor=components["actor"], critic=components["critic"])
    elif "editor" in components:
        program = components["editor"]
    else:
        raise ArtifactError(f"{directory} holds neither an agent (actor, critic) nor an editor; recompile")
    program._compiled = True
    memory = json.loads(blobs["memory.json"]).get("cards", []) if "memory.json" in blobs else []
    return CompiledAgent(directory, manifest, program, components, memory, blobs.get("taskset.toml"))


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


__all__ = ["CompiledAgent", "Manifest", "components_of", "diff", "load", "parse_ref", "promote", "promoted_stack",
           "read_manifest", "rollback", "save_artifact", "verify", "versions"]
