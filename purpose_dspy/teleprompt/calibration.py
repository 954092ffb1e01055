"""Critic calibration: which of the critic's own judgments it learns from, and whether the meta-judge's LM has a say.

`Calibration(judge, evaluator, settings)` is the compile's critic phase in two calls:

- `grade(...)`: a seeded sample of scored steps, round robin over where the environment's progress rose,
  fell, stayed and is unknown, each graded by the meta-judge (checkpoint `judge/<trajectory>/<step>`);
  then, next to each Python-verified one (every check passes), a wrong judgment planted by the
  self-taught evaluator and graded the same way (`contrast/<trajectory>/<step>`);
- `decide(...)`: the trust decision, then kept judgments become calibration demos and rejected ones
  failure-pattern memory cards.

**Trust.** The meta-judge's LM grades count only when the LM by itself (verdict keep and mean grade at
least the judge's `min_grade`, the Python checks left out) keeps at least `min_honest_kept` of the
Python-verified honest judgments *and* rejects at least `min_planted_rejected` of the planted wrong ones
the Python checks miss, over at least `min_trust_pairs` such graded items. Planted ones the checks catch
say nothing about the LM: they are counted apart. So neither a judge that rejects everything nor one
that keeps everything is trusted, and with no planted flaw the checks miss there is nothing to earn
trust on. Untrusted, the Python checks alone decide.

**Demos.** A kept judgment becomes a demo only when Φ moved the way the environment's progress did on
that step (rose, fell, or stayed exactly); a step of unknown progress only when no kept step's progress
is known. Rises, falls and no-change are interleaved, and identical (before, action, after) steps shown once.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, Protocol

import dspy

from purpose_dspy.memory.cards import MemoryCard, Provenance
from purpose_dspy.programs.critic import PurposeCritic
from purpose_dspy.programs.meta_judge import MetaJudge, failure_pattern
from purpose_dspy.programs.self_taught_evaluator import (
    SelfTaughtEvaluator,
    applicable_flaws,
    discrimination,
)
from purpose_dspy.runtime.budget import LMBudget
from purpose_dspy.runtime.trace import traced_copy
from purpose_dspy.signatures.grade_judgment import JudgmentGrade
from purpose_dspy.teleprompt.base import DemoSource
from purpose_dspy.teleprompt.checkpoint import Checkpoint
from purpose_dspy.types import LMCall, PurposeScore, Trajectory

logger = logging.getLogger(__name__)

EPS = 1e-9  # progress and Φ changes smaller than this are no change
DIRECTIONS = {1: "rise", -1: "fall", 0: "no_change"}
Graded = tuple[Trajectory, int, dict[str, Any]]


class CalibrationSettings(Protocol):
    """The `CompileConfig` fields calibration reads (see their descriptions there)."""

    seed: int
    judge_sample: int
    contrast_pairs: int
    max_critic_demos: int
    min_honest_kept: float
    min_planted_rejected: float
    min_trust_pairs: int


@dataclass(frozen=True)
class Trust:
    """Whether the meta-judge's LM grades count, and on what evidence."""

    honest_graded: int
    honest_kept_by_lm: int
    planted_uncaught: int
    planted_rejected_by_lm: int
    trusted: bool
    why: str
    discrimination: float | None


@dataclass
class Calibrated:
    """What the critic phase hands back: demos with their provenance, failure cards, the report's `judge` entry."""

    demos: list[dspy.Example]
    sources: list[DemoSource]
    failures: list[MemoryCard]
    summary: dict[str, Any]


def progress_around(traj: Trajectory, i: int) -> tuple[float | None, float | None]:
    """The environment's progress before and after step `i` (a trajectory starts at 0 where progress is known)."""
    now = traj.steps[i].progress
    before = traj.steps[i - 1].progress if i else (0.0 if now is not None else None)
    return before, now


def progress_delta(traj: Trajectory, i: int) -> float | None:
    """How far step `i` moved the environment's progress; None when either side is unknown."""
    before, now = progress_around(traj, i)
    return None if before is None or now is None else now - before


def direction(change: float | None) -> int | None:
    """1 up, -1 down, 0 no change, None unknown."""
    return None if change is None else (change > EPS) - (change < -EPS)


def lm_keeps(graded: dict[str, Any], min_grade: float) -> bool:
    """Whether the meta-judge's LM alone would keep a judgment: verdict keep and mean grade >= `min_grade`."""
    if graded.get("grade") is None:
        return False
    grade = JudgmentGrade.model_validate(graded["grade"])
    return grade.verdict == "keep" and grade.mean >= min_grade


def passes_checks(graded: dict[str, Any]) -> bool:
    return all(graded["checks"].values())


