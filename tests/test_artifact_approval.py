"""Pending versions (issue 20): written pending, never served until approved, never after a rejection; the
promotion log's format 2 beside format 1 lines and schema-1 manifests; approve / reject / promote / rollback
through the CLI, each a ledger event and an audit line with --monitor-dir.

The versions are one rule-LM compile (rule_lm.py) saved with a gate decision that promoted (5 dev seeds
gained, none lost), with or without `pending`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from rule_lm import rule_lms

from purpose_dspy import artifacts
from purpose_dspy.artifacts.manifest import _canonical, _sha
from purpose_dspy.artifacts.versions import promotion_events
from purpose_dspy.cli import main
from purpose_dspy.errors import ArtifactError, UsageError
from purpose_dspy.metrics import SplitMetrics, TaskScore
from purpose_dspy.monitor import Monitor
from purpose_dspy.programs import PurposeAgent
from purpose_dspy.tasksets import load_taskset
from purpose_dspy.teleprompt import CompileConfig, PurposeTeleprompter, task_examples
from purpose_dspy.teleprompt.gate import decide

TASKSET = "tasksets/treasure-maze.toml"
TS = load_taskset(TASKSET)


def _runs(successes: list[bool]) -> SplitMetrics:
    return SplitMetrics.of("dev", [TaskScore(task_id=f"t{i}", seed=i, success=s, phi_gain=0, steps=1, lm_calls=1,
                                             tokens=1, seconds=0) for i, s in enumerate(successes)])


@pytest.fixture(scope="module")
def compiled():
    lms, _ = rule_lms()
    tp = PurposeTeleprompter(lms, CompileConfig(progress=False))
    tp.compile(PurposeAgent(), trainset=task_examples(TS.tasks("train")[:2], max_steps=TS.max_steps),
               valset=task_examples(TS.tasks("dev")[:2], max_steps=TS.max_steps))
    report = tp.report.model_copy(update={"gate": decide(_runs([True] * 5), _runs([False] * 5))})
    return artifacts.components_of(tp.candidate, judge=tp.judge), report


def save(root, compiled, *, pending=False, promoted=True):
    components, report = compiled
    if not promoted:
        report = report.model_copy(update={"gate": decide(_runs([True] * 5), _runs([True] * 5))})
    return artifacts.save_artifact(root, components, report, lms={"actor": {"model": "local/x", "api_base": None}},
                                   taskset=TS, taskset_bytes=open(TASKSET, "rb").read(), pending=pending,
                                   log={"who": "improve", "why": {"trigger": "test"}})


@pytest.fixture
def two(tmp_path, compiled):
    """v1 promoted by its gate, v2 passed by its gate but written pending."""
    root = tmp_path / "maze"
    save(root, compiled)
    manifest = save(root, compiled, pending=True)
    assert manifest.version == 2 and manifest.approval == "required" and manifest.schema_version == 2
    return root


def test_a_pending_version_is_never_served_until_approved(two):
    assert artifacts.load(two).version == 1 and artifacts.promoted_stack(two) == [1]
    assert artifacts.status(two, 2)[0] == "pending" and artifacts.pending_versions(two) == [2]
    with pytest.raises(ArtifactError, match=r"@v2 is pending approval.*purpose-dspy artifacts approve .*maze@v2"):
        artifacts.load(f"{two}@v2")
    assert artifacts.load(f"{two}@v2", allow_unapproved=True).version == 2  # to inspect it
    with pytest.raises(UsageError, match="approve it instead"):
        artifacts.promote(f"{two}@v2")
    assert artifacts.approve(f"{two}@v2", "looked at the demos") == 2
    assert artifacts.load(two).version == 2 and artifacts.load(f"{two}@v2").version == 2
    line = promotion_events(two)[-1]
    assert (line["format"], line["event"], line["who"], line["approved"]) == (2, "promoted", "operator", True)
    with pytest.raises(UsageError, match="promoted already"):
        artifacts.approve(f"{two}@v2")


def test_a_rejected_version_is_never_served(two):
    assert artifacts.reject(f"{two}@v2", "demos copy a wall bump") == 2
    assert artifacts.load(two).version == 1 and artifacts.pending_versions(two) == []
    with pytest.raises(ArtifactError, match=r"was rejected by operator \(demos copy a wall bump\)"):
        artifacts.load(f"{two}@v2")
    with pytest.raises(UsageError, match="rejected already"):
        artifacts.approve(f"{two}@v2")
    with pytest.raises(UsageError, match="rejected already"):
        artifacts.reject(f"{two}@v2")
    artifacts.rollback(two)  # nothing promoted now: the rejected one is still not served
    with pytest.raises(ArtifactError, match="no promoted version"):
        artifacts.load(two)
    artifacts.promote(f"{two}@v2", "changed my mind")  # an operator may override by hand
    assert artifacts.load(two).version == 2


def test_only_a_pending_version_can_be_approved_or_rejected(tmp_path, compiled):
    root = tmp_path / "maze"
    save(root, compiled, promoted=False)
    with pytest.raises(UsageError, match="never pending.*artifacts promote"):
        artifacts.approve(f"{root}@v1")
    with pytest.raises(UsageError, match="needs a version"):
        artifacts.reject(root)
    kept = save(root, compiled, pending=True, promoted=False)  # the gate refused it: nothing to approve
    assert kept.approval is None and artifacts.status(root, 2)[0] == "kept"


def test_a_pending_version_stays_pending_when_its_log_line_is_gone(two):
    log = two / "promotions.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n")  # drop the pending line
    assert artifacts.status(two, 2)[0] == "kept"
    with pytest.raises(ArtifactError, match="pending approval"):  # the manifest still says it needs approval
        artifacts.load(f"{two}@v2")
    assert artifacts.pending_versions(two) == [2]


def as_schema_1(directory) -> None:
    """Rewrite a version's manifest as a schema-1 one (no `approval`), rehashed as the old code wrote it."""
    data = json.loads((directory / "manifest.json").read_text())
    del data["approval"]
    data["schema_version"] = 1
    data["manifest_hash"] = _sha(_canonical(data | {"manifest_hash": ""}))
    (directory / "manifest.json").write_bytes(_canonical(data))


