"""Environment families, found by id through a registry of import paths.

Ids are `treasure-maze`, `twx:<game>` (TextWorldExpress) and `scienceworld:<task>`. Importing this
package imports no engine: the Java environments load only when `make_env` asks for them.
"""

from __future__ import annotations

import importlib

from purpose_dspy.environments.base import Environment
from purpose_dspy.errors import UsageError

# family prefix -> "module:factory"; the factory takes the part after ':' (or None).
REGISTRY: dict[str, str] = {
    "treasure-maze": "purpose_dspy.environments.treasure_maze:TreasureMaze",
    "twx": "purpose_dspy.environments.textworld_express:TextWorldExpress",
    "scienceworld": "purpose_dspy.environments.scienceworld:ScienceWorld",
}

EXAMPLES = "treasure-maze, twx:coin, twx:cookingworld, scienceworld:boil"


def make_env(env_id: str) -> Environment:
    """Create the environment named by `env_id` (e.g. 'treasure-maze', 'twx:coin')."""
    family, _, variant = env_id.partition(":")
    target = REGISTRY.get(family)
    if target is None:
        raise UsageError(f"unknown environment '{env_id}': known families are {', '.join(REGISTRY)} (e.g. {EXAMPLES})")
    module_name, _, factory_name = target.partition(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    if family == "treasure-maze":
        if variant:
            raise UsageError(f"treasure-maze takes no ':{variant}' suffix; set size with params instead")
        return factory()
    if not variant:
        raise UsageError(f"'{family}' needs a game or task after ':', e.g. {family}:{'coin' if family == 'twx' else 'boil'}")
    return factory(variant)


__all__ = ["Environment", "REGISTRY", "make_env"]
