"""The embedded LM: a GGUF model run in-process by llama-cpp-python, as a DSPy engine.

DSPy keeps the response cache, retries, history and usage; this engine only turns one canonical
`dspy.lm15.Request` into one `Response`. Structured outputs use llama.cpp's JSON-schema grammar,
so a small model cannot produce unparsable JSON or an action outside a `Literal`; the request body,
with its string caps, is the one `schema.py` builds for every engine (the `json_object` mode).

Usage: llama-cpp-python (0.3.x) reports `prompt_tokens`, `completion_tokens` and `total_tokens` only. It
does reuse its KV cache for the prompt prefix a call shares with the one before, but reports no count of
the reused tokens (no `prompt_tokens_details`), so `LMCall.cached_tokens` is 0 for the embedded model.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from pathlib import Path
from typing import Any

from purpose_dspy.errors import LMUnavailableError
from purpose_dspy.lm.schema import MAX_STRING_CHARS, cap_strings, chat_kwargs

logger = logging.getLogger(__name__)

_cap_strings = cap_strings  # its former home: benchmarks/step_overhead.py imports it from here


class LlamaCppEngine:
    """One GGUF model in this process; calls are serialised by a lock (llama.cpp is not re-entrant).

    The model loads on the first call, so building an LM (or running `--help`) costs nothing.
    """

    supports_response_schema = True
    structured_outputs = "json_object"  # the schema goes to llama.cpp's grammar as that mode sends it
    supported_params = frozenset({"temperature", "max_tokens", "top_p", "seed", "stop", "response_format"})

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_string_chars: int = MAX_STRING_CHARS,
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        # llama.cpp threads spin while they wait for each other: two processes that each take every
        # core run many times slower than one (seen here: minutes per step on 2 cores). Set
        # PURPOSE_DSPY_THREADS to share the machine between processes.
        self.n_threads = n_threads or int(os.environ.get("PURPOSE_DSPY_THREADS") or 0) or max(1, min(os.cpu_count() or 1, 4))
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
            # n_threads_batch too: llama-cpp-python otherwise evaluates prompts on every core whatever n_threads says.
            self._llama = Llama(model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                n_threads_batch=self.n_threads, verbose=False)
            # Free the model while the interpreter is intact: llama.cpp's own __del__ at shutdown
            # runs after its module globals are gone and prints a TypeError traceback.
            atexit.register(self.close)
        return self._llama

    def complete(self, request: Any) -> Any:
        from dspy.lm15 import ContextLengthError, response_from_openai_chat

        # llama-cpp-python takes the schema the way the `json_object` mode sends it (see schema.py).
        kwargs = chat_kwargs(request, "json_object", self.max_string_chars)
        with self._lock:
            llama = self._model()
            try:
                body = llama.create_chat_completion(**kwargs)
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
