"""ExperienceReplay: n-step Q backups, two-phase recall, persistence, corruption, kill -9 and four writers."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import string
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from purpose_dspy.errors import StoreBusyError, StoreCorruptError
from purpose_dspy.experience.replay import FILENAME, ExperienceReplay, ReplayConfig, replay_key
from purpose_dspy.safeguards.canonical import state_key
from purpose_dspy.types import Action, PurposeScore, State, Task, Trajectory, Transition

FAMILY = "twx:cooking"
PURPOSE = "Eat something from the kitchen."
TESTS = Path(__file__).parent

KITCHEN = ("You are in a kitchen. A fridge stands in the corner next to a wooden counter. "
           "On the counter you see a knife and a cookbook. Exits lead north and east.")
KITCHEN_SPOON = KITCHEN.replace("knife", "spoon")  # one word differs: similar, not the same
KITCHEN_ARMED = ("You are in a kitchen. A fridge stands in the corner next to a wooden counter. "
                 "On the counter you see a cookbook. Exits lead north and east. You carry a knife.")
FRIDGE = "The fridge is open. Inside the fridge you see a red apple and a carton of milk."
HOLDING = "You take the red apple from the fridge. You carry a red apple."
HALL = "You are in a dusty hallway. Portraits of stern ancestors line the walls. Exits lead south."
UNRELATED = "Zebras graze quietly beneath purple volcanoes while pelicans juggle."
VALID = ("open fridge", "take knife", "go north", "go east", "look")


def trajectory(states: list[str], actions: list[str | None], *, success: bool = False, done: bool = True,
               tid: str | None = None, phi: list[float] | None = None, valid: tuple[str, ...] = (),
               env_id: str = FAMILY, purpose: str = PURPOSE) -> Trajectory:
    """A hand-built episode: states[i] --actions[i]--> states[i+1]; the last state ends it when `done`."""
    assert len(states) == len(actions) + 1
    phi = phi or [5.0] * len(states)
    steps = [
        Transition(
            index=i,
            before=State(observation=states[i], valid_actions=valid),
            action=Action(text=a) if a is not None else None,
            after=State(observation=states[i + 1], valid_actions=valid,
                        done=done and i == len(actions) - 1, success=success and i == len(actions) - 1),
            score=PurposeScore(phi_before=phi[i], phi_after=phi[i + 1]),
        )
        for i, a in enumerate(actions)
    ]
    extra = {"id": tid} if tid else {}
    return Trajectory(purpose=purpose, task=Task(env_id=env_id), steps=steps, success=success, **extra)


def room(n: int) -> str:
    return f"You are in room {n} of the manor. A {['red', 'blue', 'green'][n % 3]} door leads onwards."


def game_trajectory(i: int, steps: int = 8) -> Trajectory:
    """Trajectory number `i` of a writer process: rooms repeat across trajectories; lengths vary."""
    n = 3 + i % steps
    return trajectory([room((i + k) % 7) for k in range(n + 1)], [f"go {'nsew'[(i + k) % 4]}" for k in range(n)],
                      success=i % 2 == 0, done=i % 3 != 2, tid=f"w{i:05d}")


def shared_trajectory(proc: int, j: int) -> Trajectory:
    """5 steps: everyone starts at room 0 with `go north`, then takes one of two doors in the hall."""
    states = [room(0), HALL] + [room(10 + (proc * 30 + j + k) % 9) for k in range(4)]
    actions = ["go north", ["open door", "go west"][j % 2], "go east", "go south", "look"]
    return trajectory(states, actions, success=j % 3 == 0, tid=f"p{proc}-{j:02d}")


def kitchen_store(directory: Path | None = None, **kwargs) -> tuple[ExperienceReplay, dict[str, Trajectory]]:
    """Kitchen experience: a short win, a longer win, a failed loop, a run cut short, a look-alike state."""
    trajs = {
        "win": trajectory([KITCHEN, FRIDGE, HOLDING, "You eat the apple. You won!"],
                          ["open fridge", "take apple", "eat apple"], success=True, tid="win"),
        "long": trajectory([KITCHEN, KITCHEN_ARMED, FRIDGE + " You carry a knife.", HOLDING + " You carry a knife.",
                            HOLDING + " The apple is sliced.", "You eat the sliced apple. You won!"],
                           ["take knife", "open fridge", "take apple", "slice apple", "eat apple"],
                           success=True, tid="long"),
        "loop": trajectory([KITCHEN, HALL, KITCHEN, HALL, KITCHEN],
                           ["go north", "go south", "go north", "go south"], success=False, tid="loop"),
        "cut": trajectory([KITCHEN, FRIDGE], ["open fridge"], done=False, tid="cut"),  # step limit: no win
        "east": trajectory([KITCHEN_ARMED, "You are in a garden. Nothing grows here."], ["go east"],
                           success=False, done=False, tid="east"),
    }
    store = ExperienceReplay(directory, **kwargs)
    for t in trajs.values():
        store.add(t)
    return store, trajs


def hand_rewards(cfg: ReplayConfig, n: int, end: float) -> list[float]:
    """Step rewards with Φ flat: -step_cost each, plus the ending reward on the last step."""
    return [-cfg.step_cost] * (n - 1) + [end - cfg.step_cost]


# -- Q backups -------------------------------------------------------------------------------------

def test_success_gives_the_first_action_positive_q_and_a_failed_loop_negative():
    store, _ = kitchen_store()
    assert store.q_value(PURPOSE, KITCHEN, "open fridge", family=FAMILY)[0] > 0
    assert store.q_value(PURPOSE, KITCHEN, "take knife", family=FAMILY)[0] > 0
    q, visits = store.q_value(PURPOSE, KITCHEN, "go north", family=FAMILY)
    assert q < 0 and visits == 2  # the loop took it twice
    cut = trajectory([room(1), room(2), room(1), room(2)], ["go n", "go s", "go n"], done=False)
    store.add(cut)  # a loop cut by the step limit also learns it was a bad idea
    assert store.q_value(PURPOSE, room(1), "go n", family=FAMILY)[0] < 0


def test_q_values_follow_the_n_step_formula_by_hand():
    cfg = ReplayConfig(gamma=0.5, n_steps=2, step_cost=0.1, success_reward=1.0, failure_reward=-1.0)
    store = ExperienceReplay(config=cfg)
    s = ["s0 cellar", "s1 stairs", "s2 attic", "s3 roof"]
    store.add(trajectory(s, ["up", "up", "jump"], success=True))
    r0, r1, r2 = hand_rewards(cfg, 3, cfg.success_reward)  # -0.1, -0.1, 0.9
    q2 = r2  # one step left: no bootstrap past the end
    q1 = r1 + cfg.gamma * r2  # n=2 steps reach the end exactly
    q0 = r0 + cfg.gamma * r1 + cfg.gamma**2 * q2  # bootstraps from max Q(s2), already backed up
    assert (q0, q1, q2) == pytest.approx((0.075, 0.35, 0.9))
    assert store.q_value(PURPOSE, s[2], "jump", family=FAMILY) == (pytest.approx(q2), 1)
    assert store.q_value(PURPOSE, s[1], "up", family=FAMILY) == (pytest.approx(q1), 1)
    assert store.q_value(PURPOSE, s[0], "up", family=FAMILY) == (pytest.approx(q0), 1)

    # cut by the step limit (not done): the last state's max Q still counts, and no ending reward
    t = ["t0 garden", "t1 path", s[2]]
    store.add(trajectory(t, ["walk", "climb"], done=False))
    g1 = -cfg.step_cost + cfg.gamma * q2
    g0 = -cfg.step_cost + cfg.gamma * -cfg.step_cost + cfg.gamma**2 * q2
    assert store.q_value(PURPOSE, t[1], "climb", family=FAMILY)[0] == pytest.approx(g1)
    assert store.q_value(PURPOSE, t[0], "walk", family=FAMILY)[0] == pytest.approx(g0)

    # a Φ rise pays phi_weight per point; a fall costs nothing extra
    store.add(trajectory(["u0 lab", "u1 lab lit", "u2 lab dark"], ["light", "smash"], done=False, phi=[2, 5, 1]))
    assert store.q_value(PURPOSE, "u1 lab lit", "smash", family=FAMILY)[0] == pytest.approx(-cfg.step_cost)
    assert store.q_value(PURPOSE, "u0 lab", "light", family=FAMILY)[0] == pytest.approx(
        cfg.phi_weight * 3 - cfg.step_cost + cfg.gamma * -cfg.step_cost)


def test_visits_average_the_returns():
    cfg = ReplayConfig()  # n_steps=3 covers both 2-step episodes: no bootstrapping
    store = ExperienceReplay(config=cfg)
    store.add(trajectory([KITCHEN, FRIDGE, "You won"], ["open fridge", "eat"], success=True))
    store.add(trajectory([KITCHEN, FRIDGE, "You starved"], ["open fridge", "wait"], success=False))
    win = -cfg.step_cost + cfg.gamma * (cfg.success_reward - cfg.step_cost)
    lose = -cfg.step_cost + cfg.gamma * (cfg.failure_reward - cfg.step_cost)
    assert store.q_value(PURPOSE, KITCHEN, "open fridge", family=FAMILY) == (pytest.approx((win + lose) / 2), 2)


def test_adding_the_same_trajectory_twice_stores_it_once():
    store = ExperienceReplay()
    t = trajectory([KITCHEN, FRIDGE, "You won"], ["open fridge", "eat"], success=True)
    assert store.add(t) == 2
    before = (store.stats(), store.q_value(PURPOSE, KITCHEN, "open fridge", family=FAMILY))
    assert store.add(t) == 0
    assert (store.stats(), store.q_value(PURPOSE, KITCHEN, "open fridge", family=FAMILY)) == before
    assert before[0]["trajectories"] == 1 and before[1][1] == 1


def test_a_step_without_an_action_is_stored_but_learns_nothing():
    cfg = ReplayConfig()
    store = ExperienceReplay(config=cfg)
    assert store.add(trajectory([KITCHEN, KITCHEN, "You won"], [None, "win"], success=True)) == 2
    assert store.stats()["q_values"] == 1
    assert store.q_value(PURPOSE, KITCHEN, "win", family=FAMILY) == (pytest.approx(cfg.success_reward - cfg.step_cost), 1)


# -- keys ------------------------------------------------------------------------------------------

class Clocked:
    """An environment whose observation carries a move counter, declared the way environments declare
    it (`volatile_patterns`, see purpose_dspy/environments/base.py): it changes when the world does not."""

    env_id = "clocked"
    volatile_patterns: tuple[str, ...] = (r"Moves: \d+\.",)


def test_observations_differing_only_in_a_volatile_field_share_one_replay_key():
    env = Clocked()
    early = "Moves: 3. You are in a kitchen. A fridge stands in the corner."
    late = "Moves: 17.  You are in a kitchen. A fridge stands in the corner."
    elsewhere = "Moves: 3. You are in a dusty hallway."
    volatile = env.volatile_patterns
    assert replay_key(env.env_id, PURPOSE, early, volatile=volatile) == replay_key(env.env_id, PURPOSE, late, volatile=volatile)
    assert replay_key(env.env_id, PURPOSE, early, volatile=volatile) != replay_key(env.env_id, PURPOSE, elsewhere, volatile=volatile)
    assert replay_key(env.env_id, PURPOSE, early) != replay_key(env.env_id, PURPOSE, late)  # undeclared: two states
    # the critic's Φ key agrees on what is the same state
    assert state_key("critic", PURPOSE, early, volatile) == state_key("critic", PURPOSE, late, volatile)

    store = ExperienceReplay()
    store.declare_volatile(env.env_id, env.volatile_patterns)
    store.add(trajectory([early, "Moves: 4. You eat the apple. You won!"], ["open fridge"], success=True,
                         env_id=env.env_id))
    assert store.q_value(PURPOSE, late, "open fridge", family=env.env_id)[1] == 1
    here = store.recall(PURPOSE, State(observation=late), family=env.env_id)
    assert here.encouraged[0].action == "open fridge" and here.encouraged[0].similarity == 1.0
    assert here.encouraged[0].on_success_path
    assert store.q_value(PURPOSE, late, "open fridge", family="other") is None


# -- recall ----------------------------------------------------------------------------------------

def test_recall_in_the_same_state():
    store, trajs = kitchen_store()
    recall = store.recall(PURPOSE, State(observation=KITCHEN, valid_actions=VALID), k=5, family=FAMILY)
    here = [r for r in recall.encouraged if r.similarity == 1.0]
    assert recall.encouraged[0].similarity == 1.0
    assert [r.action for r in here] == ["open fridge", "take knife"]  # the shorter win first
    assert here[0].q > here[1].q > 0
    assert here[0].q == pytest.approx(store.q_value(PURPOSE, KITCHEN, "open fridge", family=FAMILY)[0], abs=1e-4)
    assert here[0].continuation == ("take apple", "eat apple")  # from the win, not the shorter cut run
    assert here[1].continuation == ("open fridge", "take apple", "slice apple", "eat apple")
    assert here[0].visits == 2 and here[0].trajectories == ("win", "cut")  # successes first
    assert here[1].trajectories == ("long",)
    assert recall.discouraged and all(r.q <= 0 for r in recall.discouraged)
    assert recall.discouraged[0].action == "go north" and recall.discouraged[0].similarity == 1.0
    # `go east` was only taken in the look-alike state: shown from there, but still untried here
    east = [r for r in recall.discouraged if r.action == "go east"]
    assert east and east[0].similarity < 1.0 and east[0].trajectories == ("east",)
    assert recall.untried == ("go east", "look")
    assert "worked here: open fridge" in recall.render()


def test_provenance_names_each_trajectory_once():
    store, _ = kitchen_store()
    recall = store.recall(PURPOSE, State(observation=KITCHEN, valid_actions=VALID), family=FAMILY)
    assert recall.discouraged[0].action == "go north"
    assert recall.discouraged[0].trajectories == ("loop",)  # the loop took `go north` here twice


def test_recall_returns_only_actions_valid_now():
    store, _ = kitchen_store()
    recall = store.recall(PURPOSE, State(observation=KITCHEN, valid_actions=("take knife", "look")), k=5,
                          family=FAMILY)
    assert [r.action for r in recall.encouraged + recall.discouraged] == ["take knife"]
    assert recall.untried == ("look",)
    everything = store.recall(PURPOSE, State(observation=KITCHEN), k=10, family=FAMILY)  # nothing listed: all
    assert {"open fridge", "take knife", "go north", "go east"} <= {
        r.action for r in everything.encouraged + everything.discouraged}
    assert everything.untried == ()


def test_recall_in_a_similar_state_unrelated_state_and_other_family():
    store, _ = kitchen_store()
    similar = store.recall(PURPOSE, State(observation=KITCHEN_SPOON, valid_actions=VALID), k=5, family=FAMILY)
    assert similar.encouraged and similar.encouraged[0].action == "open fridge"
    assert all(0 < r.similarity < 1 for r in similar.encouraged + similar.discouraged)
    assert similar.encouraged[0].state.startswith("You are in a kitchen")
    assert all(r.continuation == () for r in similar.encouraged)  # continuations only from the same state
    assert similar.untried == VALID  # never acted in this very state
    assert "in a similar state" in similar.render()
    loose = store.recall(PURPOSE, State(observation=KITCHEN_SPOON), k=10, family=FAMILY)
    assert "go south" not in {r.action for r in loose.encouraged + loose.discouraged}  # the hall: below min_similarity

    unrelated = store.recall(PURPOSE, State(observation=UNRELATED, valid_actions=VALID), family=FAMILY)
    assert (unrelated.encouraged, unrelated.discouraged) == ((), ())
    other = store.recall(PURPOSE, State(observation=KITCHEN, valid_actions=VALID), family="scienceworld:boil")
    assert (other.encouraged, other.discouraged, other.untried) == ((), (), VALID)


def test_a_state_sharing_only_boilerplate_is_not_nearly_the_same():
    store, _ = kitchen_store()
    cellar = store.recall(PURPOSE, State(observation="You are in a cellar. Exits lead north."), k=5, family=FAMILY)
    assert all(r.similarity < 0.5 for r in cellar.encouraged + cellar.discouraged)


def test_another_familys_look_alikes_do_not_crowd_out_this_familys_states():
    store, _ = kitchen_store()
    for i in range(40):  # closer to the query than anything of FAMILY, and more than `candidates`
        store.add(trajectory([KITCHEN_SPOON + f" Clock {i}.", "You wait."], ["wait"], env_id="twx:other"))
    recall = store.recall(PURPOSE, State(observation=KITCHEN_SPOON, valid_actions=VALID), family=FAMILY)
    assert recall.encouraged and recall.encouraged[0].action == "open fridge"


def letter_counts(texts: list[str]) -> list[list[float]]:
    """A deterministic fake embedder: how often each letter a-z occurs."""
    return [[float(t.lower().count(c)) for c in string.ascii_lowercase] for t in texts]


def test_dense_phase_one_recalls_the_nearest_state():
    calls: list[list[str]] = []

    def embedder(texts: list[str]) -> list[list[float]]:
        calls.append(list(texts))
        return letter_counts(texts)

    store = ExperienceReplay(embedder=embedder)
    states = {"zoo": "zzz zebra zone zigzag", "moon": "mmm moon mammal momma", "kayak": "kkk kiosk kayak kook"}
    for name, text in states.items():
        store.add(trajectory([text, "the end"], [f"act {name}"], success=True, tid=name))
    assert calls[0] == ["zzz zebra zone zigzag"]

    anagram = "arbez zzz enoz gazgiz"  # no word in common with any state: only the vectors can find it
    assert ExperienceReplay().recall(PURPOSE, State(observation=anagram), family=FAMILY).encouraged == ()
    near = store.recall(PURPOSE, State(observation=anagram), k=5, family=FAMILY)
    best = max(near.encouraged + near.discouraged, key=lambda r: r.similarity)
    assert best.action == "act zoo" and best.trajectories == ("zoo",) and 0.9 < best.similarity < 1.0
    others = [r.similarity for r in near.encouraged if r.action != "act zoo"]
    assert all(store.config.min_similarity <= sim < best.similarity for sim in others)  # the rest: lower, or left out
    far = store.recall(PURPOSE, State(observation="qqq xxx jjj"), family=FAMILY)
    assert far.encouraged == () and far.discouraged == ()  # nothing near enough: nothing recalled
    exact = store.recall(PURPOSE, State(observation=states["kayak"]), k=5, family=FAMILY)
    assert exact.encouraged[0].action == "act kayak" and exact.encouraged[0].similarity == 1.0


# -- persistence and corruption --------------------------------------------------------------------

def recall_dump(store: ExperienceReplay, text: str) -> dict:
    return store.recall(PURPOSE, State(observation=text, valid_actions=VALID), k=5, family=FAMILY).model_dump(
        exclude={"seconds"})


def test_close_and_reopen_keeps_stats_and_recall(tmp_path):
    store, _ = kitchen_store(tmp_path)
    stats, here, similar = store.stats(), recall_dump(store, KITCHEN), recall_dump(store, KITCHEN_SPOON)
    store.close()
    again = ExperienceReplay(tmp_path)
    assert again.stats() == stats == {"trajectories": 5, "steps": 14, "states": 8, "q_values": 11, "successes": 2}
    assert recall_dump(again, KITCHEN) == here and recall_dump(again, KITCHEN_SPOON) == similar
    assert again.trajectory_ids() == ["win", "long", "loop", "cut", "east"]


def test_a_corrupt_file_says_use_a_fresh_directory(tmp_path):
    garbage = b"this is no database\x00\xff" * 400
    (tmp_path / FILENAME).write_bytes(garbage)
    with pytest.raises(StoreCorruptError, match="fresh directory"):
        ExperienceReplay(tmp_path)
    assert (tmp_path / FILENAME).read_bytes() == garbage  # nothing "repaired"


def test_an_unknown_format_is_refused(tmp_path):
    kitchen_store(tmp_path)[0].close()
    with sqlite3.connect(tmp_path / FILENAME) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='format'")
    db.close()
    with pytest.raises(StoreCorruptError, match="format 99.*fresh directory"):
        ExperienceReplay(tmp_path)


def digest(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return hashlib.sha256(repr(db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall())
                              .encode()).hexdigest()


def test_a_store_of_another_format_is_left_untouched(tmp_path):
    future = tmp_path / FILENAME
    with sqlite3.connect(future) as db:  # a later version's store: other tables
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('format', '2')")
        db.execute("CREATE TABLE episodes (id TEXT PRIMARY KEY)")
    db.close()
    before = digest(future)
    with pytest.raises(StoreCorruptError, match="format 2"):
        ExperienceReplay(tmp_path)
    assert digest(future) == before


# -- crash safety and several writers --------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from test_replay import game_trajectory
    from purpose_dspy.experience.replay import ExperienceReplay

    store = ExperienceReplay(sys.argv[2])
    i = int(sys.argv[3])
    while True:
        store.add(game_trajectory(i, steps=40))
        print(f"w{i:05d}", flush=True)  # only once add() has returned: committed
        i += 1
""")


