"""purpose-dspy: agents that improve from their own experience, as DSPy programs.

Importing this package loads no model, starts no engine, touches no disk and imports nothing heavy:
the names below are imported on first use (so `purpose-dspy --help` and the pytest plugin start fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from purpose_dspy.artifacts.compiled import CompiledAgent
    from purpose_dspy.environments import make_env
    from purpose_dspy.experience import Experience, ExperienceConfig
    from purpose_dspy.runtime.config import RunConfig
    from purpose_dspy.runtime.orchestrator import Orchestrator, run_task
    from purpose_dspy.types import Action, PurposeScore, RunResult, State, Task, Trajectory, Transition

__version__ = "0.1.0"

_EXPORTS = {
    "make_env": "purpose_dspy.environments",
    "Experience": "purpose_dspy.experience", "ExperienceConfig": "purpose_dspy.experience",
    "RunConfig": "purpose_dspy.runtime.config",
    "Orchestrator": "purpose_dspy.runtime.orchestrator", "run_task": "purpose_dspy.runtime.orchestrator",
    **{name: "purpose_dspy.types" for name in
       ("Action", "PurposeScore", "RunResult", "State", "Task", "Trajectory", "Transition")},
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'purpose_dspy' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def load(ref: str) -> CompiledAgent:
    """A compiled artifact, verified and ready: `load("compiled/twx-coin")` (its promoted version) or
    `load("compiled/twx-coin@v3")`; then `agent.run(purpose, env)`. See purpose_dspy.artifacts."""
    from purpose_dspy.artifacts import load as load_artifact

    return load_artifact(ref)


__all__ = [
    "Action", "Experience", "ExperienceConfig", "Orchestrator", "PurposeScore", "RunConfig", "RunResult", "State",
    "Task", "Trajectory", "Transition", "load", "make_env", "run_task",
]
