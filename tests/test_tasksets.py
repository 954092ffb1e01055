"""Task-set files: the shipped ones load and make tasks; malformed ones name the field and the line."""

from pathlib import Path

import pytest

from purpose_dspy.errors import UsageError
from purpose_dspy.tasksets import load_taskset

SHIPPED = sorted((Path(__file__).parent.parent / "tasksets").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_task_sets_load_and_make_tasks(path):
    taskset = load_taskset(path)
    assert taskset.name == path.stem and len(taskset.content_hash) == 64
    tasks = taskset.tasks("train")
    assert tasks and all(t.env_id == taskset.env and t.split == "train" for t in tasks)
    assert {"train", "dev", "test"} <= set(taskset.splits)


def test_the_three_families_the_issue_names_are_shipped():
    assert {p.stem for p in SHIPPED} >= {"treasure-maze", "twx-coin", "twx-cookingworld"}


def write(tmp_path, text):
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


GOOD = 'name = "x"\nenv = "treasure-maze"\nmax_steps = 5\n[splits]\ntrain = "0..3"\ntest = [7, 8]\n'


def test_ranges_lists_purpose_and_hash(tmp_path):
    taskset = load_taskset(write(tmp_path, GOOD + 'dev = [1]\n'))
    assert taskset.splits == {"train": (0, 1, 2, 3), "test": (7, 8), "dev": (1,)}
    assert [t.seed for t in taskset.tasks("test")] == [7, 8]
    assert taskset.purpose_for("Find the coin.") == "Find the coin."
    assert load_taskset(write(tmp_path, GOOD)).content_hash != load_taskset(write(tmp_path, GOOD + "# x\n")).content_hash


@pytest.mark.parametrize("text, field, line", [
    (GOOD.replace("max_steps = 5", "max_steps = 0"), "max_steps", 3),
    (GOOD.replace('train = "0..3"', 'train = "3..0"'), "splits", 4),
    (GOOD.replace('test = [7, 8]', 'test = [7, 7]'), "splits", 4),
    (GOOD.replace('name = "x"', 'name = "a b"'), "name", 1),
    ('purpose = "Do {thing}"\n' + GOOD, "purpose", 1),
    (GOOD + 'valid = [1]\n', "splits.valid", 7),
    (GOOD.replace('env = "treasure-maze"\n', 'env = "treasure-maze"\nmax_step = 3\n'), "max_step", 3),
])
def test_malformed_fields_are_named_with_their_line(tmp_path, text, field, line):
    with pytest.raises(UsageError) as info:
        load_taskset(write(tmp_path, text))
    message = str(info.value)
    assert f"t.toml:{line}:" in message and f"'{field}" in message


def test_missing_train_split_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(UsageError, match="'train' split"):
        load_taskset(write(tmp_path, GOOD.replace('train = "0..3"\n', '')))
    with pytest.raises(UsageError, match="not valid TOML"):
        load_taskset(write(tmp_path, "name = \n"))
    with pytest.raises(UsageError, match="cannot read task set"):
        load_taskset(tmp_path / "nope.toml")
    with pytest.raises(UsageError, match="no 'dev' split"):
        load_taskset(write(tmp_path, GOOD)).tasks("dev")
