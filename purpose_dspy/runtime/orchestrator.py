"""The online loop: actor -> environment -> purpose critic, one step at a time.

`start` opens a run, `steps` yields each `Transition` as it happens (callers can stream a table)
and `result` closes it; `run` is the three in a row and `run_iter` the first two. A step is named
methods: act, then the environment's step, then critique. The run ends with a typed `RunStopped`
(done, step limit, LM budget, a monitor's `LimitStop`) whose reason lands on the trajectory. Reward is given only when Φ
rises (`PurposeScore.reward`). With `RunConfig(score_phi=False)` the loop is actor -> environment only:
every step is unscored (an evaluation judges by the environment's success, not by Φ).
"""

from __future__ import annotations

import hashlib
import inspect
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dspy
from dspy.utils.exceptions import LMError

from purpose_dspy.environments.base import Environment
from purpose_dspy.errors import (
    BudgetExceeded,
    Finished,
    LMUnavailableError,
    RunStopped,
    StepLimitReached,
    UsageError,
)
from purpose_dspy.experience import Advice, Experience
from purpose_dspy.lm.compact_adapter import CompactJSONAdapter
from purpose_dspy.programs.agent import PurposeAgent
from purpose_dspy.runtime.config import RunConfig
from purpose_dspy.runtime.trace import traced_copy
from purpose_dspy.safeguards import CriticGuard, PhiStore
from purpose_dspy.safeguards.canonical import canonical_text
from purpose_dspy.text import one_line
from purpose_dspy.types import (
    Action,
    LMCall,
    MemoryReport,
    PurposeScore,
    Role,
    RunResult,
    State,
    Task,
    Trajectory,
    Transition,
)

if TYPE_CHECKING:
    from purpose_dspy.monitor import LimitGuard


@dataclass
class RunState:
    """Everything that changes during one episode (the config never does)."""

    trajectory: Trajectory
    state: State
    phi: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    lm_calls: list[LMCall] = field(default_factory=list)  # every call of the run, in order
    lms: dict[Role, Any] = field(default_factory=dict)  # run-private traced LM copies
    guard: CriticGuard | None = None  # the critic's safeguards, bound to this run's environment
    rng: random.Random = field(default_factory=random.Random)  # exploration, seeded per run
    memory: MemoryReport = field(default_factory=MemoryReport)  # what experience showed (filled as it goes)
    shown_cards: set[str] = field(default_factory=set)


