"""DSPy's own optimizers against PurposeTeleprompter: one task set, same LM, seeds and LM-call budget.

Every arm compiles a `PurposeAgent` on the first `--train` train seeds (PurposeTeleprompter and GEPA
also use the first `--dev` dev seeds as their valset), then runs it on each of `--splits` (test: the
first `--test` test seeds, held out; train: the train seeds run again), temperature 0, no exploration,
a fresh Φ store per arm. A PurposeTeleprompter candidate its gate refused is evaluated too, as its own
"(ungated candidate)" row. Per split, every arm gets an exact paired sign test (seeds solved by one and
not the other) against zero-shot and against the best DSPy arm. What each arm's actor sees per call:

- zero-shot             `PurposeAgent()` as is: no demos (critic: none).
- labeled-few-shot      `dspy.LabeledFewShot(k)` on step examples from the environment's GOLD paths
                        (train seeds, replayed, detours cut; treasure-maze: a BFS shortest path; a task
                        set with neither skips the arm with a note). It fixes k demos for the
                        `act` predictor, and every call shows all k (`demos_per_call = k`, DSPy's
                        behaviour); only their order differs: our Actor puts the most similar first.
                        Critic: none. 0 compile LM calls.
- bootstrap-few-shot    `dspy.BootstrapFewShot(metric=task success, max_bootstrapped_demos=k,
                        max_labeled_demos=0, max_rounds=1)` on an episode-level program whose
                        forward(task) runs one whole episode with our Orchestrator. DSPy traces every
                        `actor.act` and `critic.judge` call of the episode; from each successful episode
                        it keeps ONE trace per predictor (a random earlier call or the last one) and
                        stops after k successful episodes. Actor and critic then show all their (<= k)
                        demos on every call. Labeled demos are off: an episode-level example has no
                        per-step labels. One round: our Orchestrator pins each role's LM, so DSPy's
                        round > 0 (temperature 1.0 on `settings.lm`) would not reach the calls.
                        Budget: each episode may spend what is left of `--budget` (it can overshoot by
                        less than one step's calls, as PurposeTeleprompter's rollouts can); once it is
                        spent, the remaining train examples return success=False without an LM call.
- knn-few-shot          `dspy.KNNFewShot(k, gold step examples, dspy.Embedder(<local hashed words +
                        word pairs>), max_bootstrapped_demos=0, max_labeled_demos=k)` on the `act`
                        predictor: each call retrieves the k nearest gold steps (on all `Act` inputs)
                        and shows them, in BootstrapFewShot's sampled order. Restricted on purpose:
                        KNNFewShot runs a BootstrapFewShot on every forward call; with bootstrapping on
                        that is up to k extra LM calls per actor call at TEST time, outside any compile
                        budget, so here it only retrieves labeled demos. Critic: none. 0 compile calls.
- gepa                  `dspy.GEPA(metric with feedback, reflection_lm=<the actor's LM>)` on an
                        episode-level program whose only predictor is `actor.act`: GEPA evolves its
                        instructions (no demos) by reflecting on actor-only rollouts (no critic call).
                        Score: 1 for success, else the environment's final progress, else 0; feedback:
                        a few lines from the trajectory (outcome and stop reason, the actions, returns
                        to an earlier state, repeated actions, steps without a valid action). trainset:
                        train seeds; valset: dev seeds. Budget: max_metric_calls = budget // max_steps
                        (rollouts at one call per step); one LMBudget is charged with every rollout and
                        reflection call: an episode gets what is left minus one step's worst case
                        (so it cannot overshoot), the proposer is not asked without a call left, and a
                        stop condition ends GEPA before an iteration the rest cannot cover at one call
                        per step (2 minibatches + the valset + 1 proposal). Merge is off (one component).
                        Critic: none (zero-shot). SIMBA is not an arm: it sets `predictor.lm` on every
                        predictor (which outranks the traced LM copies our Orchestrator puts in context,
                        so its calls would escape the count) and has no LM-call or rollout cap to map
                        the budget to (its cost is bsize x num_candidates x max_steps episodes).
- purpose-teleprompter  `PurposeTeleprompter(lms, CompileConfig(max_lm_calls=budget, demos_per_call=k,
                        distill=False))`: the k nearest of its pool of steps from its own successful
                        rollouts; critic: its 2 nearest meta-judge-kept calibration demos. Distillation
                        is off because memory cards are not used by this evaluation; its budget includes
                        the before/after valset evaluations (measurement, not learning; see `phases`).

The two gold arms use oracle labels the other arms never see. The critic runs in the arms' compile
episodes (about one call per step; not in GEPA's) and in the evaluations unless `--actor-only`, but
only the actor decides what happens, so success differences come from the actor's demos (GEPA: its
instructions). LM calls count every call a trace records; tokens are prompt +
completion; DSPy's response cache is off unless `--cache` (so seconds are real). The budget caps
each compile; an arm may spend less (`compile calls`). `--rule-lm` swaps in tests/rule_lm.py's
rule-following engine: a smoke test of the plumbing, NOT a measurement.

    python benchmarks/optimizers.py --taskset tasksets/twx-coin.toml --train 8 --dev 4 --test 10 --budget 360 --out optimizers.json
    python benchmarks/optimizers.py --taskset tasksets/treasure-maze.toml --train 3 --dev 2 --test 3 --budget 60 --rule-lm --json
    python benchmarks/optimizers.py --taskset tasksets/treasure-maze.toml --train 3 --dev 2 --test 3 --budget 120 --rule-lm --arms zero-shot,gepa --splits test,train --actor-only
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import hashlib
import importlib.util
import io
import json
import os
import re
import shlex
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402
import numpy as np  # noqa: E402
from dspy.teleprompt.gepa.instruction_proposal import InstructionProposer  # noqa: E402

from purpose_dspy import make_env  # noqa: E402
from purpose_dspy.jobs import COMPILE_ROLES, evaluate_program  # noqa: E402
from purpose_dspy.runtime.config import RunConfig  # noqa: E402
from purpose_dspy.environments.treasure_maze import MOVES, TreasureMaze  # noqa: E402
from purpose_dspy.lm import build_role_lms, load_lm_config  # noqa: E402
from purpose_dspy.runtime.orchestrator import Orchestrator, render_history  # noqa: E402
from purpose_dspy.programs import Actor, PurposeAgent  # noqa: E402
from purpose_dspy.runtime.budget import LMBudget  # noqa: E402
from purpose_dspy.metrics import sign_test  # noqa: E402
from purpose_dspy.runtime.trace import traced_copy  # noqa: E402
from purpose_dspy.safeguards import PhiStore  # noqa: E402
from purpose_dspy.safeguards.canonical import canonical_text  # noqa: E402
from purpose_dspy.signatures.act import Act  # noqa: E402
from purpose_dspy.tasksets import TaskSet, load_taskset  # noqa: E402
from purpose_dspy.text import one_line  # noqa: E402
from purpose_dspy.teleprompt import CompileConfig, PurposeTeleprompter, loop_erased, task_examples  # noqa: E402
from purpose_dspy.types import Action, PurposeScore, RunResult, Task, Trajectory, Transition  # noqa: E402

ARMS = ("zero-shot", "labeled-few-shot", "bootstrap-few-shot", "knn-few-shot", "gepa", "purpose-teleprompter")


class Skipped(Exception):
    """An arm cannot run on this task set (the reason goes into the report)."""


# -- gold step examples (labeled-few-shot, knn-few-shot) -------------------------------------------
def gold_path(env: Any) -> list[str]:
    """The environment's gold actions for the task just reset; treasure-maze: a BFS shortest path."""
    if hasattr(env, "gold_actions"):
        return env.gold_actions()
    if isinstance(env, TreasureMaze):
        return maze_shortest_path(env)
    raise Skipped(f"{env.env_id} has no gold paths (and no shortest-path helper here)")