def test_old_artifacts_and_log_lines_still_read_and_newer_ones_are_refused(tmp_path, compiled):
    shipped = tmp_path / "treasure-maze"
    # schema-1 manifests and a format-1 log line, as shipped: v1 and v2 (a `make demo` in this checkout adds more)
    shutil.copytree("compiled/treasure-maze", shipped, ignore=lambda d, names: [
        n for n in names if Path(d).name == "treasure-maze" and n.startswith("v") and n not in ("v1", "v2")])
    assert "format" not in (shipped / "promotions.jsonl").read_text()
    assert [m.schema_version for m in artifacts.versions(shipped)] == [1, 1]
    assert artifacts.promoted_stack(shipped) == [1] and artifacts.status(shipped, 2)[0] == "kept"
    root = tmp_path / "maze"
    save(root, compiled)
    as_schema_1(root / "v1")
    (root / "promotions.jsonl").write_text(json.dumps({"at": "x", "version": 1, "event": "promoted", "reason": "old"})
                                           + "\n")
    agent = artifacts.load(root)  # a schema-1 version promoted by a format-1 line loads as before
    assert agent.version == 1 and agent.manifest.schema_version == 1 and agent.manifest.approval is None
    save(root, compiled, pending=True)  # a format-2 line after it
    assert artifacts.load(root).version == 1 and artifacts.approve(f"{root}@v2") == 2
    with open(root / "promotions.jsonl", "a") as f:
        f.write(json.dumps({"at": "x", "version": 2, "event": "pending", "reason": "format 1 has no pending"}) + "\n")
    with pytest.raises(ArtifactError, match="unknown event 'pending' for log format 1"):
        artifacts.load(root)
    lines = (root / "promotions.jsonl").read_text().splitlines()[:-1]  # that line removed, a newer one instead
    (root / "promotions.jsonl").write_text("\n".join(lines + [json.dumps({"format": 3, "version": 2,
                                                                        "event": "promoted"})]) + "\n")
    with pytest.raises(ArtifactError, match="log format 3.*upgrade purpose-dspy"):
        artifacts.load(root)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_cli_approves_rejects_promotes_and_rolls_back_on_the_record(tmp_path, compiled):
    root, runs = tmp_path / "maze", tmp_path / "runs"
    save(root, compiled)
    save(root, compiled, pending=True)
    listed = invoke("artifacts", "list", root, "--json")
    assert [r["status"] for r in json.loads(listed.output)] == ["promoted", "pending"]
    refused = invoke("eval", f"{root}@v2", "--tasks", "1")
    assert refused.exit_code == 1 and "pending approval" in refused.output and len(refused.output.splitlines()) == 1
    result = invoke("artifacts", "approve", f"{root}@v2", "--reason", "read it", "--monitor-dir", runs)
    assert result.exit_code == 0 and "approved v2" in result.output, result.output
    save(root, compiled, pending=True)
    assert invoke("artifacts", "reject", f"{root}@v3", "--monitor-dir", runs).exit_code == 0
    assert invoke("artifacts", "rollback", root, "--monitor-dir", runs).output.strip() == "demoted v2; current: v1"
    assert invoke("artifacts", "promote", f"{root}@v2", "--monitor-dir", runs).exit_code == 0
    again = invoke("artifacts", "approve", f"{root}@v3")
    assert again.exit_code == 2 and "rejected already" in again.output
    with Monitor.open(runs) as m:
        events = m.ledger.events(program="maze")
        lines = m.audit.lines()
        assert m.audit.verify().ok
    assert [(e.kind, e.version) for e in events] == [("approval", "v2"), ("rejection", "v3"), ("rollback", "v2"),
                                                     ("promotion", "v2")]
    assert events[0].detail["served"] == "v2" and events[0].detail["replaced"] == 1
    assert events[2].detail["served"] == "v1"
    assert [line["who"] for line in lines] == ["operator"] * 4
    assert lines[0]["change"].startswith("maze v2 approved and promoted (replaces v1)")
    assert "rejected: never served" in lines[1]["change"] and lines[0]["why"]["reason"] == "read it"
    assert lines[0]["why"]["gate"]["wins"] == 5