def judge_trust(honest: list[bool], planted: list[dict[str, Any]], settings: CalibrationSettings,
                min_grade: float) -> Trust:
    """The trust rule of the module docstring. `honest`: the LM's own keep of each Python-verified honest
    judgment; `planted`: every graded planted wrong judgment (those the checks catch are set apart here)."""
    uncaught = [lm_keeps(p, min_grade) for p in planted if passes_checks(p)]
    kept, rejected = sum(honest), sum(not k for k in uncaught)
    n = len(honest) + len(uncaught)
    if not planted:
        why = "untrusted: no planted wrong judgments"
    elif not uncaught:
        why = "untrusted: no planted flaw the Python checks miss"
    elif not honest:
        why = "untrusted: no Python-verified honest judgment graded"
    elif n < settings.min_trust_pairs:
        why = f"untrusted: {n} graded items, fewer than {settings.min_trust_pairs}"
    else:
        problems = []
        if kept / len(honest) < settings.min_honest_kept:
            problems.append(f"kept {kept}/{len(honest)} honest judgments (needs {settings.min_honest_kept:.0%})")
        if rejected / len(uncaught) < settings.min_planted_rejected:
            problems.append(f"rejected {rejected}/{len(uncaught)} planted flaws the checks miss "
                            f"(needs {settings.min_planted_rejected:.0%})")
        why = ("untrusted: " + "; ".join(problems)) if problems else (
            f"trusted: kept {kept}/{len(honest)} honest, rejected {rejected}/{len(uncaught)} "
            "planted flaws the checks miss")
    return Trust(honest_graded=len(honest), honest_kept_by_lm=kept, planted_uncaught=len(uncaught),
                 planted_rejected_by_lm=rejected, trusted=why.startswith("trusted"), why=why,
                 discrimination=discrimination(honest, uncaught))


def _round_robin(*groups: list) -> list:
    """The first of each group, then the second of each, ... (groups run out in turn)."""
    return [g[k] for k in range(max(map(len, groups), default=0)) for g in groups if k < len(g)]


def calibration_demos(kept: list[tuple[Trajectory, int]], limit: int) -> tuple[list[dspy.Example], list[DemoSource]]:
    """Kept judgments that agree with the environment's progress as critic demos, rises, falls and
    no-change in turn, each distinct (before, action, after) once (see the module docstring)."""
    known = any(progress_delta(t, i) is not None for t, i in kept)
    groups: dict[int, list[tuple[Trajectory, int]]] = {1: [], -1: [], 0: []}
    seen: set[tuple[str, str, str]] = set()
    for traj, i in kept:
        step = traj.steps[i]
        env, phi = direction(progress_delta(traj, i)), direction(step.score.delta)
        key = (step.before.observation, step.action.text if step.action else "", step.after.observation)
        if (env is None and known) or (env is not None and env != phi) or key in seen:
            continue
        seen.add(key)
        groups[phi].append((traj, i))
    demos, sources = [], []
    for traj, i in _round_robin(groups[1], groups[-1], groups[0])[:limit]:
        step = traj.steps[i]
        demos.append(PurposeCritic.demo(traj.purpose, step.before, step.action.text, step.after, step.score))
        sources.append(DemoSource(component="critic", index=len(demos) - 1, trajectory_id=traj.id, step=i,
                                  task_id=traj.task.task_id))
    return demos, sources


