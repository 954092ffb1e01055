"""The monitor's ledger on real SQLite: round trip, append-only, refused files, two writers, a SIGKILLed writer."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from purpose_dspy.errors import StoreCorruptError
from purpose_dspy.monitor import EventRecord, Monitor, TaskRecord
from purpose_dspy.monitor.ledger import FILENAME, SCHEMA_VERSION, Ledger

ROOT = Path(__file__).resolve().parent.parent


def task(i: int, program: str = "treasure-maze", version: str | None = "v1", **kw) -> TaskRecord:
    fields = dict(program=program, version=version, source="eval", task_id=f"treasure-maze/test/{i}", seed=i,
                  split="test", success=i % 3 != 0, steps=4 + i % 5, phi_gain=1.5, lm_calls=8, tokens=900 + i,
                  seconds=0.25, invalid_action_rate=0.25, revisit_rate=0.0, critic_flags=i % 2,
                  critic_env_agreement=0.75, stop_reason="done", at=1_700_000_000.0 + i)
    return TaskRecord(**{**fields, **kw})


def test_records_come_back_as_written_oldest_first_and_filtered(tmp_path):
    ledger = Monitor.open(tmp_path).ledger
    written = [task(i, version=f"v{1 + i % 2}") for i in range(6)] + [task(9, program="zero-shot", version=None)]
    ids = [ledger.record_task(r) for r in written]
    events = [EventRecord(kind="promotion", program="treasure-maze", version="v2", detail={"wins": 5, "p": 0.03}),
              EventRecord(kind="gate", program="other", version="v1", detail={"reason": "no dev split"})]
    event_ids = [ledger.record_event(e) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 7 and event_ids == sorted(event_ids)
    assert ledger.tasks() == written
    assert ledger.tasks("treasure-maze", "v2") == [r for r in written if r.version == "v2"]
    assert ledger.tasks("zero-shot") == written[-1:]
    assert ledger.events() == events and ledger.events(kind="gate") == events[1:]
    assert ledger.events(program="treasure-maze") == events[:1]
    ledger.close()
    reopened = Ledger(tmp_path)  # a second process would see the same
    assert reopened.tasks() == written and reopened.events() == events
    calls, tokens = reopened.spent_since(written[3].at)
    assert (calls, tokens) == (8 * 4, sum(r.tokens for r in written[3:]))


def test_the_past_cannot_be_changed_through_sql_and_the_schema_version_is_recorded(tmp_path):
    monitor = Monitor.open(tmp_path)
    monitor.ledger.record_task(task(1))
    monitor.ledger.record_event(EventRecord(kind="pause", program="*"))
    monitor.audit.append("operator", "noted", {})  # anchors its hash in the ledger
    db = sqlite3.connect(tmp_path / FILENAME)
    assert dict(db.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for sql in ("UPDATE tasks SET success = 0", "DELETE FROM tasks", "DELETE FROM events", "UPDATE audit_anchors SET n=2"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    assert db.execute("SELECT count(*) FROM tasks").fetchone()[0] == 1


@pytest.mark.parametrize("make", ["text", "foreign_sqlite", "newer_schema"])
def test_a_corrupt_or_foreign_file_is_refused_untouched_with_what_to_do(tmp_path, make):
    path = tmp_path / FILENAME
    if make == "text":
        path.write_bytes(b"these are not the rows you are looking for\n" * 100)
    elif make == "foreign_sqlite":
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE songs (title TEXT)")
        db.commit()
        db.close()
    else:
        Ledger(tmp_path).close()
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        db.commit()
        db.close()
    before = path.read_bytes()
    with pytest.raises(StoreCorruptError) as err:
        Monitor.open(tmp_path)
    message = str(err.value)
    assert "\n" not in message and FILENAME in message
    assert ("move it aside" in message or "fresh --monitor-dir" in message)
    assert path.read_bytes() == before


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from purpose_dspy.monitor import Ledger, TaskRecord
    run_dir, tag, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    ledger = Ledger(run_dir)
    while not go.exists():
        time.sleep(0.005)
    for i in range(n):
        row = ledger.record_task(TaskRecord(program=tag, version=None, source="run", task_id=f"t/{i}", success=True,
                                            steps=1, phi_gain=None, lm_calls=1, tokens=10, seconds=0.0))
        print(row, flush=True)
""")


def _writer(tmp_path: Path, tag: str, n: int, go: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), tag, str(n), str(go)],
                            stdout=subprocess.PIPE, text=True, env=env)


