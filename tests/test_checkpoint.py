"""Checkpoint: finished units survive, a half-written last line is dropped, a torn header is moved aside (the job
and a compile start fresh), a foreign job or format is refused."""

from __future__ import annotations

import pytest

from purpose_dspy.teleprompt.checkpoint import FILENAME, Checkpoint
from purpose_dspy.errors import StoreCorruptError, UsageError


def test_units_survive_a_reopen_and_a_cut_off_last_line_is_dropped(tmp_path):
    ckpt = Checkpoint(tmp_path, "job-a")
    ckpt.put("train/1", {"ok": 1})
    ckpt.put("train/2", {"ok": 2})
    path = tmp_path / FILENAME
    with open(path, "a") as f:
        f.write('{"key": "train/3", "val')  # the process died mid-write
    again = Checkpoint(tmp_path, "job-a")
    assert again.get("train/1") == {"ok": 1} and again.get("train/2") == {"ok": 2} and "train/3" not in again
    again.put("train/3", {"ok": 3})  # appends after the truncated file, not onto the broken line
    assert Checkpoint(tmp_path, "job-a").get("train/3") == {"ok": 3}


def test_a_checkpoint_of_another_job_is_refused(tmp_path):
    Checkpoint(tmp_path, "job-a").put("x", 1)
    with pytest.raises(UsageError, match="different job"):
        Checkpoint(tmp_path, "job-b")


def test_a_broken_line_in_the_middle_is_corruption_not_an_interruption(tmp_path):
    ckpt = Checkpoint(tmp_path, "job-a")
    ckpt.put("a", 1)
    path = tmp_path / FILENAME
    path.write_text(path.read_text() + "garbage\n" + '{"key": "b", "value": 2}\n')
    with pytest.raises(StoreCorruptError, match=FILENAME):
        Checkpoint(tmp_path, "job-a")


def test_without_a_directory_nothing_is_written(tmp_path):
    ckpt = Checkpoint(None, "job")
    ckpt.put("a", 1)
    assert ckpt.get("a") == 1 and not list(tmp_path.iterdir())


def test_a_torn_header_is_moved_aside_and_the_job_starts_fresh(tmp_path, caplog):
    torn = '{"format": 1, "job": "jo'  # killed during the job's first write
    (tmp_path / FILENAME).write_text(torn)
    ckpt = Checkpoint(tmp_path, "job-a")
    [aside] = tmp_path.glob(f"{FILENAME}.torn-*")
    assert aside.read_text() == torn and len(ckpt) == 0
    assert "header line was torn" in caplog.text and aside.name in caplog.text
    ckpt.put("a", 1)
    assert Checkpoint(tmp_path, "job-a").get("a") == 1


@pytest.mark.parametrize("header", ['{"format": 99, "job": "job-a"}', "[1, 2]", '"a string"'])
def test_a_complete_header_of_another_format_is_still_refused(tmp_path, header):
    (tmp_path / FILENAME).write_text(header + "\n")
    with pytest.raises(StoreCorruptError, match="checkpoint format"):
        Checkpoint(tmp_path, "job-a")
    assert not list(tmp_path.glob("*.torn-*"))


def test_a_compile_whose_checkpoint_header_was_torn_starts_fresh(tmp_path):
    from rule_lm import rule_lms

    from purpose_dspy.programs import PurposeAgent
    from purpose_dspy.tasksets import load_taskset
    from purpose_dspy.teleprompt import CompileConfig, PurposeTeleprompter, task_examples

    ts = load_taskset("tasksets/treasure-maze.toml")
    train = task_examples(ts.tasks("train")[:2], max_steps=ts.max_steps)

    def compile_once():
        tp = PurposeTeleprompter(rule_lms()[0], CompileConfig(progress=False), run_dir=tmp_path)
        return tp, tp.compile(PurposeAgent(), trainset=train)

    first, program = compile_once()
    [path] = tmp_path.glob(f"*/{FILENAME}")
    path.write_text(path.read_text().split("\n")[0][:20])  # as if killed during the first write
    again, resumed = compile_once()
    assert again.report.resumed_units == 0 and again.report.run_dir == first.report.run_dir
    assert len(list(path.parent.glob(f"{FILENAME}.torn-*"))) == 1
    assert [d.toDict() for d in resumed.actor.act.demos] == [d.toDict() for d in program.actor.act.demos]
    assert compile_once()[0].report.resumed_units > 0  # the fresh checkpoint is resumed from as usual
