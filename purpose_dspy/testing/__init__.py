"""Property-test your own critic: hypothesis strategies over your environment, the critic properties as
plain functions, `CriticPropertySuite` for your test file, and a pytest plugin (`pip install purpose-dspy[testing]`).

The properties and the critic wrappers need no hypothesis (`purpose-dspy critic-check` runs them);
the strategies and the suite do, and are imported only when asked for. Importing this package
loads no model.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module, imported on first access, so loading the pytest plugin imports no DSPy; the suite,
# the strategies and the scripted LMs need the `testing` extra (hypothesis and pytest)
_LAZY = {
    "GuardedCritic": "purpose_dspy.testing.critics", "RawCritic": "purpose_dspy.testing.critics",
    "score_walk": "purpose_dspy.testing.critics",
    "PROPERTIES": "purpose_dspy.testing.properties", "PropertyFailed": "purpose_dspy.testing.properties",
    "Verdict": "purpose_dspy.testing.properties",
    "Step": "purpose_dspy.testing.walks", "Walk": "purpose_dspy.testing.walks", "WalkSource": "purpose_dspy.testing.walks",
    "CriticPropertySuite": "purpose_dspy.testing.suite",
    "lm_cost_settings": "purpose_dspy.testing.suite",
    "scripted_critic_lm": "purpose_dspy.testing.scripted",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'purpose_dspy.testing' has no attribute {name!r}")


__all__ = [
    "PROPERTIES", "CriticPropertySuite", "GuardedCritic", "PropertyFailed", "RawCritic", "Step", "Verdict", "Walk",
    "WalkSource", "lm_cost_settings", "score_walk", "scripted_critic_lm",
]
