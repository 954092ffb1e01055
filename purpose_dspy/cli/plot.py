"""The learning-curve PNG of `purpose-dspy demo` (matplotlib, an optional extra)."""

from __future__ import annotations

from typing import Any


def learning_curve(png: str, report: Any, before: Any, after: Any) -> str | None:
    """Left: cumulative success over the train rollouts; right: test success before and after, 95% CI."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    wins = [t.success for t in report.train.tasks] if report.train else []
    rate = [sum(wins[: i + 1]) / (i + 1) for i in range(len(wins))]
    left.plot(range(1, len(rate) + 1), rate, marker="o")
    left.set(title="compile: train rollouts", xlabel="rollout", ylabel="success so far", ylim=(-0.05, 1.05))
    rates = [before.success_rate, after.success_rate]
    errors = [[r - m.success_ci[0] for r, m in zip(rates, (before, after))],
              [m.success_ci[1] - r for r, m in zip(rates, (before, after))]]
    right.bar(["zero-shot", "compiled"], rates, yerr=errors, capsize=6, color=["#999999", "#3b7dd8"])
    right.set(title=f"test split (n={after.n}), 95% CI", ylabel="success rate", ylim=(0, 1.05))
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
