"""Checkpoint: finished units survive, a half-written last line is dropped, a foreign job is refused."""

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
