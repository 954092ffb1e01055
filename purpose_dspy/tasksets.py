"""Task sets: a family of tasks in one TOML file (environment, parameters, seeds per split, purpose).

What a compile is run against and what an artifact records (by name and content hash):

    name = "twx-coin"
    env = "twx:coin"
    max_steps = 12
    purpose = "{env_purpose}"          # optional; {env_purpose} is the environment's own goal text
    [params]                           # optional; passed to the environment
    numLocations = 3
    [splits]                           # seeds: a list, or "first..last" inclusive
    train = "0..19"
    dev = "0..9"
    test = [0, 1, 2, 3, 4]

A malformed file raises `UsageError` naming the file, the field and its line.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from purpose_dspy.errors import UsageError
from purpose_dspy.types import Task

Split = Literal["train", "dev", "test"]
_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")


class TaskSet(BaseModel):
    """A named family of tasks with fixed seeds per split (so every run and compile is comparable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Used in artifact paths.")
    env: str = Field(min_length=1, description="Environment id, e.g. 'treasure-maze', 'twx:coin'.")
    description: str = ""
    max_steps: int = Field(20, gt=0, description="Step limit of every episode.")
    purpose: str = Field("{env_purpose}", description="Purpose template; {env_purpose} is the environment's goal.")
    params: dict[str, Any] = Field(default_factory=dict, description="Environment parameters.")
    splits: dict[Split, tuple[int, ...]] = Field(description="Seeds per split; train is required.")
    content_hash: str = Field("", description="sha256 of the file's bytes (set by `load_taskset`).")

    @field_validator("splits", mode="before")
    @classmethod
    def _expand_ranges(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for split, seeds in value.items():
            if isinstance(seeds, str):
                match = _RANGE.match(seeds)
                if not match or int(match[1]) > int(match[2]):
                    raise ValueError(f"{split}: seeds as a string must read 'first..last', got {seeds!r}")
                seeds = list(range(int(match[1]), int(match[2]) + 1))
            out[split] = seeds
        return out

    @field_validator("splits")
    @classmethod
    def _train_and_no_repeats(cls, value: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        if "train" not in value or not value["train"]:
            raise ValueError("a 'train' split with at least one seed is required")
        for split, seeds in value.items():
            if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
                raise ValueError(f"{split}: seeds must be distinct and non-negative")
        return value

    @field_validator("purpose")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        unknown = set(re.findall(r"{(\w*)}", value)) - {"env_purpose"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; only {{env_purpose}} is filled in")
        return value

    def tasks(self, split: Split) -> list[Task]:
        """The tasks of `split`, in seed order (UsageError if this set has no such split)."""
        if split not in self.splits:
            raise UsageError(f"task set {self.name} has no '{split}' split; it has {', '.join(self.splits)}")
        return [Task(env_id=self.env, seed=s, split=split, params=dict(self.params)) for s in self.splits[split]]

    def purpose_for(self, env_purpose: str) -> str:
        """The purpose of one episode, given the environment's own goal text for its task."""
        return self.purpose.replace("{env_purpose}", env_purpose).strip() or env_purpose


def load_taskset(path: str | Path) -> TaskSet:
    """Read and validate a task-set file; errors name the file, the field and its line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read task set {path}: {exc.strerror}") from exc
    return parse_taskset(raw, path)


def parse_taskset(raw: bytes, path: str | Path = "<taskset>") -> TaskSet:
    """Validate a task set from its bytes (`path` only names it in errors), e.g. the copy inside an artifact."""
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    if "content_hash" in data:
        raise UsageError(f"{path}: field 'content_hash' is computed from the file; remove it")
    try:
        return TaskSet(**data, content_hash=hashlib.sha256(raw).hexdigest())
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"] if str(part) != "[key]"]
        field = ".".join(loc) or "(file)"
        line = _line_of(raw.decode("utf-8"), loc)
        where = f"{path}:{line}" if line else str(path)
        message = error["msg"].removeprefix("Value error, ")
        raise UsageError(f"{where}: field '{field}': {message}") from exc


def _line_of(text: str, loc: list[str]) -> int | None:
    """The line where the deepest named key of `loc` is set (a key, or a [table] header), if any."""
    for key in reversed([part for part in loc if not part.isdigit()]):
        pattern = re.compile(rf"^\s*(\[\s*{re.escape(key)}\s*\]|{re.escape(key)}\s*=)")
        for number, line in enumerate(text.splitlines(), start=1):
            if pattern.match(line):
                return number
    return None