def check_whole(directory: Path) -> dict[str, int]:
    """Steps per stored trajectory; fails on any half-written trajectory or Q-value out of step."""
    with sqlite3.connect(directory / FILENAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        declared = dict(db.execute("SELECT id, steps FROM trajectories"))
        stored = dict(db.execute("SELECT trajectory_id, COUNT(*) FROM steps GROUP BY trajectory_id"))
        visits = db.execute("SELECT SUM(visits) FROM q_values").fetchone()[0]
        acted = db.execute("SELECT COUNT(*) FROM steps WHERE action IS NOT NULL").fetchone()[0]
    db.close()
    assert stored == declared  # no steps without their trajectory, no trajectory missing steps
    assert visits == acted  # every step's backup landed with it
    return declared


def test_sigkill_mid_batch_loses_nothing_committed_and_writes_nothing_half(tmp_path):
    reported: list[str] = []
    for round_ in range(2):  # the second writer continues the store the first one was killed on
        first = str(len(reported) + 10_000 * round_)
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(TESTS), str(tmp_path), first],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            target = len(reported) + 20
            while len(reported) < target:
                line = proc.stdout.readline()
                assert line, f"writer died: {proc.stderr.read()}"
                reported.append(line.strip())
            time.sleep(0.013 * (round_ + 1))  # land somewhere inside a later add()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            # Read the rest through the same text buffer readline() used (communicate() would read the
            # raw pipe and skip lines readline() had already buffered).
            out = proc.stdout.read()
        finally:
            proc.kill()
        assert proc.returncode == -signal.SIGKILL
        reported += out.split()

    declared = check_whole(tmp_path)
    missing = [tid for tid in reported if tid not in declared]
    assert not missing, f"{len(missing)} trajectories reported as committed are gone: {missing[:5]}"
    assert len(set(declared) - set(reported)) <= 2  # at most the one committed as each writer was killed
    for tid in reported:
        assert declared[tid] == len(game_trajectory(int(tid[1:]), steps=40).steps)
    store = ExperienceReplay(tmp_path)  # and it opens and writes normally afterwards
    assert store.add(game_trajectory(99_999)) > 0


