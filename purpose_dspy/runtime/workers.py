"""What a rollout worker in another process needs: its LMs from a spec, the agent from JSON, a Φ snapshot.

A remote backend (`ray_backend.py`) cannot ship a `dspy.LM` (a loaded llama.cpp model, a lock, an HTTP
client) or a program object, and nothing here is pickled: everything crosses as JSON text.

- `WorkerLMs` says how a worker builds its role LMs: an `LMConfig` (as `build_role_lms` takes: the
  embedded model then loads once per worker, a served model is reached over HTTP), or an `LMFactory`,
  the import path of a function that returns them (scripted LMs in tests and benchmarks).
- `agent_json` / `agent_from_json`: a `PurposeAgent` as its components' classes, constructor settings
  and DSPy states (demos, instructions, the actor's task paths), rebuilt so that it prompts as the
  original does and its critic has the same fingerprint (the Φ store's namespace).
- `SnapshotPhiStore`: Φ as the driver's store held it when the wave started, read-only: what the
  episode settles stays in the worker's overlay and goes back to the driver, the one writer, with
  the keys the episode looked up and did not find (`missed`), so the driver can tell whether an
  earlier task of the same wave settled one of them first (then it reruns the task: `ray_backend.py`).
- `RolloutWorker`: one environment per family and the LMs, kept for the whole job; `run` is one
  whole episode, answered as a `WorkerReply` in JSON. A worker that dies mid-episode answers nothing.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from purpose_dspy.environments import make_env
from purpose_dspy.errors import UsageError
from purpose_dspy.lm import LMConfig, build_role_lms
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.orchestrator import Orchestrator
from purpose_dspy.safeguards import PhiStore
from purpose_dspy.types import Role, RunResult, Task

if TYPE_CHECKING:
    from purpose_dspy.environments.base import Environment

FORMAT = 1  # of the JSON that crosses between the driver and a worker


class LMFactory(BaseModel):
    """A function a worker imports and calls to get its role LMs: `function(**kwargs) -> {role: dspy.LM}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    function: str = Field(description="'package.module:function', importable on every worker.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="JSON keyword arguments of the call.")


WorkerLMs = LMConfig | LMFactory


class _LMsSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    config: LMConfig | None = None
    factory: LMFactory | None = None
    roles: tuple[Role, ...] = ("actor", "critic")


def lms_json(spec: WorkerLMs, roles: tuple[Role, ...] = ("actor", "critic")) -> str:
    """The JSON a worker builds its LMs from."""
    if isinstance(spec, LMConfig):
        return _LMsSpec(config=spec, roles=roles).model_dump_json()
    if isinstance(spec, LMFactory):
        return _LMsSpec(factory=spec, roles=roles).model_dump_json()
    raise UsageError(f"a worker builds its LMs from an LMConfig or an LMFactory('module:function'), got "
                     f"{type(spec).__name__}; a dspy.LM object cannot be sent to another process")


def build_worker_lms(text: str) -> dict[Role, Any]:
    """The role LMs `lms_json` describes, built in this process."""
    spec = _LMsSpec.model_validate_json(text)
    if spec.config is not None:
        return build_role_lms(spec.config, roles=spec.roles)
    assert spec.factory is not None
    lms = _imported(spec.factory.function)(**spec.factory.kwargs)
    if missing := set(spec.roles) - set(lms):
        raise UsageError(f"{spec.factory.function} returned LMs for {sorted(lms)}, not for {sorted(missing)}")
    return dict(lms)


def _imported(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    if not module or not name:
        raise UsageError(f"an import path is 'package.module:function', got {path!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"{path} cannot be imported on this worker ({exc}); install the code on every node "
                         "(or put its folder on PYTHONPATH through the Ray runtime_env)") from exc


# -- the agent as JSON -----------------------------------------------------------------------------
def _component(module: Any) -> dict[str, Any]:
    """A component's class, the constructor settings it holds (`max_attempts`, `reasoning`...) and its state."""
    cls = type(module)
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    settings = {n: getattr(module, n) for n in names if isinstance(getattr(module, n, None), (bool, int, float, str))}
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "settings": settings, "state": module.dump_state()}


def agent_json(agent: PurposeAgent) -> str:
    """`agent` as JSON text a worker rebuilds it from (`agent_from_json`)."""
    return json.dumps({"format": FORMAT, "class": f"{type(agent).__module__}:{type(agent).__qualname__}",
                       "actor": _component(agent.actor), "critic": _component(agent.critic)},
                      sort_keys=True, default=str)


def _rebuilt(spec: dict[str, Any]) -> Any:
    """The component `_component` describes: built with its settings, its state loaded, its demos Examples again,
    and the code's own signature class kept where the state did not change it (it prompts the same)."""
    import dspy

    module = _imported(spec["class"])(**spec["settings"])
    fresh = {name: pred.signature for name, pred in module.named_predictors()}
    module.load_state(spec["state"])
    for name, pred in module.named_predictors():
        pred.demos = [dspy.Example(**d) if isinstance(d, dict) else d for d in pred.demos]
        if name in fresh and fresh[name].dump_state() == pred.signature.dump_state():
            pred.signature = fresh[name]
    return module


def agent_from_json(text: str) -> PurposeAgent:
    data = json.loads(text)
    if data.get("format") != FORMAT:
        raise UsageError(f"this worker reads agent format {FORMAT}, got {data.get('format')}: run the same "
                         "purpose-dspy version on the driver and every worker")
    return _imported(data["class"])(actor=_rebuilt(data["actor"]), critic=_rebuilt(data["critic"]))


# -- Φ: a read-only snapshot plus what this episode settled ------------------------------------------
class SnapshotPhiStore(PhiStore):
    """The driver's Φ as of the wave's start; writes stay here (`settled`), reads not found are `missed`."""

    def __init__(self, snapshot: dict[str, float]) -> None:
        super().__init__(None)
        self.snapshot = snapshot
        self.settled: dict[str, float] = {}
        self.missed: set[str] = set()

    def get(self, key: str) -> float | None:
        value = self.snapshot.get(key, self.settled.get(key))
        if value is None:
            self.missed.add(key)
            self.misses += 1
        else:
            self.hits += 1
        return value

    def settle(self, key: str, phi: float) -> float:
        if key in self.snapshot:
            return self.snapshot[key]
        self.missed.add(key)
        return self.settled.setdefault(key, phi)

    def __len__(self) -> int:
        return len(self.snapshot) + len(self.settled)


class WorkerReply(BaseModel):
    """One whole episode, as a worker sends it back."""

    format: int = FORMAT
    result: RunResult
    settled: dict[str, float] = Field(default_factory=dict, description="Φ the episode settled, in order.")
    missed: list[str] = Field(default_factory=list, description="Store keys it looked up and did not find.")


class RolloutWorker:
    """Owns one environment per family and the role LMs for a whole job; runs one episode per call."""

    def __init__(self, lms: str) -> None:
        self.lms = build_worker_lms(lms)
        self.envs: dict[str, Environment] = {}
        self._agent: tuple[str, PurposeAgent] | None = None  # the last agent, by the hash of its JSON
        self._snapshot: tuple[int, dict[str, float]] | None = None  # the last wave's Φ, by wave number

    def run(self, agent: str, task: str, config: str, purpose: str, wave: int, snapshot: Any) -> str:
        """One episode of `task` (JSON) under `config` (a RunConfig's JSON, its LM cap set); the reply's JSON.

        `snapshot` is the wave's Φ (a dict, or something `resolve` turns into one: Ray passes a reference so
        that a wave's snapshot is read once per worker, not once per task)."""
        program = self._program(agent)
        phi = SnapshotPhiStore(self._wave_snapshot(wave, snapshot))
        t = Task.model_validate_json(task)
        if t.env_id not in self.envs:
            self.envs[t.env_id] = make_env(t.env_id)
        result = Orchestrator(program, self.lms, RunConfig.model_validate_json(config), phi_store=phi).run(
            self.envs[t.env_id], t, purpose)
        return WorkerReply(result=result, settled=phi.settled, missed=sorted(phi.missed)).model_dump_json()

    def resolve(self, snapshot: Any) -> dict[str, float]:
        """Turn what the driver passed as a snapshot into the dict (a backend overrides this)."""
        return snapshot

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs.clear()

    def _program(self, text: str) -> PurposeAgent:
        key = hashlib.sha256(text.encode()).hexdigest()
        if self._agent is None or self._agent[0] != key:
            self._agent = (key, agent_from_json(text))
        return self._agent[1]

    def _wave_snapshot(self, wave: int, snapshot: Any) -> dict[str, float]:
        if self._snapshot is None or self._snapshot[0] != wave:
            self._snapshot = (wave, self.resolve(snapshot))
        return self._snapshot[1]
