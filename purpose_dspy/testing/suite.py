"""`CriticPropertySuite`: subclass it in your own test file and every critic property is a pytest test.

    from purpose_dspy.testing import CriticPropertySuite

    class TestMyCritic(CriticPropertySuite):
        env = "twx:coin"             # or your own Environment (an instance or its class)
        lm = "openai/gpt-4o-mini"    # or a dspy.LM; `pytest --critic-lm ...` overrides it
        max_lm_calls = 60            # for the whole class, shared evenly by the properties

Each test draws real examples from `env` (hypothesis, the `lm_cost_settings` profile: few
examples, no deadline, failures kept in the example database and replayed first), asks the
critic, and fails with the shrunk counterexample: the step, and what the critic answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from purpose_dspy.programs.critic import PurposeCritic
from purpose_dspy.safeguards import SafeguardConfig
from purpose_dspy.testing.critics import GuardedCritic, RawCritic
from purpose_dspy.testing.plugin import build_critic_lm, critic_options
from purpose_dspy.testing.properties import PROPERTIES, Property
from purpose_dspy.testing.strategies import INSTRUCTIONS, injected_steps, rewritten_steps, transitions, walks
from purpose_dspy.testing.walks import Walk, WalkSource

logger = logging.getLogger(__name__)


def lm_cost_settings(max_examples: int = 3, database: ExampleDatabase | None = None) -> settings:
    """Hypothesis settings for tests whose every example costs LM calls: few examples, no deadline (a call
    takes seconds), no explain phase (it re-runs examples), the slowness health checks off, and failures
    saved to `database` (default `.hypothesis/examples`) so the next run replays them first."""
    return settings(
        max_examples=max_examples, deadline=None,
        database=database or DirectoryBasedExampleDatabase(".hypothesis/examples"),
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink), report_multiple_bugs=False,
        suppress_health_check=(HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                               HealthCheck.large_base_example),
    )


@dataclass(repr=False)
class SuiteCase:
    """One suite class, ready to run: the critic under test, where examples come from, and the LM-call budget."""

    critic: RawCritic
    source: WalkSource
    settings: settings
    max_examples: int
    allowance: int  # LM calls per property test
    shrink_allowance: int  # further LM calls to shrink a failure of that property
    label: str  # the suite class, so two suites keep their failures apart in the example database
    max_steps: int = 3
    seeds: int = 20
    injections: tuple[str, ...] = INSTRUCTIONS
    selected: tuple[str, ...] | None = None
    spent: dict[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"SuiteCase({self.critic.name}; examples from {self.source.env!r}, "
                f"{self.allowance} LM calls per property)")

    def run(self, name: str) -> None:
        """Check property `name` on up to `max_examples` drawn examples; a failure raises with the shrunk one."""
        __tracebackhide__ = True
        prop = PROPERTIES[name]
        if self.selected is not None and name not in self.selected:
            pytest.skip(f"{name} is not in this suite's `properties`")
        asks = prop.asks * (self.max_steps if prop.draws == "walk" else 1)
        examples = min(self.max_examples, self.allowance // asks)
        if examples < 1:
            pytest.skip(f"max_lm_calls leaves {self.allowance} LM calls for {name}; one example needs {asks}")
        start, seen, unasked = self.critic.calls, {}, [0]

        def check(*args: Any) -> None:
            # One verdict per example: a replay (shrinking, the final report) gets the recorded one without
            # asking again, so a model that answers differently the second time cannot make the run flaky.
            # Past the allowance (and, once an example failed, `shrink_allowance` more to shrink it) new
            # examples pass unasked: that ends the search, and the smallest failure found so far is reported.
            __tracebackhide__ = True
            key = tuple(_key(a) for a in args)
            if key not in seen:
                failed = any(not v.holds for v in seen.values())
                if self.critic.calls - start + asks > self.allowance + (self.shrink_allowance if failed else 0):
                    unasked[0] += 1
                    return
                seen[key] = prop.check(self.critic, *args)
            seen[key].check()

        body, strategies = self._test(prop, check)
        body.__name__ = body.__qualname__ = name  # hypothesis names the falsifying example by it
        body._hypothesis_internal_add_digest = f"{self.label}::{name}".encode()  # type: ignore[attr-defined]
        try:
            settings(self.settings, max_examples=examples)(given(**strategies)(body))()
        finally:
            self.spent[name] = self.critic.calls - start
            logger.info("%s: %d LM calls on %d examples, %d more past the budget (%s)", name, self.spent[name],
                        len(seen), unasked[0], self.critic.name)

    def _test(self, prop: Property, check: Callable[..., None]) -> tuple[Callable[..., None], dict[str, Any]]:
        """The hypothesis test body for what `prop` draws, and its strategies."""
        steps = transitions(self.source, seeds=self.seeds, max_steps=self.max_steps)
        if prop.draws == "walk":
            def walk_body(walk: Any) -> None:
                check(walk)

            return walk_body, {"walk": walks(self.source, seeds=self.seeds, max_steps=self.max_steps, min_steps=1)}
        if prop.draws == "rewrite":
            def rewrite_body(step: Any, data: Any) -> None:
                check(step, data.draw(rewritten_steps(step, self.source.volatile), label="rewritten"))

            return rewrite_body, {"step": steps, "data": st.data()}
        if prop.draws == "injected":
            def injected_body(step: Any) -> None:
                check(step)

            return injected_body, {"step": steps.flatmap(lambda s: injected_steps(s, self.injections))}

        def step_body(step: Any) -> None:
            check(step)

        return step_body, {"step": steps}


def _key(example: Any) -> tuple[Any, ...]:
    """What identifies a drawn example (a step or a walk) in full, for the per-example verdicts."""
    if isinstance(example, Walk):
        return (example.task.task_id, example.actions)
    return (example.purpose, example.before.observation, example.action, example.after.observation)


def _instance(value: Any, default: Callable[[], Any]) -> Any:
    if value is None:
        return default()
    return value() if isinstance(value, type) else value


def _case(cls: type, config: pytest.Config) -> SuiteCase:
    """The suite class's settings, with the command line's flags (`--critic-lm` ...) winning."""
    options = critic_options(config)
    if options.lm is None and cls.lm is not None and not isinstance(cls.lm, str):
        lm = cls.lm  # a ready LM object (a dspy.LM, a scripted or dummy LM)
    else:
        lm = build_critic_lm(options.lm or cls.lm, options.api_base or cls.api_base)
    source = WalkSource(options.env or cls.env, cls.split, cls.params)
    module = _instance(cls.critic, PurposeCritic)
    critic = (RawCritic(module, lm) if cls.safeguards is None
              else GuardedCritic(module, lm, cls.safeguards, volatile=source.volatile))
    selected = tuple(cls.properties) if cls.properties is not None else None
    unknown = set(selected or ()) - set(PROPERTIES)
    if unknown:
        raise pytest.UsageError(f"{cls.__name__}.properties names {sorted(unknown)}; known: {', '.join(PROPERTIES)}")
    database = DirectoryBasedExampleDatabase(Path(config.rootpath) / ".hypothesis" / "examples")
    return SuiteCase(
        critic=critic, source=source, settings=lm_cost_settings(database=database),
        max_examples=options.max_examples or cls.max_examples,
        allowance=cls.max_lm_calls // len(selected or PROPERTIES), shrink_allowance=cls.shrink_lm_calls,
        label=f"{cls.__module__}.{cls.__qualname__}",
        max_steps=cls.max_steps, seeds=cls.seeds, injections=tuple(cls.injections), selected=selected,
    )


class CriticPropertySuite:
    """Subclass this (as `Test...`) and set what to check; every property of
    `purpose_dspy.testing.properties` becomes a test. Command-line flags win over these attributes."""

    critic: Any = None  # a PurposeCritic-like module (an instance or its class); None: PurposeCritic()
    lm: Any = None  # a dspy.LM, or a model string ('local/smollm2-135m', 'openai/...'); None: the embedded model
    api_base: str | None = None  # an OpenAI-compatible server for a model string (--critic-api-base)
    env: Any = "treasure-maze"  # an environment id, an Environment or its class (--critic-env)
    safeguards: SafeguardConfig | None = SafeguardConfig()  # None: check the critic alone, without the guard
    max_lm_calls: int = 60  # for the whole class; each property gets an equal share
    shrink_lm_calls: int = 20  # more, for each failing property, to shrink its counterexample
    max_examples: int = 3  # per property (--critic-max-examples)
    split: str = "dev"
    seeds: int = 20  # tasks 0..seeds-1 of `split`
    max_steps: int = 3  # the longest walk drawn
    params: dict[str, Any] | None = None  # task parameters (e.g. {"size": 4} for treasure-maze)
    injections: tuple[str, ...] = INSTRUCTIONS  # what `injected_text_never_raises_phi` splices in
    properties: tuple[str, ...] | None = None  # a subset of the property names; None: all

    @pytest.fixture(scope="class")
    @classmethod
    def critic_case(cls, request: pytest.FixtureRequest) -> Iterator[SuiteCase]:
        """This class's critic, examples and budget, built once for all its tests."""
        case = _case(cls, request.config)
        yield case
        case.source.close()

    def test_identical_states_identical_phi(self, critic_case: SuiteCase) -> None:
        critic_case.run("identical_states_identical_phi")

    def test_phi_invariant_under_rewrites(self, critic_case: SuiteCase) -> None:
        critic_case.run("phi_invariant_under_rewrites")

    def test_outputs_in_range(self, critic_case: SuiteCase) -> None:
        critic_case.run("outputs_in_range")

    def test_reward_iff_phi_rises(self, critic_case: SuiteCase) -> None:
        critic_case.run("reward_iff_phi_rises")

    def test_no_evidence_no_reward(self, critic_case: SuiteCase) -> None:
        critic_case.run("no_evidence_no_reward")

    def test_no_change_no_reward(self, critic_case: SuiteCase) -> None:
        critic_case.run("no_change_no_reward")

    def test_low_confidence_counts_zero(self, critic_case: SuiteCase) -> None:
        critic_case.run("low_confidence_counts_zero")

    def test_injected_text_never_raises_phi(self, critic_case: SuiteCase) -> None:
        critic_case.run("injected_text_never_raises_phi")

    def test_single_step_is_bounded(self, critic_case: SuiteCase) -> None:
        critic_case.run("single_step_is_bounded")

    def test_walk_phi_is_bounded(self, critic_case: SuiteCase) -> None:
        critic_case.run("walk_phi_is_bounded")

    def test_walk_reward_is_bounded_by_phi_max(self, critic_case: SuiteCase) -> None:
        critic_case.run("walk_reward_is_bounded_by_phi_max")
