"""`purpose-dspy report | monitor | pause | resume | audit verify` through click's runner, on a ledger built through
the monitor's API (tests/test_monitor_report.py's `build`)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from test_monitor_report import PROGRAM, build

from purpose_dspy.cli import main
from purpose_dspy.monitor import Monitor


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_report_writes_the_page(tmp_path):
    build(tmp_path / "run").close()
    result = invoke("report", tmp_path / "run", "--out", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {tmp_path / 'r.html'}")
    page = (tmp_path / "r.html").read_text()
    assert "data:image/png;base64," in page and "audit verify: ok" in page


def test_monitor_prints_the_figures_and_json(tmp_path):
    build(tmp_path / "run").close()
    text = invoke("monitor", tmp_path / "run")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0].endswith("50 tasks, 4 events, not paused")
    assert any(line.split()[:4] == ["zero-shot", "20", "0.50", "0.50"] for line in lines)
    assert any(line.split()[:4] == ["v1", "30", "0.67", "0.00"] for line in lines)
    assert any(line.startswith("  FIRING success-drop: success 0/10") for line in lines)
    assert lines[-1] == "audit: ok: 3 lines, chain intact"
    data = json.loads(invoke("monitor", tmp_path / "run", "--json", "--window", "5").output)
    assert data["window"] == 5 and data["programs"][PROGRAM]["versions"]["v1"]["n"] == 30


def test_pause_and_resume_are_the_kill_switch_with_audit_lines(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()  # a fresh directory may be paused before anything ran
    result = invoke("pause", run, "--why", "odd flags", "--who", "operator:ana")
    assert result.exit_code == 0 and "stop at their next step" in result.output
    with Monitor.open(run) as m:
        assert m.paused() and m.audit.lines()[-1]["who"] == "operator:ana"
    assert "PAUSED (odd flags" in invoke("monitor", run).output
    assert invoke("resume", run).exit_code == 0
    with Monitor.open(run) as m:
        assert not m.paused() and [line["change"] for line in m.audit.lines()] == ["paused", "resumed"]
        assert m.audit.lines()[-1]["who"].startswith("operator")
    again = invoke("resume", run)
    assert again.exit_code == 0 and "not paused; nothing to do" in again.output


def test_pause_needs_a_reason(tmp_path):
    result = invoke("pause", tmp_path, "--why")
    assert result.exit_code == 2 and "--why" in result.output


def test_audit_verify_passes_an_untouched_log_and_names_the_first_broken_line(tmp_path):
    build(tmp_path / "run").close()
    ok = invoke("audit", "verify", tmp_path / "run")
    assert ok.exit_code == 0 and ok.output == "ok: 3 lines, chain intact\n"
    log = tmp_path / "run" / "audit.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], lines[2]]) + "\n")  # line 2 deleted
    bad = invoke("audit", "verify", tmp_path / "run")
    assert bad.exit_code == 1 and len(bad.output.strip().splitlines()) == 1, bad.output
    assert f"audit log {log} is broken: line 2 " in bad.output and "Traceback" not in bad.output
    as_json = invoke("audit", "verify", tmp_path / "run", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.output.splitlines()[0])["first_bad_line"] == 2


def test_a_directory_without_a_ledger_is_refused_in_one_line_and_left_alone(tmp_path):
    for command in (("report", tmp_path), ("monitor", tmp_path), ("resume", tmp_path), ("audit", "verify", tmp_path)):
        result = invoke(*command)
        assert result.exit_code == 2 and "holds no ledger.sqlite3" in result.output, (command, result.output)
        assert len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    missing = invoke("report", tmp_path / "nope")
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_every_command_explains_itself():
    for command in (("report",), ("monitor",), ("pause",), ("resume",), ("audit", "verify")):
        result = invoke(*command, "--help")
        assert result.exit_code == 0 and "DIR" in result.output, command
    assert "first broken line" in invoke("audit", "verify", "--help").output
