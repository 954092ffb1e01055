"""How fast does experience replay fill and recall as it grows to 1k, 10k and 100k stored steps?

Each size gets a fresh store (a temp directory, the real on-disk SQLite WAL + FTS5 file) filled with
synthetic but realistic text-game play: seeded games of 5-9 rooms built from word lists (adjectives,
furniture, objects, doors, inventories; 40-80 words a state) in three task families, played by a
biased random agent for ~10 steps a trajectory, so that states repeat across trajectories the way
they do in real play (every run of a game starts in the same room). Insert throughput is timed over
the `add()` calls alone; then `recall()` latency over `--queries` states: half stored ones, half
perturbed (an object swapped, the inventory changed) or from games never played.

    python benchmarks/replay_recall.py [--sizes 1000,10000,100000] [--queries 300] [--json]

Targets (from the issue): recall p50 under 5 ms at 10k steps and under 50 ms at 100k.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from purpose_dspy.experience.replay import FILENAME, ExperienceReplay
from purpose_dspy.types import Action, PurposeScore, State, Task, Trajectory, Transition

TARGETS_P50_MS = {10_000: 5.0, 100_000: 50.0}
STEPS_PER_GAME = 50  # ~6 runs of each game

ROOMS = ["kitchen", "pantry", "cellar", "attic", "hallway", "library", "study", "bedroom", "bathroom", "garden",
         "shed", "garage", "porch", "parlour", "workshop", "laundry", "greenhouse", "scullery", "chapel", "vault"]
ADJECTIVES = ["dusty", "bright", "narrow", "spacious", "damp", "cosy", "cluttered", "quiet", "draughty", "tidy",
              "gloomy", "sunlit", "cramped", "chilly", "musty", "elegant"]
FURNITURE = ["table", "shelf", "cupboard", "counter", "chest", "wardrobe", "workbench", "bookcase", "sofa", "stove",
             "sink", "fridge", "toolbox", "rack", "desk", "dresser", "trunk", "pedestal"]
OBJECTS = ["red apple", "rusty key", "silver coin", "yellow potato", "orange carrot", "kitchen knife", "cookbook",
           "lantern", "coil of rope", "hammer", "folded map", "wax candle", "loaf of bread", "carton of milk",
           "blue potion", "brass lamp", "wooden spoon", "pair of gloves", "notebook", "bottle of oil", "red onion",
           "block of cheese", "green pepper", "pocket watch", "iron nail", "old photograph", "chicken wing",
           "glass jar", "gold ring", "copper kettle"]
MATERIALS = ["wooden", "iron", "glass", "oak", "screen", "steel", "frosted", "painted", "barn", "trapdoor"]
DIRECTIONS = {"north": "south", "south": "north", "east": "west", "west": "east"}
DETAILS = [
    "A faint smell of {smell} hangs in the air.", "The floor is covered in {floor}.",
    "Light falls through a {window} window onto the walls.", "A {sound} can be heard somewhere nearby.",
    "Someone has scratched the word {word} into the wall.", "The walls are painted a {colour} colour.",
    "An old {picture} hangs crooked above the doorway.", "Cobwebs gather in every corner of the ceiling.",
]
FILLERS = {
    "smell": ["smoke", "lavender", "bread", "damp earth", "vinegar", "pine"],
    "floor": ["straw", "loose tiles", "a threadbare rug", "sawdust", "flagstones", "muddy boards"],
    "window": ["cracked", "stained glass", "tiny", "round", "barred", "dirty"],
    "sound": ["dripping tap", "ticking clock", "creaking beam", "distant bell", "low hum"],
    "word": ["beware", "home", "hungry", "seven", "remember", "quest"],
    "colour": ["pale green", "deep red", "faded yellow", "chalk white", "navy blue"],
    "picture": ["portrait", "landscape", "tapestry", "mirror", "calendar"],
}
FAMILIES = {
    "twx:cooking": "Find the {target} and eat it.",
    "twx:coin": "Find the {target} and pick it up.",
    "twx:treasure": "Bring the {target} back to where you started.",
}


# -- synthetic games ---------------------------------------------------------------------------------

@dataclass
class Room:
    name: str
    adjective: str
    details: list[str]
    furniture: dict[str, list[str]]  # furniture -> objects on it at the start
    exits: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # direction -> (room, door material)


@dataclass
class Game:
    family: str
    purpose: str
    target: str
    rooms: list[Room]


def make_game(family: str, seed: int) -> Game:
    """A seeded layout: 5-9 rooms on a random spanning tree, some doors, objects on the furniture."""
    rng = random.Random(f"{family}/{seed}")
    names = rng.sample(ROOMS, rng.randint(5, 9))
    rooms = []
    for name in names:
        details = [d.format(**{k: rng.choice(v) for k, v in FILLERS.items()}) for d in rng.sample(DETAILS, 2)]
        furniture = {f: [] for f in rng.sample(FURNITURE, rng.randint(1, 2))}
        rooms.append(Room(name, rng.choice(ADJECTIVES), details, furniture))
    for i in range(1, len(rooms)):  # connect each room to an earlier one through a free direction pair
        for _ in range(20):
            j, d = rng.randrange(i), rng.choice(list(DIRECTIONS))
            if d not in rooms[j].exits and DIRECTIONS[d] not in rooms[i].exits:
                door = rng.choice(MATERIALS) if rng.random() < 0.4 else None
                rooms[j].exits[d] = (i, door)
                rooms[i].exits[DIRECTIONS[d]] = (j, door)
                break
    objects = rng.sample(OBJECTS, rng.randint(4, 8))
    for obj in objects:
        room = rng.choice(rooms)
        room.furniture[rng.choice(list(room.furniture))].append(obj)
    target = rng.choice(objects)
    return Game(family, FAMILIES[family].format(target=target), target, rooms)


@dataclass(frozen=True)
class Play:
    """Where the player is: the state text is a function of this (so states repeat across runs)."""

    room: int = 0
    inventory: tuple[str, ...] = ()
    opened: frozenset[str] = frozenset()  # "room:direction"

    def render(self, game: Game) -> State:
        room = game.rooms[self.room]
        text = [f"-= {room.name.title()} =-", f"You are in {a(room.adjective)} {room.name}."] + room.details
        actions = ["look", "inventory"]
        for furniture, objs in room.furniture.items():
            here = [o for o in objs if o not in self.inventory]
            text.append(f"There is a {furniture} here. On the {furniture} you see "
                        + (", ".join(a(o) for o in here) if here else "nothing") + ".")
            actions += [f"take {o}" for o in here]
        for d, (_, door) in room.exits.items():
            if door and f"{self.room}:{d}" not in self.opened:
                text.append(f"There is a closed {door} door leading {d}.")
                actions.append(f"open {door} door")
            else:
                text.append(f"There is an {'open ' + door + ' door' if door else 'exit'} leading {d}.")
                actions.append(f"go {d}")
        text.append("You are carrying: " + (", ".join(a(o) for o in self.inventory) or "nothing") + ".")
        actions += [f"drop {o}" for o in self.inventory]
        return State(observation=" ".join(text), valid_actions=tuple(actions))

    def step(self, game: Game, action: str) -> Play:
        room = game.rooms[self.room]
        if action.startswith("take "):
            return Play(self.room, tuple(sorted(self.inventory + (action[5:],))), self.opened)
        if action.startswith("drop "):
            return Play(self.room, tuple(o for o in self.inventory if o != action[5:]), self.opened)
        if action.startswith("open "):
            d = next(d for d, (_, door) in room.exits.items() if door and action == f"open {door} door")
            back = game.rooms[room.exits[d][0]]
            return Play(self.room, self.inventory, self.opened | {f"{self.room}:{d}",
                        f"{room.exits[d][0]}:{next(b for b, (r, _) in back.exits.items() if r == self.room)}"})
        if action.startswith("go "):
            return Play(room.exits[action[3:]][0], self.inventory, self.opened)
        return self  # look, inventory


def play(game: Game, rng: random.Random, tid: str) -> Trajectory:
    """A biased random run of ~10 steps: it ends on taking the target (success) or at the step limit."""
    limit = rng.randint(7, 13)
    at, phi, steps = Play(), 2.0, []
    for i in range(limit):
        before = at.render(game)
        weights = [0.2 if a in ("look", "inventory") else 0.5 if a.startswith("drop") else 1.0
                   for a in before.valid_actions]
        action = rng.choices(before.valid_actions, weights)[0]
        at = at.step(game, action)
        won = action == f"take {game.target}"
        lost = not won and rng.random() < 0.01  # the odd fatal mistake
        after = at.render(game)
        after = after.model_copy(update={"done": won or lost, "success": won})
        new_phi = 10.0 if won else min(9.0, max(0.0, phi + rng.choice((-1.0, 0.0, 0.0, 1.0))))
        steps.append(Transition(index=i, before=before, action=Action(text=action), after=after,
                                score=PurposeScore(phi_before=phi, phi_after=new_phi)))
        phi = new_phi
        if won or lost:
            break
    return Trajectory(id=tid, purpose=game.purpose, task=Task(env_id=game.family, seed=0), steps=steps,
                      success=steps[-1].after.success)


def workload(size: int, seed: int) -> list[tuple[Game, Trajectory]]:
    """Trajectories until `size` steps; a game is played ~6 times, so early states repeat as in real play."""
    rng = random.Random(seed)
    games_per_family = max(2, size // (STEPS_PER_GAME * len(FAMILIES)))
    games = [make_game(f, s) for f in FAMILIES for s in range(games_per_family)]
    out, total = [], 0
    while total < size:
        game = rng.choice(games)
        traj = play(game, rng, f"t{len(out):06d}")
        out.append((game, traj))
        total += len(traj.steps)
    return out


def a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def perturb(state: State, rng: random.Random) -> State:
    """The same room, changed a little: one object swapped, or the inventory changed."""
    text = state.observation
    present = [o for o in OBJECTS if o in text]
    if present and rng.random() < 0.6:
        text = text.replace(present[0], rng.choice([o for o in OBJECTS if o not in present]), 1)
    else:
        head, _, _ = text.rpartition("You are carrying:")
        text = f"{head}You are carrying: {a(rng.choice(OBJECTS))}."
    return State(observation=text, valid_actions=state.valid_actions)


def queries(work: list[tuple[Game, Trajectory]], n: int, seed: int) -> list[tuple[str, Game, State]]:
    """(kind, game, state): half stored states, a quarter perturbed ones, a quarter from unplayed games."""
    rng = random.Random(seed + 1)
    stored = [(g, t.before) for g, t in ((g, t) for g, traj in work for t in traj.steps)]
    out = []
    for i in range(n):
        game, state = rng.choice(stored)
        if i % 4 in (0, 1):
            out.append(("stored", game, state))
        elif i % 4 == 2:
            out.append(("perturbed", game, perturb(state, rng)))
        else:
            fresh = make_game(rng.choice(list(FAMILIES)), 10_000 + i)
            fresh_traj = play(fresh, rng, "q")
            out.append(("new", fresh, rng.choice(fresh_traj.steps).before))
    return out


# -- measuring -----------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(size: int, n_queries: int, seed: int) -> dict:
    work = workload(size, seed)
    asked = queries(work, n_queries, seed)
    steps = sum(len(t.steps) for _, t in work)
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        store = ExperienceReplay(tmp)
        filling = 0.0
        for game, traj in tqdm(work, desc=f"fill {size}", unit="traj", file=sys.stderr, disable=None):
            started = time.perf_counter()
            store.add(traj, family=game.family)
            filling += time.perf_counter() - started
        stats = store.stats()
        megabytes = sum(p.stat().st_size for p in Path(tmp).glob(FILENAME + "*")) / 1e6
        for _, game, state in asked[:10]:  # warm the page cache: recall runs inside a live process
            store.recall(game.purpose, state, family=game.family)
        latencies, recalled, exact, top = [], 0, 0, {"stored": [], "perturbed": [], "new": []}
        for kind, game, state in asked:
            started = time.perf_counter()
            recall = store.recall(game.purpose, state, k=3, family=game.family)
            latencies.append((time.perf_counter() - started) * 1000)
            found = recall.encouraged + recall.discouraged
            recalled += bool(found)
            top[kind].append(max((r.similarity for r in found), default=0.0))
            exact += kind == "stored" and any(r.similarity >= 1.0 for r in found)
        store.close()
    ms = {kind: [lat for lat, (k, _, _) in zip(latencies, asked) if k == kind] for kind in top}
    target = TARGETS_P50_MS.get(size)
    p50 = statistics.median(latencies)
    return {
        "steps": steps, "trajectories": len(work), "states": stats["states"], "q_values": stats["q_values"],
        "games": len({id(g) for g, _ in work}), "db_mb": round(megabytes, 1),
        "fill_seconds": round(filling, 2), "steps_per_second": round(steps / filling),
        "trajectories_per_second": round(len(work) / filling, 1),
        "queries": len(asked), "p50_ms": round(p50, 3), "p99_ms": round(percentile(latencies, 0.99), 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "p50_ms_by_kind": {k: round(statistics.median(v), 3) for k, v in ms.items() if v},
        "recalled_something": round(recalled / len(asked), 3),
        "top_similarity_by_kind": {k: round(statistics.median(v), 3) for k, v in top.items() if v},
        "stored_found_exactly": round(exact / max(1, sum(k == "stored" for k, _, _ in asked)), 3),
        "target_p50_ms": target, "target_met": None if target is None else p50 < target,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="stored steps per store, comma-separated")
    parser.add_argument("--queries", type=int, default=300, help="recall() calls timed per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    report = {"sizes": [measure(size, args.queries, args.seed) for size in sizes], "families": len(FAMILIES),
              "sqlite": __import__("sqlite3").sqlite_version}
    if args.json:
        print(json.dumps(report))
        return report
    print(f"replay fill and recall on synthetic text-game play ({len(FAMILIES)} families, k=3, "
          f"{args.queries} queries: half stored states, half perturbed or new; SQLite {report['sqlite']})")
    head = ("steps", "trajs", "states", "MB", "fill s", "steps/s", "trajs/s", "p50 ms", "p99 ms", "found")
    print("".join(f"{h:>9}" for h in head) + "  target")
    for r in report["sizes"]:
        target = "-" if r["target_p50_ms"] is None else \
            f"p50 < {r['target_p50_ms']:g} ms: {'met' if r['target_met'] else 'MISSED'}"
        cells = (r["steps"], r["trajectories"], r["states"], r["db_mb"], r["fill_seconds"], r["steps_per_second"],
                 r["trajectories_per_second"], r["p50_ms"], r["p99_ms"], r["recalled_something"])
        print("".join(f"{c:>9}" for c in cells) + f"  {target}")
    for r in report["sizes"]:
        kinds = ", ".join(f"{k} {v} ms (top similarity {r['top_similarity_by_kind'][k]})"
                          for k, v in r["p50_ms_by_kind"].items())
        print(f"{r['steps']:>9} steps, p50 by query kind: {kinds}; stored states found exactly "
              f"{r['stored_found_exactly']:.0%}")
    return report


if __name__ == "__main__":
    main()
