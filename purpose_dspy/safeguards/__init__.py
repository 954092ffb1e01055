"""The purpose critic's safeguards: what can be enforced in Python is enforced here, not only asked for."""

from purpose_dspy.safeguards.config import SAFEGUARDS, SafeguardConfig, SafeguardName
from purpose_dspy.safeguards.guard import CriticGuard
from purpose_dspy.safeguards.phi_store import PhiStore

__all__ = ["SAFEGUARDS", "CriticGuard", "PhiStore", "SafeguardConfig", "SafeguardName"]
