"""Where rollouts run: `local` (threads in this process, `rollouts.py`) or `ray` (actors, `ray_backend.py`).

`open_backend` is what a job calls around its rollouts: None for the local path, else a started Ray
backend that `run_tasks(..., backend=...)` hands the tasks to, stopped when the block ends. The CLI's
`--backend` and `--ray-address` (`backend_flags`, set for a command's duration) take precedence over
what a config says, as the LM flags do (`lm.flag_overrides`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, get_args

from purpose_dspy.errors import UsageError
from purpose_dspy.types import Role

if TYPE_CHECKING:
    from purpose_dspy.runtime.workers import WorkerLMs

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = get_args(Backend)

_FLAGS: ContextVar[tuple[str | None, str | None] | None] = ContextVar("purpose_dspy_backend_flags", default=None)


@contextmanager
def backend_flags(backend: str | None, ray_address: str | None) -> Iterator[None]:
    """Within the block, `open_backend` takes these (None: not given) over its arguments."""
    token = _FLAGS.set((backend, ray_address))
    try:
        yield
    finally:
        _FLAGS.reset(token)


def chosen(backend: str | None = None, ray_address: str | None = None) -> tuple[Backend, str | None]:
    """The backend and Ray address in force: CLI flags, then the arguments; an address alone means ray."""
    flag_backend, flag_address = _FLAGS.get() or (None, None)
    backend, ray_address = flag_backend or backend, flag_address or ray_address
    if backend not in (None, *BACKENDS):
        raise UsageError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if ray_address and backend == "local":
        raise UsageError(f"--ray-address {ray_address} is for --backend ray; drop it or say --backend ray")
    return ("ray" if ray_address else backend or "local"), ray_address  # type: ignore[return-value]


@contextmanager
def open_backend(backend: str | None = None, ray_address: str | None = None, *, workers: int = 1,
                 lms: WorkerLMs | None = None, roles: tuple[Role, ...] = ("actor", "critic")) -> Iterator[Any]:
    """None for the local path; else a Ray backend of `workers` actors, each building its LMs from `lms`."""
    name, address = chosen(backend, ray_address)
    if name == "local":
        yield None
        return
    if lms is None:
        raise UsageError("the ray backend builds every worker's LMs from a spec, and none was given: pass "
                         "worker_lms=LMConfig (what build_role_lms takes) or LMFactory('module:function'); "
                         "LM objects cannot be sent to another process")
    from purpose_dspy.runtime.ray_backend import RayBackend

    with RayBackend(workers, lms, roles=roles, address=address) as ray_backend:
        yield ray_backend
