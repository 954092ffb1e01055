"""`CompiledAgent`: a loaded artifact, ready to run (an agent) or to edit (an editor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dspy

from purpose_dspy.artifacts.manifest import Manifest
from purpose_dspy.errors import UsageError


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
            config: Any = None, experience: Any = None, monitor: Any = None) -> Any:
        """One episode with the compiled program (`task` default: seed 0 of the artifact's environment).

        `monitor` (a `purpose_dspy.monitor.Monitor`; default: the one `PURPOSE_DSPY_MONITOR` names, if set) limits
        the episode and records it in its ledger (source 'agent')."""
        from purpose_dspy.monitor import Monitor
        from purpose_dspy.runtime.config import RunConfig
        from purpose_dspy.runtime.orchestrator import Orchestrator
        from purpose_dspy.types import Task

        if self.is_editor:
            raise UsageError(f"{self.path} is a compiled editor: call .edit(task), not .run(purpose, env)")
        ts = self.manifest.taskset
        if task is None:
            task = Task(env_id=getattr(env, "env_id", ts.get("env", "treasure-maze")), seed=0, split="test",
                        params=ts.get("params") or {})
        config = config or RunConfig(max_steps=int(ts.get("max_steps") or 20))
        monitor = monitor if monitor is not None else Monitor.from_env()
        guard = monitor.guard(self.manifest.name, version=f"v{self.version}", source="agent") if monitor else None
        return Orchestrator(self.program, lms or self.build_lms(), config, experience=experience,
                            limit_guard=guard).run(env, task, purpose if purpose is not None else ts.get("purpose"))


    def edit(self, task: Any, *, archive: Any = None, lm: Any = None, learn: bool = True) -> Any:
        """One writing task (a `WritingTask` or a request in words) with the compiled editor; see `editing.edit`."""
        from purpose_dspy.runtime.editing import edit

        if not self.is_editor:
            raise UsageError(f"{self.path} is a compiled agent: call .run(purpose, env), not .edit(task)")
        return edit(task, lm=lm or self.build_lms()["editor"], editor=self.program, archive=archive, learn=learn)
