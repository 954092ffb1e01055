"""Anomaly detection: a single-step jump in Φ that is too large to trust is flagged and damped.

Two tests: the jump is larger than an absolute threshold on the 0-10 scale (`anomaly_abs`), or,
once the trajectory has enough earlier deltas, it reaches further from zero than `anomaly_z`
standard deviations beyond their mean (the std dev has a floor, so a flat history does not make
every small step an outlier). A flagged delta keeps its sign and is cut to the largest size that
would not have fired; damping never makes a step larger.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from purpose_dspy.safeguards.config import SafeguardConfig


def check_jump(delta: float, history: Sequence[float], config: SafeguardConfig) -> tuple[tuple[str, ...], float]:
    """(flags that fired, delta to use). `history` holds the trajectory's earlier deltas, oldest first."""
    flags: list[str] = []
    size = abs(delta)
    if size > config.anomaly_abs:
        flags.append("anomaly_abs")
        size = config.anomaly_abs
    window = list(history)[-config.anomaly_window :]
    if delta != 0 and len(window) >= config.anomaly_min_history:
        mean = statistics.fmean(window)
        spread = config.anomaly_z * max(statistics.pstdev(window), config.anomaly_std_floor)
        edge = mean + spread if delta > 0 else mean - spread  # the band's edge on the delta's side
        if (delta > edge) if delta > 0 else (delta < edge):
            flags.append("anomaly_z")
            size = min(size, max(0.0, edge if delta > 0 else -edge))
    return tuple(flags), (size if delta >= 0 else -size)
