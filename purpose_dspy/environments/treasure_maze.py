"""TreasureMaze: the pure-Python demo environment from the purpose-agent seed.

A square grid with walls, a start cell and a treasure, laid out from a seed. Every layout is
solvable (walls are only kept where a breadth-first search still reaches the treasure). The agent
sees its position, the treasure's position and which moves are open; progress is the share of the
initial shortest-path distance already covered.
"""

from __future__ import annotations

import random
from collections import deque

from purpose_dspy.errors import UsageError
from purpose_dspy.types import State, Task

Cell = tuple[int, int]
MOVES: dict[str, Cell] = {"north": (-1, 0), "south": (1, 0), "west": (0, -1), "east": (0, 1)}


class TreasureMaze:
    """Grid world: reach the treasure. Params: `size` (default 5), `wall_density` (default 0.2)."""

    volatile_patterns: tuple[str, ...] = ()  # nothing in its text changes without the world changing

    env_id = "treasure-maze"

    def __init__(self) -> None:
        self._size = 0
        self._walls: frozenset[Cell] = frozenset()
        self._pos: Cell = (0, 0)
        self._treasure: Cell = (0, 0)
        self._start_distance = 1
        self._steps = 0
        self._done = False

    # -- layout -----------------------------------------------------------------------------
    def reset(self, task: Task) -> State:
        size = int(task.params.get("size", 5))
        density = float(task.params.get("wall_density", 0.2))
        if not 3 <= size <= 20:
            raise UsageError(f"treasure-maze size must be 3..20, got {size}")
        # The split is part of the seed so train / dev / test layouts never coincide.
        split_offset = {"train": 0, "dev": 1_000_003, "test": 2_000_003}[task.split]
        rng = random.Random(task.seed + split_offset)
        cells = [(r, c) for r in range(size) for c in range(size)]
        self._size = size
        self._pos, self._treasure = rng.sample(cells, 2)
        while self._manhattan(self._pos, self._treasure) < size // 2 + 1:
            self._pos, self._treasure = rng.sample(cells, 2)
        walls: set[Cell] = set()
        for cell in rng.sample(cells, len(cells)):
            if cell in (self._pos, self._treasure) or rng.random() > density:
                continue
            walls.add(cell)
            if self._distance(self._pos, frozenset(walls)) is None:
                walls.discard(cell)
        self._walls = frozenset(walls)
        self._start_distance = self._distance(self._pos, self._walls) or 1
        self._steps = 0
        self._done = False
        return self._state("You enter the maze.")

    # -- dynamics ---------------------------------------------------------------------------
    def step(self, action: str) -> State:
        if self._done:
            raise UsageError("treasure-maze: step() after the episode ended; call reset() first")
        move = MOVES.get(action.strip().lower())
        self._steps += 1
        if move is None:
            return self._state(f"'{action}' is not a move here. Moves are: {', '.join(MOVES)}.")
        target = (self._pos[0] + move[0], self._pos[1] + move[1])
        if not self._open(target):
            return self._state(f"You bump into a wall going {action}.")
        self._pos = target
        if self._pos == self._treasure:
            self._done = True
            return self._state("You found the treasure!")
        return self._state(f"You move {action}.")

    @property
    def done(self) -> bool:
        return self._done

    @property
    def purpose(self) -> str:
        r, c = self._treasure
        return f"Reach the treasure at row {r}, column {c} of the {self._size}x{self._size} maze."

    def progress(self) -> float:
        remaining = self._distance(self._pos, self._walls)
        return round(max(0.0, 1.0 - (remaining or 0) / self._start_distance), 4)

    def close(self) -> None:
        pass

    # -- helpers ----------------------------------------------------------------------------
    def _open(self, cell: Cell) -> bool:
        r, c = cell
        return 0 <= r < self._size and 0 <= c < self._size and cell not in self._walls

    def _state(self, message: str) -> State:
        r, c = self._pos
        tr, tc = self._treasure
        valid = tuple(m for m, (dr, dc) in MOVES.items() if self._open((r + dr, c + dc)))
        observation = (
            f"{message} You are at row {r}, column {c}. The treasure is at row {tr}, column {tc}. "
            f"Open directions: {', '.join(valid) or 'none'}."
        )
        return State(
            observation=observation,
            data={"position": [r, c], "treasure": [tr, tc]},
            valid_actions=() if self._done else valid,
            done=self._done,
            success=self._done,
        )

    @staticmethod
    def _manhattan(a: Cell, b: Cell) -> int:
        return abs(a[0] - b[0]) + abs(a[1] - b[1])

    def _distance(self, start: Cell, walls: frozenset[Cell]) -> int | None:
        """Shortest path length from `start` to the treasure avoiding `walls` (None if cut off)."""
        seen = {start}
        queue = deque([(start, 0)])
        while queue:
            cell, dist = queue.popleft()
            if cell == self._treasure:
                return dist
            for dr, dc in MOVES.values():
                nxt = (cell[0] + dr, cell[1] + dc)
                r, c = nxt
                if nxt not in seen and 0 <= r < self._size and 0 <= c < self._size and nxt not in walls:
                    seen.add(nxt)
                    queue.append((nxt, dist + 1))
        return None