class Calibration:
    """The critic phase of one compile: `grade` spends LM calls (checkpointed), `decide` spends none."""

    def __init__(self, judge: MetaJudge, evaluator: SelfTaughtEvaluator, settings: CalibrationSettings) -> None:
        self.judge = judge
        self.evaluator = evaluator
        self.settings = settings

    def grade(self, trajectories: list[Trajectory], judge_lm: Any, budget: LMBudget, ckpt: Checkpoint,
              calls: list[LMCall]) -> tuple[list[Graded], list[dict[str, Any]]]:
        """The sample's verdicts and the planted wrong judgments' grades; the calls made land in `calls`
        (charged to `budget` by the caller after the phase; resumed ones are charged here)."""
        with dspy.context(lm=traced_copy(judge_lm, "judge", calls), adapter=dspy.JSONAdapter()):
            verdicts = self._grade_sample(self.sample(trajectories), budget, ckpt, calls)
            planted = self._plant(verdicts, budget, ckpt, calls)
        return verdicts, planted

    def sample(self, trajectories: list[Trajectory]) -> list[tuple[Trajectory, int]]:
        """Scored steps, seeded shuffle, in turn where progress rose, fell, stayed and is unknown."""
        rng = random.Random(f"{self.settings.seed}/judge")
        candidates = [(t, i) for t in trajectories for i, s in enumerate(t.steps)
                      if s.action is not None and "unscored" not in s.score.flags]
        rng.shuffle(candidates)
        by: dict[int | None, list[tuple[Trajectory, int]]] = {1: [], -1: [], 0: [], None: []}
        for traj, i in candidates:
            by[direction(progress_delta(traj, i))].append((traj, i))
        return _round_robin(by[1], by[-1], by[0], by[None])[: self.settings.judge_sample]

    def decide(self, verdicts: list[Graded], planted: list[dict[str, Any]]) -> Calibrated:
        """Trust, then keep or reject each verdict: demos from the kept, failure cards from the rejected."""
        min_grade = getattr(self.judge, "min_grade", 3.0)
        trust = judge_trust([lm_keeps(v, min_grade) for _, _, v in verdicts if passes_checks(v)], planted,
                            self.settings, min_grade)

        def kept_by_rule(graded: dict[str, Any]) -> bool:
            return bool(graded["keep"]) if trust.trusted else passes_checks(graded)

        kept, failures = [], []
        for traj, i, v in verdicts:
            if kept_by_rule(v):
                kept.append((traj, i))
            else:
                failures.append(MemoryCard(
                    kind="failure_pattern", roles=("critic",), families=(traj.task.env_id,),
                    text=failure_pattern(traj.steps[i].score, v["reasons"]),
                    provenance=Provenance(trajectory_ids=(traj.id,), created_by="meta-judge"),
                ))
        demos, sources = calibration_demos(kept, self.settings.max_critic_demos)
        shown = [direction(d.phi_after - d.phi_before) for d in demos]
        summary = {
            "graded": len(verdicts), "kept": len(kept), "rejected": len(verdicts) - len(kept),
            "planted_wrong": len(planted), "planted_rejected": sum(not kept_by_rule(p) for p in planted),
            "discrimination": trust.discrimination, "lm_grades_trusted": trust.trusted,
            "flaws_missed": sorted({p["flaw"] for p in planted if kept_by_rule(p)}),
            "honest_graded": trust.honest_graded, "honest_kept_by_lm": trust.honest_kept_by_lm,
            "planted_uncaught": trust.planted_uncaught, "planted_rejected_by_lm": trust.planted_rejected_by_lm,
            "why": trust.why, "demo_directions": {name: shown.count(d) for d, name in DIRECTIONS.items()},
        }
        logger.info("critic: meta-judge graded %d judgments, kept %d, %d calibration demos; LM grades %s",
                    len(verdicts), len(kept), len(demos), trust.why)
        return Calibrated(demos=demos, sources=sources, failures=failures, summary=summary)

    # -- LM work, checkpointed -------------------------------------------------------------------
    def _grade_sample(self, sample: list[tuple[Trajectory, int]], budget: LMBudget, ckpt: Checkpoint,
                      calls: list[LMCall]) -> list[Graded]:
        verdicts = []
        for traj, i in sample:
            key = f"judge/{traj.id}/{i}"
            if key not in ckpt:
                if not budget.allows(len(calls) + 1):  # calls so far are charged after the phase
                    break
                ckpt.put(key, self._grade(traj, i, traj.steps[i].score, calls))
            else:
                budget.charge(ckpt.get(key)["lm_calls"])  # a resumed compile spends what the first one did
            verdicts.append((traj, i, ckpt.get(key)))
        return verdicts

    def _plant(self, verdicts: list[Graded], budget: LMBudget, ckpt: Checkpoint,
               calls: list[LMCall]) -> list[dict[str, Any]]:
        """The self-taught evaluator writes a wrong judgment next to steps Python's checks pass, and the
        meta-judge grades it the same way: can its LM tell?"""
        planted = []
        verified = [(t, i) for t, i, v in verdicts if passes_checks(v) and applicable_flaws(t.steps[i].score)]
        for n, (traj, i) in enumerate(verified[: self.settings.contrast_pairs]):
            key = f"contrast/{traj.id}/{i}"
            if key not in ckpt:
                if not budget.allows(len(calls) + 1):
                    break
                first = len(calls)
                pred = self.evaluator.plant(traj, i, n)
                graded = self._grade(traj, i, pred.wrong, calls)
                ckpt.put(key, {"flaw": pred.flaw, **graded, "lm_calls": len(calls) - first})
            else:
                budget.charge(ckpt.get(key)["lm_calls"])
            planted.append(ckpt.get(key))
        return planted

    def _grade(self, traj: Trajectory, i: int, score: PurposeScore, calls: list[LMCall]) -> dict[str, Any]:
        first = len(calls)
        step = traj.steps[i]
        before, after = progress_around(traj, i)
        pred = self.judge(purpose=traj.purpose, before=step.before, action=step.action.text if step.action else "",
                          after=step.after, score=score, progress_before=before, progress_after=after)
        return {"keep": bool(pred.keep), "checks": dict(pred.checks), "reasons": list(pred.reasons),
                "grade": pred.grade.model_dump() if pred.grade is not None else None, "error": pred.error,
                "lm_calls": len(calls) - first}
