"""purpose-dspy: agents that improve from their own experience, as DSPy programs.

Importing this package loads no model, starts no engine and touches no disk.
"""

from purpose_dspy.environments import make_env
from purpose_dspy.experience import Experience, ExperienceConfig
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.orchestrator import Orchestrator, run_task
from purpose_dspy.types import (
    Action,
    PurposeScore,
    RunResult,
    State,
    Task,
    Trajectory,
    Transition,
)

__version__ = "0.1.0"


def load(ref: str) -> "CompiledAgent":  # noqa: F821 - imported lazily below
    """A compiled artifact, verified and ready: `load("compiled/twx-coin")` (its promoted version) or
    `load("compiled/twx-coin@v3")`; then `agent.run(purpose, env)`. See purpose_dspy.artifacts."""
    from purpose_dspy.artifacts import load as load_artifact

    return load_artifact(ref)

__all__ = [
    "Action", "Experience", "ExperienceConfig", "Orchestrator", "PurposeScore", "RunConfig", "RunResult", "State", "Task", "Trajectory",
    "Transition", "load", "make_env", "run_task",
]
