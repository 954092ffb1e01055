"""The embedded LM: a GGUF model run in-process by llama-cpp-python, as a DSPy engine.

DSPy keeps the response cache, retries, history and usage; this engine only turns one canonical
`dspy.lm15.Request` into one `Response`. Structured outputs use llama.cpp's JSON-schema grammar,
so a small model cannot produce unparsable JSON or an action outside a `Literal`. Two policies are
added to every schema because small models ramble: strings are capped at `max_string_chars`,
and numbers keep their declared ranges where the grammar allows.

Usage: llama-cpp-python (0.3.x) reports `prompt_tokens`, `completion_tokens` and `total_tokens` only. It
does reuse its KV cache for the prompt prefix a call shares with the one before, but reports no count of
the reused tokens (no `prompt_tokens_details`), so `LMCall.cached_tokens` is 0 for the embedded model.
"""

from __future__ import annotations

import atexit
import copy
import logging
import os
import threading
from pathlib import Path
from typing import Any

from purpose_dspy.errors import LMUnavailableError

logger = logging.getLogger(__name__)


def _cap_strings(schema: Any, limit: int) -> Any:
    """Return a copy of a JSON schema whose free strings carry maxLength <= limit."""
    if isinstance(schema, dict):
        out = {k: _cap_strings(v, limit) for k, v in schema.items()}
        if out.get("type") == "string" and "enum" not in out and "const" not in out:
            out["maxLength"] = min(int(out.get("maxLength", limit)), limit)
        return out
    if isinstance(schema, list):
        return [_cap_strings(v, limit) for v in schema]
    return schema


class LlamaCppEngine:
    """One GGUF model in this process; calls are serialised by a lock (llama.cpp is not re-entrant).

    The model loads on the first call, so building an LM (or running `--help`) costs nothing.
    """

    supports_response_schema = True
    supported_params = frozenset({"temperature", "max_tokens", "top_p", "seed", "stop", "response_format"})

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_string_chars: int = 240,
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        # llama.cpp threads spin while they wait for each other: two processes that each take every
        # core run many times slower than one (seen here: minutes per step on 2 cores). Set
        # PURPOSE_DSPY_THREADS to share the machine between processes.
        self.n_threads = n_threads or int(os.environ.get("PURPOSE_DSPY_THREADS", 0)) or max(1, min(os.cpu_count() or 1, 4))
        self.max_string_chars = max_string_chars
        self._llama: Any = None
        self._lock = threading.Lock()

    # Teleprompters deep-copy modules (and the LMs on them): share the loaded model instead.
    def __deepcopy__(self, memo: dict) -> LlamaCppEngine:
        return self

    def _model(self) -> Any:
        if self._llama is None:
            if not self.model_path.is_file():
                raise LMUnavailableError(f"model file not found: {self.model_path}")
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise LMUnavailableError(
                    "llama-cpp-python is not installed: pip install 'purpose-dspy[local]'"
                ) from exc
            logger.info("loading %s (n_ctx=%d, threads=%d)", self.model_path.name, self.n_ctx, self.n_threads)
            self._llama = Llama(
                model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
            )
            # Free the model while the interpreter is intact: llama.cpp's own __del__ at shutdown
            # runs after its module globals are gone and prints a TypeError traceback.
            atexit.register(self.close)
        return self._llama

    def complete(self, request: Any) -> Any:
        from dspy.lm15 import ContextLengthError, response_from_openai_chat

        messages: list[dict[str, str]] = []
        if request.system is not None:
            system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
            messages.append({"role": "system", "content": system})
        messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)

        config = request.config
        kwargs: dict[str, Any] = {
            "temperature": 0.0 if config.temperature is None else config.temperature,
            "max_tokens": config.max_tokens or 512,
        }
        if config.top_p is not None:
            kwargs["top_p"] = config.top_p
        if config.seed is not None:
            kwargs["seed"] = config.seed
        if config.stop:
            kwargs["stop"] = list(config.stop)
        fmt = config.response_format
        if fmt is not None:
            schema = fmt.get("schema")
            kwargs["response_format"] = (
                {"type": "json_object", "schema": _cap_strings(copy.deepcopy(schema), self.max_string_chars)}
                if schema
                else {"type": "json_object"}
            )
        with self._lock:
            llama = self._model()
            try:
                body = llama.create_chat_completion(messages=messages, **kwargs)
            except ValueError as exc:  # llama.cpp reports an over-long prompt as ValueError
                if "context window" in str(exc) or "exceed" in str(exc):
                    raise ContextLengthError(str(exc)) from exc
                raise
        return response_from_openai_chat(body, model=request.model)

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        """Free the loaded model (it loads again on the next call)."""
        with self._lock:
            llama, self._llama = self._llama, None
        if llama is not None and hasattr(llama, "close"):
            llama.close()
