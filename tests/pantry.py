"""`Pantry`: a small pure-Python environment whose observations carry a volatile turn counter (text or JSON),
for the rewrite properties: the Φ cache must ignore the counter, the whitespace and the key order."""

from __future__ import annotations

import json

from purpose_dspy.types import State, Task


class Pantry:
    """Four rooms and a fridge; every step advances a turn counter that the Φ cache must ignore.
    `params={"json": 1}` gives JSON observations (a volatile "turn" key) instead of text ("[turn 3]")."""

    env_id = "pantry"
    volatile_patterns = (r"\[turn \d+\]", "turn")
    ROOMS = ("kitchen", "pantry", "cellar", "garden")

    def reset(self, task: Task) -> State:
        self.room, self.turn, self.open, self.json = task.seed % 4, 0, False, bool(task.params.get("json"))
        return self._state()

    def step(self, action: str) -> State:
        self.turn += 1
        if action == "open the fridge":
            self.open = self.open or self.room == 0
        else:
            self.room = self.ROOMS.index(action.removeprefix("go to the "))
        return self._state()

    done = False
    purpose = "open the fridge in the kitchen"

    def progress(self) -> float:
        return float(self.open)

    def close(self) -> None:
        pass

    def _state(self) -> State:
        room, fridge = self.ROOMS[self.room], "open" if self.open else "closed"
        exits = [r for r in self.ROOMS if r != room]
        text = (json.dumps({"room": room, "fridge": fridge, "exits": exits, "turn": self.turn}) if self.json
                else f"You are in the {room}. [turn {self.turn}] The fridge is {fridge}. Exits: {', '.join(exits)}.")
        return State(observation=text, valid_actions=("open the fridge", *(f"go to the {r}" for r in exits)))
