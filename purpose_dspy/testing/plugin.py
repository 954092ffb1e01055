"""The pytest plugin (entry point `pytest11`): `--critic-lm`, `--critic-api-base`, `--critic-env`,
`--critic-max-examples`, and fixtures for a ready critic.

    pytest --critic-lm openai/my-model --critic-api-base http://127.0.0.1:8080/v1 tests/test_my_critic.py

Fixtures: `critic_lm` (the LM the flags name, response cache off; the embedded model by default),
`critic_env` (the environment `--critic-env` names, closed at the end of the session),
`raw_critic` and `guarded_critic` (a `PurposeCritic` on `critic_lm`, alone or behind every
safeguard, ready for the functions of `purpose_dspy.testing.properties`).
Loading the plugin loads no model and opens no environment: the fixtures do, when a test asks for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

DEFAULT_ENV = "treasure-maze"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("purpose-dspy critic", "property tests of a purpose critic (purpose_dspy.testing)")
    group.addoption("--critic-lm", default=None, metavar="MODEL",
                    help="LM of the critic under test: local/smollm2-135m (the default), local/gemma3-270m or "
                         "provider/model such as openai/gpt-4o-mini; overrides a suite's `lm`.")
    group.addoption("--critic-api-base", default=None, metavar="URL",
                    help="Base URL of an OpenAI-compatible server for --critic-lm, e.g. http://127.0.0.1:8080/v1.")
    group.addoption("--critic-env", default=None, metavar="ENV",
                    help=f"Environment the examples come from (default {DEFAULT_ENV}); overrides a suite's `env`.")
    group.addoption("--critic-max-examples", default=None, type=int, metavar="N",
                    help="Hypothesis examples per critic property (default 3); overrides a suite's `max_examples`.")


@dataclass(frozen=True)
class CriticOptions:
    """What the command line says about the critic under test (None: not given)."""

    lm: str | None = None
    api_base: str | None = None
    env: str | None = None
    max_examples: int | None = None


def critic_options(config: pytest.Config) -> CriticOptions:
    """The plugin's flags (all None when the plugin is not loaded, e.g. `-p no:purpose_dspy`)."""
    names = ("critic_lm", "critic_api_base", "critic_env", "critic_max_examples")
    return CriticOptions(*(config.getoption(name, default=None) for name in names))


def build_critic_lm(model: str | None = None, api_base: str | None = None) -> Any:
    """The critic's `dspy.LM` for `model` (None: the embedded default) at `api_base`, its response cache off
    (a consistency test must not test the cache)."""
    from purpose_dspy.lm import build_lm, load_lm_config

    return build_lm(load_lm_config(model=model, api_base=api_base, cache=False).for_role("critic"), role="critic")


@pytest.fixture(scope="session")
def critic_lm(pytestconfig: pytest.Config) -> Any:
    """The critic's LM from `--critic-lm` / `--critic-api-base` (default: the embedded model), cache off."""
    options = critic_options(pytestconfig)
    return build_critic_lm(options.lm, options.api_base)


@pytest.fixture(scope="session")
def critic_env(pytestconfig: pytest.Config) -> Iterator[Any]:
    """The environment `--critic-env` names (default treasure-maze)."""
    from purpose_dspy.environments import make_env

    env = make_env(critic_options(pytestconfig).env or DEFAULT_ENV)
    yield env
    env.close()


@pytest.fixture
def raw_critic(critic_lm: Any) -> Any:
    """A `PurposeCritic` on `critic_lm`, judged alone."""
    from purpose_dspy.testing.critics import RawCritic

    return RawCritic(lm=critic_lm)


@pytest.fixture
def guarded_critic(critic_lm: Any, critic_env: Any) -> Any:
    """A `PurposeCritic` on `critic_lm` behind every safeguard, with `critic_env`'s volatile fields."""
    from purpose_dspy.testing.critics import GuardedCritic

    return GuardedCritic(lm=critic_lm, volatile=getattr(critic_env, "volatile_patterns", ()))
