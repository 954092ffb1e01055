"""Records every LM call of a run: role, model, tokens (prompt, of them prefix-cached, completion), latency, cache hit.

Each run gets private copies of its role LMs (`lm.copy()` shares the loaded model but has its own
history), with a recorder attached as a DSPy callback. Because a run is one thread, the LM's last
history entry at `on_lm_end` is the call that just finished, and its usage is that call's. Prefix-cached
prompt tokens are read where an OpenAI-style server reports them (`prompt_tokens_details.cached_tokens`).
"""

from __future__ import annotations

import time
from typing import Any

from dspy.utils.callback import BaseCallback

from purpose_dspy.types import LMCall, Role


class LMCallRecorder(BaseCallback):
    """Appends one `LMCall` to `sink` per finished LM call made through the LM it is attached to."""

    def __init__(self, role: Role, sink: list[LMCall]) -> None:
        self.role = role
        self.sink = sink
        self._started: dict[str, tuple[float, Any]] = {}

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self._started[call_id] = (time.perf_counter(), instance)

    def on_lm_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
        started, lm = self._started.pop(call_id, (time.perf_counter(), None))
        entry = lm.history[-1] if lm is not None and lm.history and exception is None else {}
        usage = entry.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        self.sink.append(
            LMCall(
                role=self.role,
                model=getattr(lm, "model", "?"),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cached_tokens=int((details.get("cached_tokens") if isinstance(details, dict) else 0) or 0),
                seconds=round(time.perf_counter() - started, 4),
                cached=exception is None and not usage,
            )
        )


def traced_copy(lm: Any, role: Role, sink: list[LMCall]) -> Any:
    """A run-private copy of `lm` that records its calls into `sink` under `role`."""
    copy = lm.copy()
    copy.callbacks = [*copy.callbacks, LMCallRecorder(role, sink)]
    return copy