def maze_shortest_path(maze: TreasureMaze) -> list[str]:
    """Moves from the start to the treasure (benchmark-only: reads the maze's layout)."""
    start, parent = maze._pos, {maze._pos: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == maze._treasure:
            break
        for move, (dr, dc) in MOVES.items():
            nxt = (cell[0] + dr, cell[1] + dc)
            if nxt not in parent and maze._open(nxt):
                parent[nxt] = (cell, move)
                queue.append(nxt)
    path, cell = [], maze._treasure
    while parent[cell] is not None:
        cell, move = parent[cell]
        path.append(move)
    return path[::-1]


def gold_examples(taskset: TaskSet, tasks: list[Task]) -> tuple[list[dspy.Example], dict[str, int]]:
    """One `Act` example per gold step, replayed in the environment so each has its real state and history.

    Gold actions the actor is never offered (TextWorldExpress's 'look around') are taken but make no
    demo. Detours back to an earlier state are cut out (`loop_erased`, as PurposeTeleprompter does
    with its own successes): TextWorldExpress coin's gold path sometimes wanders west and east again.
    """
    config, examples = RunConfig(), []
    counts = {"tasks": len(tasks), "solved_by_gold": 0, "off_list_actions": 0, "detour_steps_cut": 0}
    env = make_env(taskset.env)
    try:
        for task in tasks:
            state = env.reset(task)
            trajectory = Trajectory(purpose=taskset.purpose_for(env.purpose), task=task)
            for action in gold_path(env):
                after = env.step(action)
                if action not in state.valid_actions:
                    counts["off_list_actions"] += 1
                else:
                    trajectory.steps.append(Transition(
                        index=len(trajectory.steps), before=state, action=Action(text=action), after=after,
                        score=PurposeScore.unscored(0.0, "gold replay")))
                state = after
            if not state.success:  # only paths that really solve the task become demos
                continue
            counts["solved_by_gold"] += 1
            path = loop_erased(trajectory)
            counts["detour_steps_cut"] += len(trajectory.steps) - len(path)
            for i, step in enumerate(path):
                examples.append(Actor.demo(
                    trajectory.purpose, step.before, step.action.text,
                    thought=f"'{step.action.text}' is the next step of a known solution from this state.",
                    history=render_history(path[:i], config.history_window, config.observation_chars),
                ))
    finally:
        env.close()
    counts["examples"] = len(examples)
    return examples, counts


# -- the actor's `act` as a module DSPy can compile ------------------------------------------------
# Actor passes `signature` (action constrained to the valid ones), `config` (the retry's temperature)
# and `demos` to its predictor. KNNFewShot embeds every keyword it is called with, so these travel
# beside the call instead of through it.
_CALL_OPTIONS: contextvars.ContextVar[dict] = contextvars.ContextVar("call_options", default={})


class ActStep(dspy.Module):
    """The actor's `act` predictor alone: what LabeledFewShot and KNNFewShot compile."""

    def __init__(self) -> None:
        super().__init__()
        self.act = dspy.Predict(Act)

    def forward(self, **inputs: Any) -> dspy.Prediction:
        return self.act(**inputs, **_CALL_OPTIONS.get())


class KNNAct:
    """Stands in for `actor.act`: every call goes through the KNNFewShot-compiled `ActStep`.

    It has no pool of its own (`demos` is empty, so the Actor adds none); the retrieved demos are the
    call's only demos. DSPy prints a line and draws a progress bar per call; both are swallowed.
    """

    signature = Act
    demos: list = []

    def __init__(self, program: dspy.Module) -> None:
        self.program = program

    def __call__(self, *, signature: Any = Act, config: dict | None = None, demos: list | None = None, **inputs: Any):
        token = _CALL_OPTIONS.set({"signature": signature, "config": config or {}})
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                return self.program(**inputs)
        finally:
            _CALL_OPTIONS.reset(token)


def hashed_embedding(texts: list[str], dim: int = 1024) -> np.ndarray:
    """Local, deterministic text vectors: words and adjacent word pairs hashed into `dim` counts, L2-normalised."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        words = re.findall(r"[^\W_]+", text.lower())
        for feature in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
            out[row, int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little") % dim] += 1.0
        norm = np.linalg.norm(out[row])
        if norm:
            out[row] /= norm
    return out


# -- one episode as a DSPy program (bootstrap-few-shot, gepa) --------------------------------------
class EpisodeRunner:
    """What an episode needs and DSPy must not copy: the LMs, one environment (a JVM for
    TextWorldExpress), the Φ store and the budget. Teleprompters deep-copy programs; this is shared.

    `score_phi=False`: actor-only episodes (no critic call). `step_calls`: the most LM calls one step can
    make; an episode is given `remaining - (step_calls - 1)` calls, so its last step cannot overshoot
    (1: it may, by less than one step's calls)."""

    def __init__(self, taskset: TaskSet, lms: dict, budget: LMBudget, *, score_phi: bool = True,
                 step_calls: int = 1) -> None:
        self.taskset, self.lms, self.budget = taskset, lms, budget
        self.score_phi, self.step_calls = score_phi, step_calls
        self.env, self.phi_store, self.results, self.not_run = None, PhiStore(), [], 0

    def __deepcopy__(self, memo: dict) -> EpisodeRunner:
        return self

    def run(self, agent: PurposeAgent, task: Task, purpose: str) -> RunResult | None:
        remaining = self.budget.remaining
        if remaining is not None and remaining < self.step_calls:
            self.budget.ran_out = True
            self.not_run += 1
            return None
        self.env = self.env or make_env(task.env_id)
        calls = None if remaining is None else remaining - (self.step_calls - 1)
        config = RunConfig(max_steps=self.taskset.max_steps, max_lm_calls=calls, score_phi=self.score_phi)
        result = Orchestrator(agent, self.lms, config, phi_store=self.phi_store).run(self.env, task, purpose)
        self.budget.charge(len(result.trajectory.lm_calls))
        self.budget.ran_out |= result.trajectory.stop_reason == "lm_budget"
        self.results.append(result)
        return result

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
        self.phi_store.close()


class Episode(dspy.Module):
    """forward(task, purpose) runs one whole episode; the agent's predictor calls land in DSPy's trace."""

    def __init__(self, runner: EpisodeRunner) -> None:
        super().__init__()
        self.agent = PurposeAgent()
        self.runner = runner

    def forward(self, task: Task, purpose: str) -> dspy.Prediction:
        result = self.runner.run(self.agent, task, purpose)
        return dspy.Prediction(success=bool(result and result.trajectory.success), ran=result is not None)


# -- GEPA: the actor's instructions evolved by reflection on whole episodes -------------------------
class GEPAEpisode(dspy.Module):
    """forward(task, purpose) runs one actor-only episode and returns GEPA's score and feedback for it.

    Only the actor is a sub-module, so GEPA's one component is `actor.act`'s instructions: the rollouts
    run without the critic (`score_phi=False`), so a critic predictor would never appear in a trace."""

    def __init__(self, runner: EpisodeRunner) -> None:
        super().__init__()
        self.actor = Actor()
        self.runner = runner

    def forward(self, task: Task, purpose: str) -> dspy.Prediction:
        result = self.runner.run(PurposeAgent(actor=self.actor), task, purpose)
        score, feedback = episode_feedback(result, tuple(getattr(self.runner.env, "volatile_patterns", ())))
        return dspy.Prediction(success=bool(result and result.trajectory.success), score=score, feedback=feedback)


def gepa_metric(gold: dspy.Example, pred: dspy.Prediction, trace: Any = None, pred_name: str | None = None,
                pred_trace: Any = None) -> dspy.Prediction:
    """GEPA's metric with feedback: the episode's score and the facts of its trajectory (both from forward)."""
    return dspy.Prediction(score=pred.score, feedback=pred.feedback)


_STOPPED = {"done": "the episode ended", "max_steps": "the step limit", "lm_budget": "the LM-call budget"}


def episode_feedback(result: RunResult | None, volatile: tuple[str, ...] = ()) -> tuple[float, str]:
    """Score (1 for success, else the environment's final progress, else 0) and short factual feedback:
    outcome, the actions, loops (an earlier state reached again, the same action from the same state) and
    steps without a valid action."""
    if result is None:
        return 0.0, "Not run: the compile's LM-call budget was spent."
    traj, steps = result.trajectory, result.trajectory.steps
    progress = steps[-1].progress if steps else None
    score = 1.0 if traj.success else float(progress or 0.0)
    if traj.success:
        lines = [f"Solved in {len(steps)} steps."]
    else:
        lines = [f"Not solved: stopped by {_STOPPED.get(traj.stop_reason, traj.stop_reason)} after {len(steps)} steps"
                 + (f", progress {progress:.0%}." if progress is not None else ".")]
    actions = [s.action.text if s.action else "(no valid action)" for s in steps]
    lines.append("Actions: " + ("... " if len(actions) > 12 else "") + ", ".join(actions[-12:]) + ".")
    seen = {canonical_text(steps[0].before.observation, volatile)} if steps else set()
    revisits, tried = 0, Counter()
    for s in (s for s in steps if s.action):
        tried[(canonical_text(s.before.observation, volatile), s.action.text)] += 1
        after = canonical_text(s.after.observation, volatile)
        revisits += after in seen
        seen.add(after)
    repeats = [(n - 1, action) for (_, action), n in tried.items() if n > 1]
    if revisits:
        lines.append(f"Came back to an earlier state {_times(revisits)} (a loop).")
    if repeats:
        lines.append(f"Took the same action from the same state again {_times(sum(n for n, _ in repeats))} "
                     f"(e.g. '{max(repeats)[1]}').")
    failed = [s.error for s in steps if s.error]
    if failed:
        lines.append(f"No valid action at {_times(len(failed), 'step')} (first: {one_line(failed[0], 80)}).")
    return score, " ".join(lines)


def _times(n: int, unit: str = "time") -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


class BudgetedProposer(InstructionProposer):
    """GEPA's built-in proposer, asked only while the budget has a call left per component (JSONAdapter makes
    one call per component, no fallback); the calls the traced reflection LM recorded are charged at once."""

    def __init__(self, budget: LMBudget, calls: list) -> None:
        super().__init__()
        self.budget, self.calls = budget, calls

    def __call__(self, candidate: dict, reflective_dataset: Any, components_to_update: list[str]) -> dict[str, str]:
        if not self.budget.allows(len(components_to_update)):
            return {}  # GEPA skips a proposal with no new text, and BudgetStopper ends the run
        before = len(self.calls)
        try:
            return super().__call__(candidate, reflective_dataset, components_to_update)
        finally:
            self.budget.charge(len(self.calls) - before)


class BudgetStopper:
    """GEPA stop condition (checked between iterations): stop when the budget cannot cover the next iteration
    at one LM call per step (a minibatch for the parent and for the child, a valset evaluation, a proposal)."""

    def __init__(self, budget: LMBudget, reserve: int) -> None:
        self.budget, self.reserve, self.fired = budget, reserve, False

    def __call__(self, gepa_state: Any) -> bool:
        remaining = self.budget.remaining
        self.fired = remaining is not None and remaining < self.reserve
        return self.fired


# -- the arms: each returns (program, compile facts) -----------------------------------------------
def zero_shot(b: Bench) -> tuple[PurposeAgent, dict]:
    return PurposeAgent(), {"actor_sees": "no demos", "critic_sees": "no demos"}


def labeled_few_shot(b: Bench) -> tuple[PurposeAgent, dict]:
    examples, counts = gold_examples(b.taskset, b.train)
    if not examples:
        raise Skipped("no gold step examples to label with")
    step = dspy.LabeledFewShot(k=b.args.k).compile(ActStep(), trainset=examples)
    program = PurposeAgent()
    program.actor.act.demos = list(step.act.demos)
    program.actor.demos_per_call = len(step.act.demos)  # all k fixed demos on every call, as in DSPy
    return program, {"gold": counts, "actor_demos": len(step.act.demos),
                     "actor_sees": f"all {len(step.act.demos)} fixed gold demos (most similar first)",
                     "critic_sees": "no demos"}


def bootstrap_few_shot(b: Bench) -> tuple[PurposeAgent, dict]:
    budget = LMBudget(b.args.budget)
    runner = EpisodeRunner(b.taskset, b.lms, budget)
    optimizer = dspy.BootstrapFewShot(metric=lambda example, pred, trace=None: pred.success,
                                      max_bootstrapped_demos=b.args.k, max_labeled_demos=0, max_rounds=1)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # DSPy prints its summary; keep stdout for --json
            compiled = optimizer.compile(Episode(runner), trainset=b.examples(b.train))
    finally:
        runner.close()
    program = compiled.agent
    program.actor.demos_per_call = len(program.actor.act.demos)  # DSPy shows every demo it kept
    program.critic.demos_per_call = len(program.critic.judge.demos)
    calls = [c for r in runner.results for c in r.trajectory.lm_calls]
    return program, {
        "lm_calls": len(calls), "tokens": sum(c.tokens for c in calls),
        "episodes": len(runner.results), "successes": sum(r.trajectory.success for r in runner.results),
        "budget_exhausted": budget.ran_out,
        "actor_demos": len(program.actor.act.demos), "critic_demos": len(program.critic.judge.demos),
        "actor_sees": _shown(len(program.actor.act.demos),
                             "all {n} bootstrapped demos (one step per successful episode)"),
        "critic_sees": _shown(len(program.critic.judge.demos), "all {n} bootstrapped demos"),
    }


def knn_few_shot(b: Bench) -> tuple[PurposeAgent, dict]:
    examples, counts = gold_examples(b.taskset, b.train)
    if not examples:
        raise Skipped("no gold step examples to retrieve from")
    vectorizer = dspy.Embedder(hashed_embedding, caching=False)
    optimizer = dspy.KNNFewShot(b.args.k, examples, vectorizer, max_bootstrapped_demos=0, max_labeled_demos=b.args.k)
    program = PurposeAgent()
    program.actor.act = KNNAct(optimizer.compile(ActStep()))
    return program, {"gold": counts, "knn_mode": "retrieval of labeled gold demos only (max_bootstrapped_demos=0): "
                     "with bootstrapping, KNNFewShot would spend up to k LM calls per actor call at test time",
                     "actor_sees": f"the {b.args.k} nearest gold demos (hashed word + pair vectors, all Act inputs)",
                     "critic_sees": "no demos"}


def gepa(b: Bench) -> tuple[PurposeAgent, dict]:
    """dspy.GEPA on actor-only episodes; every rollout and reflection call is charged to one LMBudget."""
    if not b.train:
        raise Skipped("GEPA needs at least one train task (--train)")
    budget, reflection_calls = LMBudget(b.args.budget), []
    runner = EpisodeRunner(b.taskset, b.lms, budget, score_phi=False, step_calls=Actor().max_attempts)
    trainset, valset = b.examples(b.train), b.examples(b.dev) or None
    minibatch = min(3, len(trainset))
    settings = {  # max_metric_calls: rollouts at up to max_steps first-attempt actor calls each
        "max_metric_calls": max(1, b.args.budget // b.taskset.max_steps), "reflection_minibatch_size": minibatch,
        "candidate_selection_strategy": "pareto", "skip_perfect_score": True, "use_merge": False,
        "num_threads": 1, "seed": b.args.seed}
    stopper = BudgetStopper(budget, (2 * minibatch + len(valset or trainset)) * b.taskset.max_steps + 1)
    optimizer = dspy.GEPA(
        metric=gepa_metric, reflection_lm=traced_copy(b.lms["actor"], "optimizer", reflection_calls),
        instruction_proposer=BudgetedProposer(budget, reflection_calls), track_stats=True,
        gepa_kwargs={"stop_callbacks": [stopper]}, **settings)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for --json
            compiled = optimizer.compile(GEPAEpisode(runner), trainset=trainset, valset=valset)
    finally:
        runner.close()
    stats, instructions = compiled.detailed_results, compiled.actor.act.signature.instructions
    evolved = instructions != Actor().act.signature.instructions
    rollout_calls = [c for r in runner.results for c in r.trajectory.lm_calls]
    calls = rollout_calls + reflection_calls
    return PurposeAgent(actor=compiled.actor), {
        "lm_calls": len(calls), "tokens": sum(c.tokens for c in calls), "budget_exhausted": budget.ran_out,
        "rollouts": len(runner.results), "rollouts_not_run": runner.not_run, "rollout_calls": len(rollout_calls),
        "reflection_calls": len(reflection_calls), "valset": "dev" if valset else "train (no --dev)",
        "gepa": {**settings, "stop_below_remaining_calls": stopper.reserve, "stopped_by_budget": stopper.fired,
                 "metric_calls": stats.total_metric_calls, "candidates": len(stats.candidates),
                 "val_scores": [round(s, 3) for s in stats.val_aggregate_scores], "best_candidate": stats.best_idx},
        "instructions_evolved": evolved, "evolved_instruction": instructions[:300],
        "actor_sees": "zero-shot prompt with GEPA-evolved instructions" if evolved
        else "zero-shot prompt (GEPA kept the original instructions)",
        "critic_sees": "no demos (GEPA's rollouts are actor-only; the critic is not optimized)",
    }


def purpose_teleprompter(b: Bench) -> tuple[PurposeAgent, dict]:
    rounds = {} if b.args.rounds is None else {"rounds": b.args.rounds}
    config = CompileConfig(max_lm_calls=b.args.budget, seed=b.args.seed, demos_per_call=b.args.k, distill=False,
                           progress=b.progress, **rounds)
    teleprompter = PurposeTeleprompter(b.lms, config)
    # The gated result: when the gate refuses, compile returns the zero-shot parent, and that is what is tested.
    program = teleprompter.compile(PurposeAgent(), trainset=b.examples(b.train), valset=b.examples(b.dev))
    report = teleprompter.report
    refused = "no demos: its gate refused the compiled agent (see gate), the zero-shot parent runs"
    return program, {
        "lm_calls": report.lm_calls, "tokens": report.tokens, "budget_exhausted": report.budget_exhausted,
        "phases": report.phases, "judge": report.judge,
        "train_successes": report.train.successes if report.train else None,
        "valset_before": report.before.row() if report.before else None,
        "valset_after": report.after.row() if report.after else None,
        "gate": report.gate.model_dump(mode="json") if report.gate else None,  # None: no --dev, nothing gated
        "candidate_actor_demos": len(teleprompter.candidate.actor.act.demos),
        "actor_demos": len(program.actor.act.demos), "critic_demos": len(program.critic.judge.demos),
        "task_paths": len(program.actor.paths), "candidate_task_paths": len(teleprompter.candidate.actor.paths),
        "_candidate": teleprompter.candidate if program is not teleprompter.candidate else None,
        "actor_sees": refused if program is not teleprompter.candidate else _shown(
            len(program.actor.act.demos), f"the {b.args.k} nearest of {{n}} pool demos from its own successes"),
        "critic_sees": refused if program is not teleprompter.candidate else _shown(
            len(program.critic.judge.demos), f"the {program.critic.demos_per_call} nearest of {{n}} kept calibration demos"),
    }


def _shown(n: int, text: str) -> str:
    return text.format(n=n) if n else "no demos (none found)"


COMPILERS: dict[str, Callable[[Bench], tuple[PurposeAgent, dict]]] = {
    "zero-shot": zero_shot, "labeled-few-shot": labeled_few_shot, "bootstrap-few-shot": bootstrap_few_shot,
    "knn-few-shot": knn_few_shot, "gepa": gepa, "purpose-teleprompter": purpose_teleprompter,
}


class Bench:
    """What every arm shares: the task set, its splits, the LMs and the flags."""

    def __init__(self, args: argparse.Namespace, lms: dict) -> None:
        self.args, self.lms = args, lms
        self.taskset = load_taskset(args.taskset)
        if args.max_steps:  # a shorter step limit for every arm (failed episodes dominate the time)
            self.taskset = self.taskset.model_copy(update={"max_steps": args.max_steps})
        self.train = self.taskset.tasks("train")[: args.train]
        self.dev = self.taskset.tasks("dev")[: args.dev] if args.dev else []
        self.progress = sys.stderr.isatty()
        self.splits = [s.strip() for s in args.splits.split(",") if s.strip()]

    def examples(self, tasks: list[Task]) -> list[dspy.Example]:
        return task_examples(tasks, purpose=self.taskset.purpose, max_steps=self.taskset.max_steps)


def run_arm(b: Bench, arm: str) -> list[dict]:
    """Compile, then evaluate on each of `--splits` (test: held out; train: the train tasks run again); a
    Skipped arm reports why. A refused PurposeTeleprompter candidate is evaluated too, as its own row."""
    started = time.perf_counter()
    try:
        program, facts = COMPILERS[arm](b)
    except Skipped as why:
        return [{"arm": arm, "skipped": str(why)}]
    compile_seconds = round(time.perf_counter() - started, 1)
    spent = {"lm_calls": facts.pop("lm_calls", 0), "tokens": facts.pop("tokens", 0), "seconds": compile_seconds}
    candidate = facts.pop("_candidate", None)
    rows = [{"arm": arm, **facts, "compile": spent, **evaluations(b, program)}]
    if candidate is not None:
        rows.append({"arm": f"{arm} (ungated candidate)", "gate_refused_it": True, "compile": spent,
                     "actor_sees": "the refused candidate: its task paths and pool", "critic_sees": "its demos",
                     **evaluations(b, candidate)})
    return rows


def evaluations(b: Bench, program: PurposeAgent) -> dict:
    """The program on each split of `--splits` (the first `--test` test seeds / the `--train` train seeds)."""
    out = {}
    for split in b.splits:
        started = time.perf_counter()
        n = b.args.test if split == "test" else len(b.train)
        m = evaluate_program(program, b.taskset, split, lms=b.lms, tasks=n, phi_store=PhiStore(),
                             progress=b.progress, critic=not b.args.actor_only)
        out[split] = {"n": m.n, "successes": m.successes, "success_rate": m.success_rate,
                      "success_ci": m.success_ci, "mean_steps": m.mean_steps, "mean_phi_gain": m.mean_phi_gain,
                      "phi_scored": m.phi_scored, "lm_calls": m.lm_calls, "tokens": m.tokens,
                      "seconds": round(time.perf_counter() - started, 1),
                      "solved_seeds": [t.seed for t in m.tasks if t.success], "seeds": [t.seed for t in m.tasks]}
    return out


def paired_tests(report: dict) -> None:
    """Per split, every arm against zero-shot (and against the best DSPy arm on that split): seeds solved
    by one and not the other, and the exact two-sided sign test on them."""
    rows = [r for r in report["arms"] if "skipped" not in r]
    for split in report["splits"]:
        by_arm = {r["arm"]: r[split] for r in rows if split in r}
        dspy_arms = [a for a in by_arm if a in ("labeled-few-shot", "bootstrap-few-shot", "knn-few-shot", "gepa")]
        best_dspy = max(dspy_arms, key=lambda a: by_arm[a]["successes"], default=None)
        for row in rows:
            if split not in row:
                continue
            row[split]["paired"] = {
                ref: _paired(row[split], by_arm[ref]) for ref in ("zero-shot", best_dspy)
                if ref and ref in by_arm and ref != row["arm"]}


def _paired(a: dict, b: dict) -> dict:
    common = set(a["seeds"]) & set(b["seeds"])
    wins = len((set(a["solved_seeds"]) - set(b["solved_seeds"])) & common)
    losses = len((set(b["solved_seeds"]) - set(a["solved_seeds"])) & common)
    return {"n": len(common), "wins": wins, "losses": losses, "sign_test_p": sign_test(wins, losses)}


def scripted_lms(name: str) -> dict:
    """tests/rule_lm.py's engine (a plumbing check) or tests/copy_lm.py's (an actor that follows a demo whose
    action, or `<goal>` template, fits here, else takes the first valid action): scripted, NOT measurements."""
    tests = Path(__file__).resolve().parent.parent / "tests"
    sys.path.insert(0, str(tests))  # copy_lm imports rule_lm
    spec = importlib.util.spec_from_file_location(name, tests / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.rule_lms()[0] if name == "rule_lm" else module.copy_lms()[0]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taskset", default="tasksets/twx-coin.toml")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of: {', '.join(ARMS)}")
    parser.add_argument("--train", type=int, default=8, help="first N train seeds (every arm)")
    parser.add_argument("--dev", type=int, default=4, help="first N dev seeds (PurposeTeleprompter's and GEPA's valset)")
    parser.add_argument("--test", type=int, default=10, help="first N test seeds (every arm's evaluation)")
    parser.add_argument("--budget", type=int, default=360, help="LM calls per compile, the same cap for every arm")
    parser.add_argument("--max-steps", type=int, default=None, help="override the task set's step limit (every arm)")
    parser.add_argument("--splits", default="test", help="evaluate on: test (held out), train (the train tasks "
                        "run again), or test,train")
    parser.add_argument("--actor-only", action="store_true", help="evaluations without the critic (no Φ gain; "
                        "about half the time per step); the compile's train rollouts keep it")
    parser.add_argument("--k", type=int, default=3, help="demos per actor call (LabeledFewShot k, KNN k, bootstraps)")
    parser.add_argument("--seed", type=int, default=0, help="PurposeTeleprompter's exploration seed")
    parser.add_argument("--rounds", type=int, default=None, help="PurposeTeleprompter's extra exploring rounds over the "
                        "unsolved train tasks (default: CompileConfig's), inside the same budget")
    parser.add_argument("--lm", default=None, help="LM for every role (default: the embedded local model)")
    parser.add_argument("--api-base", default=None)
    parser.add_argument("--cache", action="store_true", help="use DSPy's response cache (off: seconds stay honest)")
    parser.add_argument("--rule-lm", action="store_true", help="tests/rule_lm.py's engine: a smoke, not a measurement")
    parser.add_argument("--copy-lm", action="store_true", help=(
        "tests/copy_lm.py's engine: an actor that copies a demo whose action or <goal> template fits here (a stand-in "
        "for an LM that can abstract), else the first valid action; scripted, not a measurement of a model"))
    parser.add_argument("--out", default=None, help="write the JSON report here, rewritten after every arm")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")

    scripted = "rule_lm" if args.rule_lm else "copy_lm" if args.copy_lm else None
    lms = scripted_lms(scripted) if scripted else build_role_lms(
        load_lm_config(model=args.lm, api_base=args.api_base, cache=args.cache), roles=COMPILE_ROLES)
    b = Bench(args, lms)
    report: dict[str, Any] = {
        "command": shlex.join(["python", "benchmarks/optimizers.py", *(sys.argv[1:] if argv is None else argv)]),
        "measurement": scripted is None, "scripted_lm": scripted, "taskset": b.taskset.name, "max_steps": b.taskset.max_steps, "env": b.taskset.env,
        "lm": lms["actor"].model, "train": len(b.train), "dev": len(b.dev), "test": args.test,
        "budget": args.budget, "k": args.k, "seed": args.seed, "splits": b.splits, "arms": [],
    }
    started = time.perf_counter()
    for arm in arms:
        print(f"[{arm}] compiling and evaluating...", file=sys.stderr)
        report["arms"] += run_arm(b, arm)
        paired_tests(report)
        report["seconds"] = round(time.perf_counter() - started, 1)
        if args.out:  # after every arm: a long run that is stopped keeps the arms it finished
            Path(args.out + ".tmp").write_text(json.dumps(report, indent=1))
            os.replace(args.out + ".tmp", args.out)
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return report


def _vs(paired: dict, ref: str) -> str:
    """'+w/-l p=..' against zero-shot, or against the other (best DSPy) reference."""
    keys = [k for k in paired if (k == "zero-shot") == (ref == "zero-shot")]
    if not keys:
        return "-"
    p = paired[keys[0]]
    shown = "p<1e-4" if p["sign_test_p"] < 1e-4 else f"p={p['sign_test_p']:.2g}"  # sign_test rounds to 4 places
    return f"+{p['wins']}/-{p['losses']} {shown}"


def print_table(report: dict) -> None:
    if not report["measurement"]:
        print(f"SCRIPTED RUN with tests/{report.get('scripted_lm') or 'rule_lm'}.py: control flow and mechanism, "
              "NOT a measurement of a model")
    print(f"optimizers on {report['taskset']}: train {report['train']}, dev {report['dev']}, test {report['test']} "
          f"seeds; budget {report['budget']} LM calls per compile; k {report['k']}; LM {report['lm']}")
    print(f"  {report['command']}")
    for split in report["splits"]:
        label = "held-out test" if split == "test" else "train tasks run again"
        print(f"\n{label}:")
        print(f"{'arm':42}{'success':>9}{'95% CI':>14}{'vs zero-shot':>18}{'vs best DSPy':>18}{'compile calls':>14}"
              f"{'eval calls':>11}{'compile s':>10}{'eval s':>8}")
        for row in report["arms"]:
            if "skipped" in row:
                print(f"{row['arm']:42}  skipped: {row['skipped']}")
                continue
            if split not in row:
                continue
            t, c = row[split], row["compile"]
            lo, hi = t["success_ci"]
            vs = [_vs(t.get("paired", {}), ref) for ref in ("zero-shot", "best")]
            print(f"{row['arm']:42}{t['successes']:>5}/{t['n']:<3}{f'[{lo:.0%}, {hi:.0%}]':>14}{vs[0]:>18}{vs[1]:>18}"
                  f"{c['lm_calls']:>14}{t['lm_calls']:>11}{c['seconds']:>10}{t['seconds']:>8}")
    for row in report["arms"]:
        if "skipped" not in row:
            print(f"  {row['arm']}: actor sees {row['actor_sees']}; critic sees {row['critic_sees']}"
                  + ("; compile budget ran out" if row.get("budget_exhausted") else ""))
        if row.get("instructions_evolved"):
            print(f"    evolved instruction: {one_line(row['evolved_instruction'], 200)}")
    print(f"{report['seconds']} s in all")


if __name__ == "__main__":
    main()
