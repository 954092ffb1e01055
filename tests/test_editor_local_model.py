"""The editor on the real embedded model (SmolLM2, cache off): the loop, the verifier and the archive.

What the small model writes is not asserted (that is what benchmarks/editor.py measures); what is
asserted is that every round's deciding numbers are Python's, whatever the model claimed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from purpose_dspy.cli import main
from purpose_dspy.runtime.editing import edit
from purpose_dspy.programs.editor import Editor
from purpose_dspy.tasksets import load_taskset
from purpose_dspy.writing.archive import Archive
from purpose_dspy.writing.tasks import tasks_of

pytestmark = pytest.mark.local_lm
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def editor_lm():
    from purpose_dspy.lm import build_role_lms, load_lm_config

    return build_role_lms(load_lm_config(model="local/smollm2-135m", cache=False), roles=("editor",))["editor"]


def test_real_editor_rounds_are_scored_by_python_and_the_archive_follows_the_gate(editor_lm, tmp_path):
    task = tasks_of(load_taskset(ROOT / "tasksets/constrained-writing.toml"), "test")[0]
    editor = Editor(max_iterations=2)
    with Archive(tmp_path / "archive") as archive:
        result = edit(task, lm=editor_lm, editor=editor, archive=archive)
        assert 1 <= len(result.rounds) <= 2 and len(result.lm_calls) >= 2
        for r in result.rounds:
            assert r.constraints_met == [c.check(r.output) for c in task.constraints]
            assert r.composite == (editor.rubric.composite(r.features) if r.output.strip() else 0.0)
            assert r.passed == (bool(r.output.strip()) and r.composite >= editor.rubric.target
                                and all(r.constraints_met) and r.features["original"] == 1.0)
            # A usable critique has its claims checked (counts and one verdict per constraint); else the reason is kept.
            assert (r.claims is not None and len(r.checks) == 2 + len(task.constraints)) or r.critique_error or not r.output
        assert (len(archive) == 1) == result.passed
    with Archive(tmp_path / "archive") as reopened:  # what was admitted is on disk
        assert len(reopened) == (1 if result.passed else 0)


def test_edit_cli_json_on_the_real_model(tmp_path):
    request = "Write a tagline for a bookstore in exactly 12 words. Avoid the words 'we' and 'our'."
    out = CliRunner().invoke(main, ["edit", request, "--archive-dir", str(tmp_path / "a"), "--max-iterations", "1",
                                    "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["constraints"] == ["Use exactly 12 words.", "Do not use the words 'we', 'our'."]
    assert data["iterations"] == 1 and data["lm_calls"] >= 2
    assert data["passed"] == (data["archived"] is not None)