FOUR = textwrap.dedent("""
    import pathlib, sys, time
    sys.path.insert(0, sys.argv[1])
    from test_replay import shared_trajectory
    from purpose_dspy.experience.replay import ExperienceReplay

    root, proc = pathlib.Path(sys.argv[2]), int(sys.argv[3])
    (root / f"ready{proc}").touch()
    while not (root / "go").exists():
        time.sleep(0.005)
    store = ExperienceReplay(root / "store")  # all four open a fresh directory at once
    for j in range(30):
        store.add(shared_trajectory(proc, j))
""")


def test_four_processes_writing_one_store_lose_nothing(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", FOUR, str(TESTS), str(tmp_path), str(p)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in range(4)]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{p}").exists() for p in range(4)):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a writer did not start"
            time.sleep(0.01)
        (tmp_path / "go").touch()
        errors = [p.communicate(timeout=60)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0] * 4, errors

    store = ExperienceReplay(tmp_path / "store")
    stats = store.stats()
    assert (stats["trajectories"], stats["steps"], stats["successes"]) == (120, 600, 40)
    assert store.q_value(PURPOSE, room(0), "go north", family=FAMILY)[1] == 120
    assert store.q_value(PURPOSE, HALL, "open door", family=FAMILY)[1] == 60
    assert store.q_value(PURPOSE, HALL, "go west", family=FAMILY)[1] == 60
    assert len(check_whole(tmp_path / "store")) == 120


def test_a_store_held_by_another_writer_is_a_clear_busy_error_and_loses_nothing(tmp_path):
    store = ExperienceReplay(tmp_path, busy_timeout=0.2)
    store.add(game_trajectory(1))
    holder = sqlite3.connect(tmp_path / FILENAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    with pytest.raises(StoreBusyError, match="locked by another process"):
        store.add(game_trajectory(2))
    holder.execute("ROLLBACK")
    holder.close()
    assert store.add(game_trajectory(2)) > 0  # the same call succeeds once the lock is gone
    assert store.stats()["trajectories"] == 2
