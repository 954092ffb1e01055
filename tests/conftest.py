"""Shared fixtures. Every on-disk store points into a temp dir; no test touches the network."""

from __future__ import annotations

import os
import tempfile

# Before DSPy is imported anywhere: no model-metadata fetch, and DSPy's disk cache in a temp dir.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("DSPY_CACHEDIR", tempfile.mkdtemp(prefix="purpose-dspy-test-cache-"))

import dspy  # noqa: E402
import pytest  # noqa: E402
from dspy.utils.dummies import DummyLM  # noqa: E402


def scripted_lms(actor: list[dict], critic: list[dict]) -> dict[str, DummyLM]:
    """DummyLMs that answer the actor and the critic from scripts, in JSON like the real adapter."""
    return {
        "actor": DummyLM(actor, adapter=dspy.JSONAdapter()),
        "critic": DummyLM(critic, adapter=dspy.JSONAdapter()),
    }


def judgment(before: float, after: float, evidence: str = "You are at row", confidence: float = 0.9) -> dict:
    return {"evidence": evidence, "reasoning": "test", "phi_before": before, "phi_after": after,
            "confidence": confidence}


@pytest.fixture(scope="session")
def local_lms():
    """The real embedded model for actor and critic, cache off (a consistency test must not test the cache)."""
    from purpose_dspy.lm import build_role_lms, load_lm_config

    return build_role_lms(load_lm_config(model="local/smollm2-135m", cache=False))
