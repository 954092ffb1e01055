"""Compiled artifacts: versioned, hashed, JSON-only directories that applications load in one call.

    compiled/<name>/v<N>/  actor.json, critic.json[, judge.json]   DSPy state of each component
                           memory.json                             the memory snapshot (cards)
                           taskset.toml                            the task set it was compiled on
                           manifest.json                           everything below, canonical JSON
    compiled/<name>/promotions.jsonl                               promotion log (append-only): each version's
                                                                   status (promoted, demoted, pending, rejected)

The manifest records the schema version, creation time, parent version, the signature fingerprint of
every predictor (field names, kinds, types, JSON schema, instruction hash), dspy / python versions,
the LM per role (never a key), the task set's name and content hash, the splits used, metrics before
and after with 95% intervals, LM calls and tokens, where every demo came from, the promotion gate's
decision, each file's sha256 and a content hash over all of them.

`load()` reads every file once, checks its hash, checks the manifest is byte-for-byte canonical and
self-consistent, and compares the fingerprints with the signatures of the code now running: anything
that differs is refused with what differs and what to do (DSPy's own loader would instead match
fields by position and silently shift them). There is no pickle anywhere. The hashes detect damage
and edits, not a forger who rewrites them too: for that, set `PURPOSE_DSPY_SIGNING_KEY` (signing.py).

An artifact is untrusted input until checked (files.py): the names it lists are plain file names, its
entries regular files under a size cap, all checked before anything is opened. A predictor state that
carries its own LM (DSPy's `dump_state` can include `lm`) is refused at load, never loaded: it would
override the LMs the caller passes and send prompts to a provider the artifact chose. Refusing rather
than stripping it is the safe default, since an artifact that names an LM was not written by
`save_artifact`, which writes `lm: null` (and warns) when a predictor has an LM of its own.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
from datetime import datetime, timezone
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import dspy

from purpose_dspy.artifacts import files as untrusted
from purpose_dspy.artifacts import signing
from purpose_dspy.artifacts.compiled import CompiledAgent
from purpose_dspy.artifacts.fingerprint import (
    component_fingerprints,
    fingerprint_differences,
    signature_fingerprint,
)
from purpose_dspy.artifacts.manifest import (
    MANIFEST,
    ComponentEntry,
    Gate,
    Manifest,
    _canonical,
    _content_hash,
    _no_secrets,
    _sha,
    read_manifest,
)
from purpose_dspy.artifacts.versions import _log_promotion, _next_version, approval_state, check_servable, resolve
from purpose_dspy.errors import ArtifactError, StaleArtifactError, UsageError
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.tasksets import TaskSet
from purpose_dspy.teleprompt.base import CompileReport

logger = logging.getLogger(__name__)


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
    pending: bool = False,
    log: dict[str, Any] | None = None,
) -> Manifest:
    """Write the next version under `root` (atomically: a temp dir renamed into place), promoted if the compile's
    gate promoted it; with `pending`, a version the gate passed is written pending instead (never served until
    `approval.approve`). `log`: more fields for its promotion-log line (who, why).

    The decision is the compile's (`report.gate`, see `teleprompt/gate.py`: more paired dev seeds gained than
    lost and a one-sided sign test p <= alpha), recorded as it was; a report without one (no valset) is kept
    unpromoted for a human to promote. `components` are what the compile built (a teleprompter's `candidate`),
    also when the gate refused them, so the version can still be inspected.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    blobs, entries = _component_blobs(components)
    blobs["memory.json"] = _canonical({"format": 1, "cards": report.memory_cards})
    if taskset_bytes is not None:
        blobs["taskset.toml"] = taskset_bytes
    _no_secrets(lms, MANIFEST)
    files = {name: _sha(data) for name, data in blobs.items()}
    gate = _gate(report)
    manifest = Manifest(
        name=root.name, version=_next_version(root), created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        parent_version=parent_version, purpose_dspy_version=package_version("purpose-dspy"), dspy_version=dspy.__version__,
        python_version=platform.python_version(), components=entries, lms=lms,
        taskset=({"name": taskset.name, "env": taskset.env, "content_hash": taskset.content_hash,
                  "file": "taskset.toml" if taskset_bytes is not None else None, "max_steps": taskset.max_steps,
                  "purpose": taskset.purpose, "params": taskset.params} if taskset else {}),
        splits=({split: list(seeds) for split, seeds in taskset.splits.items()
                 if split in {"train", "dev"}} if taskset else {}),
        metrics={"before": report.before, "after": report.after, "train": report.train},
        cost={"lm_calls": report.lm_calls, "tokens": report.tokens, "seconds": report.seconds,
              "phases": report.phases, "by_role": report.by_role, "budget_exhausted": report.budget_exhausted},
        demos=report.demos, judge=report.judge,
        memory={"file": "memory.json", "cards": len(report.memory_cards)},
        gate=gate, approval="required" if pending and gate.promoted else None, files=files,
        content_hash=_content_hash(files),
    )
    version = _write_version(root, manifest, blobs)
    if gate.promoted:
        _log_promotion(root, version, "pending" if pending else "promoted", f"gate: {gate.reason}", **(log or {}))
    logger.info("wrote %s/v%d (%s)", root, version, ("pending approval" if pending else "promoted") if gate.promoted
                else f"not promoted: {gate.reason}")
    return manifest


def _component_blobs(components: dict[str, dspy.Module]) -> tuple[dict[str, bytes], dict[str, ComponentEntry]]:
    """Each component's DSPy state as canonical JSON (refused if it carries a credential) and its manifest entry."""
    blobs, entries = {}, {}
    for name, module in components.items():
        state = module.dump_state()
        for pred, pred_state in state.items():
            if isinstance(pred_state, dict) and pred_state.get("lm") is not None:
                logger.warning("%s.%s has an LM of its own (%s); saving it without one (the manifest's lms say "
                               "which LMs it was compiled with)", name, pred, pred_state["lm"].get("model", "?"))
                pred_state["lm"] = None
        _no_secrets(state, f"{name}.json")
        blobs[f"{name}.json"] = _canonical(state)
        entries[name] = ComponentEntry(
            file=f"{name}.json", program=f"{type(module).__module__}.{type(module).__qualname__}",
            predictors=component_fingerprints(module),
            demos={p: len(pred.demos) for p, pred in module.named_predictors()},
            settings={k: getattr(module, k) for k in getattr(module, "SETTINGS", ())} or None,
        )
    return blobs, entries


def _write_version(root: Path, manifest: Manifest, blobs: dict[str, bytes]) -> int:
    """Write `blobs` and the manifest as `root/v<N>` atomically (a temp dir renamed into place); returns N.

    Another process may take the same number first: then the manifest takes the next one and is rehashed.
    """
    while True:
        manifest.manifest_hash = _sha(_canonical(manifest.model_dump(mode="json") | {"manifest_hash": ""}))
        blobs[MANIFEST] = _canonical(manifest.model_dump(mode="json"))
        if (signature := signing.signature_blob(manifest.manifest_hash)) is not None:
            blobs[signing.SIGNATURE] = signature
        staging = root / f".v{manifest.version}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name, data in blobs.items():
            with open(staging / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        try:
            os.rename(staging, root / f"v{manifest.version}")
            return manifest.version
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            manifest.version = _next_version(root)


def _gate(report: CompileReport) -> Gate:
    """The compile's own decision; none (no valset, so the gate did not run): not promoted."""
    if report.gate is None:
        return Gate(promoted=False, reason="the compile's gate did not run (no valset evaluation to compare with the "
                    "parent); promote by hand after a look")
    return Gate.model_validate(report.gate.model_dump())


def promote(ref: str | Path, reason: str = "by operator", *, require_signature: bool = False) -> int:
    """Promote a version after a trial load (a damaged or stale version is never promoted; a pending one is
    approved instead, so its approval is on record: `approval.approve`)."""
    directory = resolve(ref, explicit="promote")
    manifest = verify(directory, require_signature=require_signature)
    if approval_state(directory, manifest)[0] == "pending":
        raise UsageError(f"{directory.parent}@v{manifest.version} is pending approval; approve it instead (so the "
                         f"approval is recorded): purpose-dspy artifacts approve {directory.parent}@v{manifest.version}")
    version = int(directory.name[1:])
    _log_promotion(directory.parent, version, "promoted", reason)
    return version


def _read_verified(directory: Path, *, require_signature: bool = False,
                   check_signature: bool = True) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest and every file's bytes, each checked against its hash (read once, then used).

    Every entry is checked (kind, size) before anything is opened, and the signature (when a key is set)
    before any file but the manifest is read."""
    present = untrusted.listing(directory) - {MANIFEST}
    manifest = read_manifest(directory)
    if check_signature:
        signing.check(directory, manifest.manifest_hash, signing.SIGNATURE in present, require=require_signature)
    if extra := present - set(manifest.files) - {signing.SIGNATURE}:
        raise ArtifactError(f"{directory}: unexpected file(s) {sorted(extra)} not listed in the manifest; remove them or recompile")
    blobs = {}
    for name, digest in sorted(manifest.files.items()):
        try:
            data = untrusted.read(directory, name)
        except OSError as exc:
            raise ArtifactError(f"{directory}: {name} is missing; the artifact is incomplete: recompile or restore it") from exc
        if _sha(data) != digest:
            raise ArtifactError(f"{directory}/{name} changed since compile (sha256 differs from the manifest); "
                                "recompile or restore the file")
        blobs[name] = data
    if _content_hash(manifest.files) != manifest.content_hash:
        raise ArtifactError(f"{directory}: content hash does not match the file list; recompile")
    return manifest, blobs


def verify(directory: str | Path, components: dict[str, dspy.Module] | None = None, *,
           require_signature: bool = False) -> Manifest:
    """Check an artifact without keeping it: files, hashes, signature (with a key), canonical manifest,
    no LM in any state, and fingerprints vs the code."""
    directory = Path(directory)
    manifest, blobs = _read_verified(directory, require_signature=require_signature)
    _component_states(directory, manifest, blobs)
    _check_fingerprints(directory, manifest, components or _fresh_components(manifest))
    return manifest


def sign(ref: str | Path) -> Path:
    """Sign a version with the key of `PURPOSE_DSPY_SIGNING_KEY`, after checking it as `verify` does (but for its
    signature). Only sign a version you trust: the signature says it is yours."""
    directory = resolve(ref, explicit="sign")
    signing.signing_key(required=True)
    manifest, blobs = _read_verified(directory, check_signature=False)
    _component_states(directory, manifest, blobs)
    _check_fingerprints(directory, manifest, _fresh_components(manifest))
    signature = signing.signature_blob(manifest.manifest_hash)
    assert signature is not None  # the key is set
    staging = directory.parent / f".{signing.SIGNATURE}.tmp-{os.getpid()}"
    with open(staging, "wb") as f:
        f.write(signature)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, directory / signing.SIGNATURE)  # atomic: a load sees the old signature or the new one
    return directory


def _component_states(directory: Path, manifest: Manifest, blobs: dict[str, bytes]) -> dict[str, Any]:
    """Each component's DSPy state, parsed; refused when a predictor carries an LM of its own (see the top)."""
    states = {}
    for name, entry in manifest.components.items():
        try:
            state = json.loads(blobs[entry.file])
        except (ValueError, RecursionError) as exc:
            raise ArtifactError(f"{directory}/{entry.file} is not a JSON state ({type(exc).__name__}); "
                                "recompile") from exc
        for pred, pred_state in (state.items() if isinstance(state, dict) else ()):
            if isinstance(pred_state, dict) and pred_state.get("lm") is not None:
                lm = pred_state["lm"]
                model = lm.get("model") if isinstance(lm, dict) else None
                raise ArtifactError(
                    f"{directory}/{entry.file}: predictor {pred!r} carries its own LM ({str(model)[:80]!r}), which "
                    "would override the LMs you pass; an artifact never chooses its LM, so it is refused: recompile "
                    "it or get it from a trusted source")
        states[name] = state
    return states


def _fresh_components(manifest: Manifest) -> dict[str, dspy.Module]:
    from purpose_dspy.programs.editor import Editor
    from purpose_dspy.programs.meta_judge import MetaJudge

    fresh = PurposeAgent()
    known: dict[str, Any] = {"actor": fresh.actor, "critic": fresh.critic, "judge": MetaJudge(), "editor": Editor()}
    missing = set(manifest.components) - set(known)
    if missing:
        raise ArtifactError(f"this purpose-dspy does not know component(s) {sorted(missing)}; upgrade it to load this artifact")
    return {name: _with_settings(known[name], entry) for name, entry in manifest.components.items()}


def _with_settings(module: dspy.Module, entry: ComponentEntry) -> dspy.Module:
    """`module` with the settings the artifact recorded, set on it; or, where `reasoning` differs (it picks the
    predictor's signature), one of its class built with them.

    Artifacts written before settings were recorded (`settings` None) had the free-text fields on (reasoning).
    """
    names = getattr(type(module), "SETTINGS", ())
    wanted = entry.settings if entry.settings is not None else ({"reasoning": True} if "reasoning" in names else {})
    unknown = set(wanted) - set(names)
    if unknown:
        raise ArtifactError(f"{entry.file}: settings {sorted(unknown)} are unknown to {type(module).__name__}; "
                            "upgrade purpose-dspy to load this artifact")
    if all(getattr(module, k) == v for k, v in wanted.items()):
        return module
    if wanted.get("reasoning", getattr(module, "reasoning", None)) == getattr(module, "reasoning", None):
        for k, v in wanted.items():  # plain attributes: the module (and a user's own predictor in it) stays
            setattr(module, k, v)
        return module
    return type(module)(**wanted)  # `reasoning` picks the predictor's signature: build it anew


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


def load(ref: str | Path, *, require_signature: bool = False, allow_unapproved: bool = False) -> CompiledAgent:
    """Load `compiled/<name>` (its current promoted version) or `compiled/<name>@v<N>`, verified.

    With `PURPOSE_DSPY_SIGNING_KEY` set, an unsigned or badly signed version is refused; `require_signature`:
    the key must be set (a usage error otherwise), so an unsigned version can never load unnoticed. A pending or
    rejected version is refused (never served) unless `allow_unapproved` (to inspect or evaluate it)."""
    directory = resolve(ref)
    manifest, blobs = _read_verified(directory, require_signature=require_signature)
    if not allow_unapproved:
        check_servable(directory, manifest)
    states = _component_states(directory, manifest, blobs)
    components = _fresh_components(manifest)
    _check_fingerprints(directory, manifest, components)
    for name, module in components.items():
        code_signatures = {p: pred.signature for p, pred in module.named_predictors()}
        try:
            module.load_state(states[name])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
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
    try:
        memory = json.loads(blobs["memory.json"]).get("cards", []) if "memory.json" in blobs else []
    except (ValueError, RecursionError, AttributeError) as exc:
        raise ArtifactError(f"{directory}/memory.json is not a memory snapshot ({type(exc).__name__}); recompile") from exc
    return CompiledAgent(directory, manifest, program, components, memory, blobs.get("taskset.toml"))