def test_two_processes_writing_one_ledger_lose_nothing(tmp_path):
    go = tmp_path / "go"
    procs = [_writer(tmp_path, tag, 150, go) for tag in ("a", "b")]
    time.sleep(1.0)  # both opened (and raced to create the schema) before the first write
    go.touch()
    printed = {tag: p.communicate(timeout=120)[0].split() for tag, p in zip("ab", procs)}
    assert [p.returncode for p in procs] == [0, 0]
    ledger = Ledger(tmp_path)
    for tag in "ab":
        got = ledger.tasks(tag)
        assert [r.task_id for r in got] == [f"t/{i}" for i in range(150)]  # every record, in its writer's order
    assert len(ledger.tasks()) == 300 and len(set(printed["a"]) | set(printed["b"])) == 300


def test_a_sigkilled_writer_loses_no_committed_record(tmp_path):
    go = tmp_path / "go"
    go.touch()
    proc = _writer(tmp_path, "killed", 100_000, go)
    committed = []
    while len(committed) < 200:
        committed.append(int(proc.stdout.readline()))  # printed only after record_task returned
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    ledger = Ledger(tmp_path)  # opens cleanly after the kill
    rows = {r[0] for r in ledger._read("SELECT id FROM tasks", ())}
    assert set(committed) <= rows
    assert len(ledger.tasks("killed")) >= len(committed)
    assert ledger.record_task(task(1)) > max(committed)  # and takes new records


def test_every_place_that_runs_tasks_records_them(tmp_path, monkeypatch):
    """`CompiledAgent.run` (through PURPOSE_DSPY_MONITOR), `evaluate_artifact`, `evaluate_program` (rule LM)."""
    from rule_lm import rule_lms

    from purpose_dspy import artifacts, make_env
    from purpose_dspy.errors import LimitStop
    from purpose_dspy.jobs import evaluate_artifact, evaluate_program
    from purpose_dspy.metrics import SplitMetrics, TaskScore
    from purpose_dspy.programs import PurposeAgent
    from purpose_dspy.tasksets import load_taskset
    from purpose_dspy.teleprompt import CompileConfig, PurposeTeleprompter, task_examples
    from purpose_dspy.teleprompt.gate import decide

    taskset_path = ROOT / "tasksets" / "treasure-maze.toml"
    ts = load_taskset(taskset_path)
    lms, _ = rule_lms()
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False))
    tp.compile(PurposeAgent(), trainset=task_examples(ts.tasks("train")[:2], max_steps=ts.max_steps),
               valset=task_examples(ts.tasks("dev")[:2], max_steps=ts.max_steps))
    runs = [TaskScore(task_id=f"t{i}", seed=i, success=s, phi_gain=0, steps=1, lm_calls=1, tokens=1, seconds=0)
            for i, s in enumerate([True] * 5)]
    lost = [r.model_copy(update={"success": False}) for r in runs]
    report = tp.report.model_copy(update={"gate": decide(SplitMetrics.of("dev", runs), SplitMetrics.of("dev", lost))})
    artifacts.save_artifact(tmp_path / "maze", artifacts.components_of(tp.candidate, judge=tp.judge), report,
                            lms={"actor": {"model": "local/x", "api_base": None}}, taskset=ts,
                            taskset_bytes=taskset_path.read_bytes())
    monkeypatch.setenv("PURPOSE_DSPY_MONITOR", str(tmp_path / "runs"))
    agent = artifacts.load(tmp_path / "maze")
    agent.run(None, make_env("treasure-maze"), lms=lms)
    monitor = Monitor.open(tmp_path / "runs")
    evaluate_artifact(tmp_path / "maze", "test", lms=lms, tasks=2, monitor=monitor, progress=False)
    evaluate_program(PurposeAgent(), ts, "test", lms=lms, tasks=2, monitor=monitor, progress=False)
    got = [(r.program, r.version, r.source, r.split) for r in monitor.ledger.tasks()]
    assert got == [("maze", "v1", "agent", "test")] + [("maze", "v1", "eval", "test")] * 2 + \
        [("zero-shot", None, "eval", "test")] * 2
    assert all(r.lm_calls > 0 and r.steps > 0 and r.phi_gain is None for r in monitor.ledger.tasks()[1:])

    (tmp_path / "capped").mkdir()
    (tmp_path / "capped" / "limits.toml").write_text("lm_calls_per_run = 1\n")
    capped = Monitor.open(tmp_path / "capped")
    with pytest.raises(LimitStop, match="lm_calls_per_run"):
        evaluate_program(PurposeAgent(), ts, "test", lms=lms, tasks=3, monitor=capped, progress=False)
    (rec,) = capped.ledger.tasks()  # the task under way when the limit struck is recorded; no other task started
    assert rec.stop_reason == "limit:lm_calls_per_run" and rec.steps == 1
