"""benchmarks/gate_regressions.py on the copy LM with small numbers (control flow only, not a measurement): the
JSON carries the command and every per-seed field, and each arm's rates are counted from its rows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--taskset", str(ROOT / "tasksets" / "treasure-maze.toml"), "--seeds", "2", "--train", "4", "--shift", "2",
        "--dev", "5", "--test", "4", "--min-support", "1,2", "--json"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gate_regressions", ROOT / "benchmarks" / "gate_regressions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("gate") / "gate_regressions.json"
    report = bench.main([*ARGS, "--out", str(out)])
    return report, json.loads(out.read_text())


def counted(rows, keep, count):
    kept = [r for r in rows if keep(r)]
    return sum(count(r) for r in kept), len(kept)


def test_the_json_names_its_command_and_says_it_is_not_a_measurement(run, capsys):
    report, written = run
    capsys.readouterr()
    assert written == json.loads(json.dumps(report))
    assert written["command"].startswith("python benchmarks/gate_regressions.py") and "--seeds 2" in written["command"]
    assert written["measurement"] is False and "NOT a measurement" in written["label"]
    assert [a["min_support"] for a in written["arms"]] == [1, 2]
    assert written["parent_test"]["n"] == 4
    assert len(written["code_sha256"]) == 16 and isinstance(written["code_changed_during_run"], bool)


def test_every_row_has_the_gate_the_dev_and_the_test_figures(run):
    for arm in run[1]["arms"]:
        assert [r["seed"] for r in arm["rows"]] == [0, 1]
        assert [r["train_seeds"] for r in arm["rows"]] == [[0, 1, 2, 3], [2, 3, 4, 5]]  # the window shifts by 2
        for r in arm["rows"]:
            assert set(r["gate"]) >= {"promoted", "wins", "losses", "n", "p", "stopped_early", "reason"}
            assert r["dev"]["n"] == 5 and r["test"]["n"] == 4 and r["dev_runs_agree"]
            assert r["test"]["parent"] == run[1]["parent_test"]["successes"]
            t = r["test"]
            assert t["candidate"] - t["parent"] == t["wins"] - t["losses"]
            assert r["worse_on_test"] == (t["candidate"] < t["parent"])
            assert r["old_rule"]["promoted"] == (r["dev"]["candidate"] >= r["dev"]["parent"])
            assert not r["gate"]["promoted"] or r["old_rule"]["promoted"]  # the gate is the stricter rule


def test_the_rates_are_counted_from_the_rows(run, bench):
    for arm in run[1]["arms"]:
        rows, s = arm["rows"], arm["summary"]
        assert s["compiles"] == len(rows) == 2
        promoted = s["promoted"]
        assert (promoted["k"], promoted["n"]) == counted(rows, lambda r: True, lambda r: r["gate"]["promoted"])
        worse = s["promoted_worse_on_test"]
        assert (worse["k"], worse["n"]) == counted(rows, lambda r: r["gate"]["promoted"], lambda r: r["worse_on_test"])
        old = s["old_rule"]
        assert (old["promoted_worse_on_test"]["k"], old["promoted_worse_on_test"]["n"]) == counted(
            rows, lambda r: r["old_rule"]["promoted"], lambda r: r["worse_on_test"])
        assert (old["ties_promoted"]["k"], old["ties_promoted"]["n"]) == counted(
            rows, lambda r: r["old_rule"]["promoted"], lambda r: r["old_rule"]["tie"])
        refused = s["refused_better_on_test"]
        assert (refused["k"], refused["n"]) == counted(rows, lambda r: not r["gate"]["promoted"],
                                                       lambda r: r["better_on_test"])
        for rate in (s["promoted"], worse, refused, old["promoted"], old["ties_promoted"]):
            assert rate["ci"] == list(bench.wilson_interval(rate["k"], rate["n"]))
            assert rate["rate"] == (round(rate["k"] / rate["n"], 4) if rate["n"] else None)


def test_the_pooled_rates_cover_every_arm(run, bench):
    arms, pooled = run[1]["arms"], run[1]["pooled"]
    assert pooled == bench.summary([r for arm in arms for r in arm["rows"]])
    assert pooled["compiles"] == 4
    assert pooled["promoted"]["k"] == sum(arm["summary"]["promoted"]["k"] for arm in arms)


def test_the_table_labels_the_scripted_lm(bench, run):
    text = bench.render(run[1])
    assert text.startswith("SCRIPTED LM") and "NOT a measurement" in text
    assert "min_support=1" in text and "old rule" in text and "all 4 compiles pooled" in text
