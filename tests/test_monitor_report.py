"""The monitor's figures and report: a ledger built through the monitor's API (no LM), its figures counted by
hand, the page self-contained and escaped, and the page drawn by headless Chromium with its plots not empty."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from purpose_dspy.monitor import EventRecord, Monitor, TaskRecord
from purpose_dspy.monitor.report import monitor_figures, render_report

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_790_000_000.0
PROGRAM = "treasure-maze"
TRIGGERS = """
[[rule]]
name = "success-drop"
kind = "success_drop"
window = 10
min_sample = 10
ratio = 0.95
"""


def task(i: int, version: str | None, success: bool, *, program: str = PROGRAM, agreement: float | None = 0.8,
         phi: float | None = 2.0) -> TaskRecord:
    return TaskRecord(program=program, version=version, source="eval", task_id=f"t{i}", seed=i, split="test",
                      success=success, steps=5, phi_gain=phi, lm_calls=10 + i % 3, tokens=1000 + 10 * i, seconds=1.0,
                      critic_env_agreement=agreement, at=T0 + i)


def build(run_dir: Path, *, triggers: bool = True) -> Monitor:
    """20 zero-shot tasks (every other one solved), a promotion, 20 of v1 (all solved), a trigger event, then 10 of
    v1 all failed (which the success-drop rule fires on), a rollback and three audit lines."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if triggers:
        (run_dir / "triggers.toml").write_text(TRIGGERS)
    m = Monitor.open(run_dir)
    for i in range(20):
        m.ledger.record_task(task(i, None, i % 2 == 0))
    m.ledger.record_event(EventRecord(kind="promotion", program=PROGRAM, version="v1", detail={"reason": "5-0"},
                                      at=T0 + 19.5))
    m.audit.append("loop", "promoted treasure-maze v1", {"gate": {"wins": 5, "losses": 0}})
    for i in range(20, 40):
        m.ledger.record_task(task(i, "v1", True))
    m.ledger.record_event(EventRecord(kind="trigger", program=PROGRAM, version="v1", detail={"reason": "drift"},
                                      at=T0 + 39.5))
    for i in range(40, 50):
        m.ledger.record_task(task(i, "v1", False, agreement=None, phi=None))
    m.ledger.record_event(EventRecord(kind="rollback", program=PROGRAM, version="v1", detail={"reason": "worse"},
                                      at=T0 + 49.5))
    m.ledger.record_event(EventRecord(kind="memory_status", program=PROGRAM, detail={"card": "c1"}, at=T0 + 49.6))
    m.audit.append("loop", "rolled back treasure-maze to zero-shot", {"trigger": "success-drop"})
    m.audit.append("operator:ana", "approved v2", {"note": "looked fine"})
    return m


def test_figures_are_counted_per_version_with_rolling_means_and_marks(tmp_path):
    with build(tmp_path / "run") as m:
        f = monitor_figures(m, window=10)
    assert f["format_version"] == 1 and f["tasks"] == 50 and f["events"] == 4 and not f["paused"]
    p = f["programs"][PROGRAM]
    assert list(p["versions"]) == ["zero-shot", "v1"]
    zero, v1 = p["versions"]["zero-shot"], p["versions"]["v1"]
    assert (zero["n"], zero["successes"], zero["success_rate"]) == (20, 10, 0.5)
    assert (v1["n"], v1["successes"], v1["success_rate"], v1["rolling_success"]) == (30, 20, 0.6667, 0.0)
    assert v1["tokens_per_success"] == round(sum(1000 + 10 * i for i in range(20, 50)) / 20, 1)
    assert v1["phi_gain"] == 2.0 and v1["agreement"] == 0.8  # the 10 unscored tasks do not count as 0
    series = p["series"]
    assert [s["i"] for s in series] == list(range(1, 51))
    assert series[20]["version"] == "v1" and series[20]["rolling_success"] == 1.0  # a new version starts afresh
    assert series[44]["rolling_success"] == 0.5 and series[49]["rolling_success"] == 0.0
    assert series[19]["rolling_success"] == 0.5
    assert [(k["kind"], k["x"]) for k in p["marks"]] == [("promotion", 20), ("trigger", 40), ("rollback", 50)]
    assert [e["kind"] for e in p["events"]] == ["promotion", "trigger", "rollback", "memory_status"]
    assert [x["rule"] for x in p["firings"]] == ["success-drop"]
    assert f["audit"]["ok"] and f["audit"]["lines"] == 3 and f["audit"]["latest"][-1]["who"] == "operator:ana"
    json.dumps(f, allow_nan=False)  # JSON as it is


def test_a_stable_run_fires_nothing_and_the_latest_audit_lines_are_capped(tmp_path):
    with Monitor.open(tmp_path / "run") as m:
        for i in range(40):
            m.ledger.record_task(task(i, "v1", True))
        for k in range(15):
            m.audit.append("loop", f"change {k}", {})
        f = monitor_figures(m, audit_lines=12)
    assert f["programs"][PROGRAM]["firings"] == [] and f["programs"][PROGRAM]["marks"] == []
    assert [a["n"] for a in f["audit"]["latest"]] == list(range(4, 16)) and f["audit"]["lines"] == 15


