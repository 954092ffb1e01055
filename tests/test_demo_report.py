"""`purpose-dspy demo`'s report: the paired figures on held-out test and on the train tasks run again, and
the learning-curve PNG with both groups (scores built by hand; the demo itself runs the embedded model)."""

from __future__ import annotations

from purpose_dspy.cli.compile import _paired_figures
from purpose_dspy.cli.plot import learning_curve
from purpose_dspy.metrics import SplitMetrics, TaskScore
from purpose_dspy.teleprompt import CompileReport


def split(name: str, solved: list[bool]) -> SplitMetrics:
    return SplitMetrics.of(name, [TaskScore(task_id=f"t/{name}/{i}", seed=i, success=s, phi_gain=0.0, steps=3,
                                            lm_calls=3, tokens=30, seconds=1.0) for i, s in enumerate(solved)])


def test_paired_figures_count_seeds_won_and_lost_and_give_the_sign_test():
    parent = split("train", [False] * 6 + [True] * 2)
    candidate = split("train", [True] * 6 + [True, False])
    assert _paired_figures(candidate, parent) == {"n": 8, "wins": 6, "losses": 1, "sign_test_p": 0.125}


def test_the_learning_curve_shows_test_and_train_again(tmp_path):
    report = CompileReport(train=split("train", [True, False, True]))
    png = learning_curve(str(tmp_path / "curve.png"), report, split("test", [True, False]), split("test", [True, True]),
                         split("train", [False, False, True]), split("train", [True, True, True]))
    assert png and (tmp_path / "curve.png").stat().st_size > 5000
