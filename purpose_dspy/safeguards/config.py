"""SafeguardConfig: which of the critic's Python safeguards run, and their thresholds (frozen)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

SafeguardName = Literal["cache", "evidence", "injection", "confidence", "anomaly", "normalise"]
SAFEGUARDS: tuple[SafeguardName, ...] = ("cache", "evidence", "injection", "confidence", "anomaly", "normalise")


class SafeguardConfig(BaseModel):
    """Every safeguard is on by default; `without("evidence")` switches one off for an ablation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: frozenset[SafeguardName] = Field(frozenset(SAFEGUARDS), description="Safeguards that run.")
    confidence_threshold: float = Field(0.5, ge=0, le=1, description="Below this confidence a delta counts 0.")
    evidence_min_chars: int = Field(12, ge=1, description="Shortest quote that counts as evidence.")
    anomaly_abs: float = Field(5.0, gt=0, le=10, description="A single-step |delta| above this is an anomaly.")
    anomaly_z: float = Field(3.0, gt=0, description="A delta more than this many std devs from the window mean is an anomaly.")
    anomaly_window: int = Field(8, ge=2, description="How many earlier deltas of the trajectory the z-score uses.")
    anomaly_min_history: int = Field(4, ge=2, description="Earlier deltas needed before the z-score test applies.")
    anomaly_std_floor: float = Field(1.0, gt=0, description="Smallest std dev used in the z-score (flat histories).")
    top_phi: float = Field(9.0, ge=0, le=10, description=(
        "Φ above this (the top of the scale) is kept for states the environment itself reports a success "
        "(`State.success`); any other state's new Φ is capped at it (flag `capped_no_success`). 10 switches it off."))

    @field_serializer("enabled")
    def _in_order(self, enabled: frozenset[str]) -> list[str]:
        """In a fixed order: a set's order changes from process to process (string hashing), and this dump names
        the Φ store's namespace (`CriticGuard`) and a compile's job, which every process must agree on."""
        return [name for name in SAFEGUARDS if name in enabled]

    def on(self, name: SafeguardName) -> bool:
        return name in self.enabled

    def without(self, *names: str) -> SafeguardConfig:
        unknown = set(names) - set(SAFEGUARDS)
        if unknown:
            raise ValueError(f"unknown safeguard(s) {sorted(unknown)}; choose from {', '.join(SAFEGUARDS)}")
        return self.model_copy(update={"enabled": self.enabled - set(names)})