class Orchestrator:
    """Runs a `PurposeAgent` in an environment with one LM per role."""

    def __init__(
        self,
        agent: PurposeAgent,
        lms: dict[Role, Any],
        config: RunConfig | None = None,
        adapter: Any = None,
        phi_store: PhiStore | None = None,
        experience: Experience | None = None,
        limit_guard: LimitGuard | None = None,
    ) -> None:
        missing = {"actor", "critic"} - set(lms)
        if missing:
            raise ValueError(f"Orchestrator needs an LM for roles {sorted(missing)}; got {sorted(lms)}")
        self.agent = agent
        self.lms = lms
        self.config = config or RunConfig()
        # JSON with schema-constrained decoding where the LM supports it (the embedded one does), in prompts
        # that say each thing once and keep the system message fixed (see lm/compact_adapter.py).
        self.adapter = adapter or CompactJSONAdapter()
        # Φ of canonical states; pass a directory-backed store to share it across runs and processes.
        self.phi_store = phi_store if phi_store is not None else PhiStore()
        # Memory + replay: advice before each actor call, learning after each run. None: a fresh agent every run.
        if experience is not None and not self.config.score_phi:
            raise UsageError("RunConfig(score_phi=False) cannot run with experience: online learning (memory cards, "
                             "replay Q-values) learns from Φ, so the critic must score every step; drop the experience "
                             "or keep score_phi=True")
        self.experience = experience
        # A monitor's limits (`Monitor.guard`): asked between steps and before env.step; records each finished task.
        self.limit_guard = limit_guard

    # -- the loop ---------------------------------------------------------------------------
    def run(self, env: Environment, task: Task, purpose: str | None = None) -> RunResult:
        run = self.start(env, task, purpose)
        for _ in self.steps(run, env):
            pass
        return self.result(run)

    def run_iter(self, env: Environment, task: Task, purpose: str | None = None) -> Iterator[Transition]:
        """The steps of `run` as they happen; the run is closed (and learned from) after the last one."""
        run = self.start(env, task, purpose)
        yield from self.steps(run, env)
        self.result(run)

    def start(self, env: Environment, task: Task, purpose: str | None = None) -> RunState:
        """Reset the environment and open the run's state (and its traced LM copies).

        `purpose` may contain `{env_purpose}` (a task set's template): the environment's goal text for this task.
        """
        state = env.reset(task)
        purpose = (purpose or "{env_purpose}").replace("{env_purpose}", env.purpose).strip() or env.purpose
        named = self.config.id_namespace  # a compile's: the same id on every backend
        ids = {"id": hashlib.sha256(f"{named}/{task.task_id}".encode()).hexdigest()[:12]} if named else {}
        run = RunState(trajectory=Trajectory(purpose=purpose, task=task, **ids), state=state)
        run.rng.seed(f"{self.config.seed}/{task.task_id}")
        run.lms = {role: traced_copy(lm, role, run.lm_calls) for role, lm in self.lms.items()}
        if self.experience is not None:  # volatile fields (counters) must not split one state in the replay
            self.experience.replay.declare_volatile(task.env_id, getattr(env, "volatile_patterns", ()))
        run.guard = CriticGuard(
            self.config.safeguards,
            self.phi_store,
            namespace=self.agent.critic.fingerprint(str(getattr(self.lms["critic"], "model", ""))),
            volatile=getattr(env, "volatile_patterns", ()),
        )
        return run

    def steps(self, run: RunState, env: Environment) -> Iterator[Transition]:
        """Step until a `RunStopped`; its reason and the env's verdict land on the trajectory."""
        try:
            while True:
                self._check_limits(run)
                transition = self.step(run, env)
                run.trajectory.steps.append(transition)
                yield transition
                self._count(run, transition)
        except RunStopped as stop:
            run.trajectory.stop_reason = stop.reason
        run.trajectory.success = run.state.success

    def result(self, run: RunState) -> RunResult:
        """Close the run; with experience attached, the trajectory is learned from before returning."""
        memory = None
        if self.experience is not None:
            learned = self.experience.learn(run.trajectory, shown_cards=run.shown_cards)
            memory = run.memory.model_copy(
                update={"cards_shown": learned.cards_shown, "steps_stored": learned.steps_stored,
                        "card_events": learned.card_events}
            )
        result = RunResult(
            trajectory=run.trajectory,
            seconds=time.perf_counter() - run.started,
            model_by_role={role: lm.model for role, lm in self.lms.items()},
            memory=memory,
            phi_scored=self.config.score_phi,
        )
        if self.limit_guard is not None:
            self.limit_guard.record(result)
        return result

    def _check_limits(self, run: RunState) -> None:
        if run.state.done:
            raise Finished()
        if len(run.trajectory.steps) >= self.config.max_steps:
            raise StepLimitReached()
        if self.config.max_lm_calls is not None and len(run.lm_calls) >= self.config.max_lm_calls:
            raise BudgetExceeded()
        if self.limit_guard is not None:
            self.limit_guard.check()  # the pause flag, the monitor's budgets, a halt

    def _count(self, run: RunState, t: Transition) -> None:
        """Tell the monitor's limits what the step spent and which safeguards flagged it (a streak halts)."""
        if self.limit_guard is not None:
            self.limit_guard.after_step(len(t.lm_calls), sum(c.tokens for c in t.lm_calls), t.score.flags,
                                        episode=run.trajectory.id)

    # -- one step ---------------------------------------------------------------------------
    def step(self, run: RunState, env: Environment) -> Transition:
        started, first_call = time.perf_counter(), len(run.lm_calls)
        before = run.state
        decision = self.act(run)
        if decision.action is None:
            after, score = before, PurposeScore.unscored(run.phi, f"actor failed: {decision.error}")
        else:
            if self.limit_guard is not None:
                self.limit_guard.before_step(decision.action)  # the deny-list: a refused action never runs
            after = env.step(decision.action)
            score = self.critique(run, before, decision.action, after)
        score = score.at_peak(run.trajectory.phi_peak)  # reward only above the run's highest Φ so far
        run.state, run.phi = after, score.phi_after
        return Transition(
            index=len(run.trajectory.steps),
            before=before,
            action=Action(text=decision.action, thought=decision.thought) if decision.action else None,
            after=after,
            score=score,
            progress=env.progress(),
            error=decision.error,
            lm_calls=run.lm_calls[first_call:],
            seconds=round(time.perf_counter() - started, 4),
        )

    def act(self, run: RunState) -> dspy.Prediction:
        """The actor's choice, informed by experience; or, with probability `explore`, an untried action.

        A state on the compiled path of this very task is shown that step as its only demo (an actor compiled with
        `follow_rules` takes it without an LM call); neither it nor a state where a rule of the compiled pool
        applies is explored."""
        history = self._history(run)
        advice = self._advise(run, history)
        remembered = self._remembered(run, history)
        if remembered and getattr(self.agent.actor, "follow_rules", 0):  # compiled to follow what it knows
            return dspy.Prediction(action=str(remembered[0].action), error=None,
                                   thought="rule: this very task's compiled path goes this way from here")
        # Our Actor leaves out pool demos of actions already taken from this very state; an actor of the user's
        # own whose forward has no `avoid` is called as before.
        takes_avoid = "avoid" in inspect.signature(type(self.agent.actor).forward).parameters
        extra = {"avoid": self._tried_here(run)} if takes_avoid else {}
        untried = advice.recall.untried if advice.recall else run.state.valid_actions
        if (self.config.explore and untried and not advice.knows_a_path and not remembered
                and not self._ruled(run, extra) and run.rng.random() < self.config.explore):
            run.memory.explored += 1
            return dspy.Prediction(action=run.rng.choice(untried), thought="exploring: never tried here", error=None)
        with self._role(run, "actor"):
            decision = self.agent.actor(
                purpose=run.trajectory.purpose, state=run.state, history=history,
                experience=advice.text, demos=remembered or advice.demos or None, **extra,
            )
        if advice.best is not None and decision.action == advice.best:
            run.memory.followed += 1
        return decision

    def _remembered(self, run: RunState, history: str) -> list[dspy.Example]:
        """The compiled step of this very task from this very state, as a one-demo list (else empty)."""
        actor = self.agent.actor
        paths = getattr(actor, "paths", None)
        step = paths.step(run.trajectory.task.task_id, run.state, run.guard.volatile) if paths and run.guard else None
        if step is None:
            return []
        return [actor.demo(run.trajectory.purpose, run.state, step.action, thought=paths.thought(step), history=history)]

    def _ruled(self, run: RunState, extra: dict) -> bool:
        """Whether the compiled actor's pool has a rule for this state (then the step is not explored)."""
        rule_for = getattr(self.agent.actor, "rule_for", None)
        if rule_for is None or "avoid" not in extra:
            return False
        return rule_for(run.state, extra["avoid"], run.trajectory.purpose)[0] is not None

    def _tried_here(self, run: RunState) -> tuple[str, ...]:
        """Actions already taken from this very state in this run (the agent is back: they led nowhere)."""
        volatile = run.guard.volatile if run.guard else ()
        here = canonical_text(run.state.observation, volatile)
        return tuple(dict.fromkeys(t.action.text for t in run.trajectory.steps
                                   if t.action and canonical_text(t.before.observation, volatile) == here))

    def _advise(self, run: RunState, history: str) -> Advice:
        if self.experience is None:
            return Advice()
        task = run.trajectory.task
        advice = self.experience.advise(
            run.trajectory.purpose, run.state, family=task.env_id, task_id=task.task_id, history=history
        )
        run.shown_cards.update(advice.cards)
        run.memory.recalls += bool(advice.recall and (advice.recall.encouraged or advice.recall.discouraged))
        run.memory.demo_steps += bool(advice.demos)
        return advice

    def critique(self, run: RunState, before: State, action: str, after: State) -> PurposeScore:
        """The critic's judgment through the safeguards (the LM is asked only if the Φ store cannot answer).

        `step` stamps it with the run's Φ peak, so a rise pays only where it beats every Φ of the run.
        With `score_phi` off: no critic call, no Φ store write, an unscored step (Φ carried over, delta 0)."""
        if not self.config.score_phi:
            return PurposeScore.unscored(run.phi, "not scored: actor-only run (RunConfig.score_phi is False)")

        def judge() -> PurposeScore:
            with self._role(run, "critic"):
                return self.agent.critic(
                    purpose=run.trajectory.purpose, before=before, action=action, after=after, phi_prev=run.phi
                ).score

        assert run.guard is not None, "start() binds the guard"
        return run.guard.score(
            judge,
            purpose=run.trajectory.purpose,
            before=before,
            after=after,
            phi_prev=run.phi if run.trajectory.steps else None,
            history=[t.score.delta for t in run.trajectory.steps],
        )

    def _history(self, run: RunState) -> str:
        return render_history(run.trajectory.steps, self.config.history_window, self.config.observation_chars)

    def _role(self, run: RunState, role: Role) -> _RoleScope:
        return _RoleScope(run.lms[role], role, self.adapter)


