"""The contract every environment family implements.

Why a Protocol and not a base class: environments wrap engines we did not write (Java games, a
pure-Python grid), so they share behaviour only through this small surface. The orchestrator needs
no more than reset / step / done / purpose; `progress()` is the environment's own measure of how far
the task has got and is used **only** to measure the critic and the agent, never shown to either.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from purpose_dspy.types import State, Task


@runtime_checkable
class Environment(Protocol):
    env_id: str
    # Regular expressions for parts of an observation that change without the world changing
    # (clocks, move counters): the critic's Φ cache ignores them. Empty for most environments.
    volatile_patterns: tuple[str, ...]

    def reset(self, task: Task) -> State:
        """Start `task` and return the first state."""
        ...

    def step(self, action: str) -> State:
        """Apply `action` (one of the state's valid actions where the env lists them)."""
        ...

    @property
    def done(self) -> bool:
        """The episode has ended."""
        ...

    @property
    def purpose(self) -> str:
        """The goal of the task loaded by the last reset, in words (the default purpose)."""
        ...

    def progress(self) -> float | None:
        """Ground-truth progress in [0, 1] if the environment knows it, else None. Measuring only."""
        ...

    def close(self) -> None:
        """Release engines (a JVM for the Java environments)."""
        ...