def test_a_pause_marks_every_program_and_names_who_and_why(tmp_path):
    with Monitor.open(tmp_path / "run") as m:
        m.ledger.record_task(task(0, None, True, program="a"))
        m.ledger.record_task(task(1, None, True, program="b"))
        m.pause("operator:ana", "strange flags")
        f = monitor_figures(m)
        page = render_report(m)
    assert list(f["programs"]) == ["a", "b"]  # the pause's program "*" is no program of its own
    assert all([k["kind"] for k in p["marks"]] == ["pause"] for p in f["programs"].values())
    assert f["paused"] and f["paused_by"]["why"] == "strange flags"
    assert "PAUSED" in page and "strange flags" in page


def test_the_page_is_self_contained_and_escapes_what_the_ledger_holds(tmp_path):
    with build(tmp_path / "run") as m:
        m.ledger.record_task(task(60, "v<2>", True, program="<script>alert(1)</script> $x^2$"))
        page = render_report(m)
    assert page.startswith("<!doctype html>") and "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"<script|<link|@import|url\(|src=\"(?!data:image/png;base64,)", page, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; $x^2$" in page and "v&lt;2&gt;" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "audit verify: ok" in page and "rolled back treasure-maze to zero-shot" in page
    assert "success-drop" in page  # firing now


def test_a_broken_audit_log_is_named_on_the_page(tmp_path):
    with build(tmp_path / "run") as m:
        lines = m.audit.path.read_text().splitlines()
        lines[1] = lines[1].replace("rolled back", "rolled forward")
        m.audit.path.write_text("\n".join(lines) + "\n")
        f, page = monitor_figures(m), render_report(m)
    assert not f["audit"]["ok"] and f["audit"]["first_bad_line"] == 2
    assert "audit verify: BROKEN at line 2" in page
    with Monitor.open(tmp_path / "run") as m:
        m.audit.path.write_text(lines[0] + "\n{not json\n")
        f = monitor_figures(m)
    assert f["audit"]["first_bad_line"] == 2 and "is not JSON" in f["audit"]["reason"]
    assert f["audit"]["latest"] == [] and f["audit"]["read_error"].startswith("the lines cannot be read")


def test_without_matplotlib_the_page_keeps_its_tables_and_says_how_to_get_plots(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with build(tmp_path / "run") as m:
        page = render_report(m)
    assert "data:image/png" not in page and "pip install 'purpose-dspy[plot]'" in page and "<table>" in page


def test_an_empty_run_directory_renders(tmp_path):
    with Monitor.open(tmp_path / "run") as m:
        page = render_report(m)
    assert "no task and no event yet" in page and "audit verify: ok" in page


# --- the page in a real browser ---------------------------------------------------------------------------------
# A plot's colours, told apart by which channel leads by 30 (blending into the white background keeps the order):
# the zero-shot version's blue, v1's orange (red > green > blue), the promotion line's green.
HUES = {
    "zero-shot": lambda r, g, b: (b > g + 30) & (g > r),
    "v1": lambda r, g, b: (r > g + 30) & (g > b + 30),
    "promotion": lambda r, g, b: (g > r + 30) & (g > b + 30),
}


def _coloured(png: Path) -> dict[str, tuple[int, int, int]]:
    """Per hue: how many pixels of the screenshot have it, the height of the box around them, and the most of them
    in one column (a vertical line across the panels; no text makes one)."""
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB"), dtype=int)
    out = {}
    for name, hue in HUES.items():
        mask = hue(image[..., 0], image[..., 1], image[..., 2])
        ys, _ = np.nonzero(mask)
        out[name] = (len(ys), int(ys.max() - ys.min()) if len(ys) else 0, int(mask.sum(axis=0).max()))
    return out


def test_headless_chromium_draws_the_plots(tmp_path):
    """The README's picture is made by the same script (benchmarks/monitor_report.py)."""
    pytest.importorskip("matplotlib", reason="the plots need the plot extra (matplotlib)")
    pytest.importorskip("PIL", reason="reading the screenshot needs Pillow (installed with matplotlib)")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from monitor_report import find_chromium, screenshot
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    if find_chromium() is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install -y chromium)")
    build(tmp_path / "run").close()
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "monitor_report.py"), str(tmp_path / "run"),
                           "--out-dir", str(tmp_path / "out"), "--height", "1600"],
                          check=False, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    seen = _coloured(tmp_path / "out" / "report.png")
    for name in ("zero-shot", "v1"):  # each version's points and lines, over all five panels
        count, height, _ = seen[name]
        assert count > 1000 and height > 600, (name, seen[name])
    assert seen["promotion"][2] > 500, seen["promotion"]  # the promotion's line crosses the panels
    # The check can fail: the same page with its plots' bytes broken shows none of them.
    page = (tmp_path / "out" / "report.html").read_text()
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r"base64,[A-Za-z0-9+/]{200}", "base64,AAAA", page))
    screenshot(broken, tmp_path / "broken.png", height=1600)
    seen = _coloured(tmp_path / "broken.png")
    assert seen["zero-shot"][1] < 100 and seen["v1"][1] < 100 and seen["promotion"][2] < 50, seen
