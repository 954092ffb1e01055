"""Memory: what the agent learned from its own trajectories, admitted and promoted on evidence.

`MemoryStore` keeps the cards and renders them for a role (`context`); `MemoryCI` decides what gets
in and what earns a place in every context. Importing this package opens no store.
"""

from purpose_dspy.memory.cards import (
    CardEvent,
    CardKind,
    CardStatus,
    MemoryCard,
    MemoryContext,
)
from purpose_dspy.memory.ci import MemoryCI
from purpose_dspy.memory.config import MemoryConfig
from purpose_dspy.memory.store import MemoryStore

__all__ = ["CardEvent", "CardKind", "CardStatus", "MemoryCI", "MemoryCard", "MemoryConfig", "MemoryContext", "MemoryStore"]