def render_history(steps: list[Transition], window: int, observation_chars: int) -> str:
    """The actor's `history` input: the last `window` steps as 'action -> what followed', oldest first."""
    lines = []
    for t in steps[-window:] if window else []:
        said = one_line(t.after.observation, observation_chars)
        lines.append(f"{t.action.text if t.action else '(no valid action)'} -> {said}")
    return "\n".join(lines)


class _RoleScope:
    """`dspy.context(lm=..., adapter=...)` for one role call; LM failures become `LMUnavailableError`."""

    def __init__(self, lm: Any, role: Role, adapter: Any) -> None:
        self.lm, self.role = lm, role
        self._ctx = dspy.context(lm=lm, adapter=adapter)

    def __enter__(self) -> None:
        self._ctx.__enter__()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self._ctx.__exit__(exc_type, exc, tb)
        if isinstance(exc, LMError):
            raise LMUnavailableError(f"the {self.role} LM ({self.lm.model}) failed: {str(exc).splitlines()[0]}") from exc
        return False


def run_task(
    purpose: str | None,
    env: Environment,
    *,
    task: Task,
    lms: dict[Role, Any],
    agent: PurposeAgent | None = None,
    max_steps: int = 20,
) -> RunResult:
    """Run one episode of `task` in `env` toward `purpose` (None: the environment's own goal)."""
    return Orchestrator(agent or PurposeAgent(), lms, RunConfig(max_steps=max_steps)).run(env, task, purpose)
