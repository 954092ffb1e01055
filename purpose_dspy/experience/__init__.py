"""What the agent learns between runs: the replay buffer (every step, Q-values, recall) and the
`Experience` facade over it and the memory cards, as the step loop uses them."""

from purpose_dspy.experience.facade import Advice, Experience, ExperienceConfig
from purpose_dspy.experience.replay import (
    ExperienceReplay,
    Recall,
    RecalledAction,
    ReplayConfig,
)

__all__ = ["Advice", "Experience", "ExperienceConfig", "ExperienceReplay", "Recall", "RecalledAction", "ReplayConfig"]
