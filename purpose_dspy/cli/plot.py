"""The learning-curve PNG of `purpose-dspy demo` (matplotlib, an optional extra)."""

from __future__ import annotations

from typing import Any


def learning_curve(png: str, report: Any, before: Any, after: Any, train_before: Any = None,
                   train_after: Any = None) -> str | None:
    """Left: cumulative success over the train rollouts; right: success before and after with 95% CIs, on the
    held-out test seeds and (when given) on the train tasks run again."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    wins = [t.success for t in report.train.tasks] if report.train else []
    rate = [sum(wins[: i + 1]) / (i + 1) for i in range(len(wins))]
    left.plot(range(1, len(rate) + 1), rate, marker="o")
    left.set(title="compile: train rollouts", xlabel="rollout", ylabel="success so far", ylim=(-0.05, 1.05))
    groups = [(f"test (n={after.n})", before, after)]
    if train_before is not None and train_after is not None:
        groups.append((f"train again (n={train_after.n})", train_before, train_after))
    for offset, (label, colour, pick) in enumerate((("zero-shot", "#999999", 1), ("compiled", "#3b7dd8", 2))):
        ms = [g[pick] for g in groups]
        rates = [m.success_rate for m in ms]
        errors = [[r - m.success_ci[0] for r, m in zip(rates, ms)], [m.success_ci[1] - r for r, m in zip(rates, ms)]]
        right.bar([i + 0.38 * offset for i in range(len(groups))], rates, width=0.36, yerr=errors, capsize=5,
                  color=colour, label=label)
    right.set_xticks([i + 0.19 for i in range(len(groups))], [g[0] for g in groups])
    right.set(title="success, 95% CI (same seeds)", ylabel="success rate", ylim=(0, 1.05))
    right.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
