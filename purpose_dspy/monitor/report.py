"""The monitor's figures and its one-page report.

`monitor_figures(monitor)` reads the ledger, the trigger rules and the audit log into one JSON-able dict
(what `purpose-dspy monitor` prints, and its --json); `render_report(monitor)` draws the same figures
into one self-contained HTML page: no script, no stylesheet, font or image from anywhere else, and a
Content-Security-Policy that lets the browser fetch nothing.

The plots are matplotlib PNGs inlined as base64 (the `plot` extra), one per program: a few lines per
panel where hand-written SVG would need its own scales, ticks and legends, and a PNG stays the same
size however many tasks the ledger holds (an SVG grows by a path per point). Without matplotlib the
page keeps its tables and says how to get the plots.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any

from purpose_dspy.errors import PurposeDspyError
from purpose_dspy.text import one_line

FORMAT_VERSION = 1
WINDOW = 10  # tasks in a rolling mean, per program version
LATEST_AUDIT = 12  # audit lines on the page and in the figures
LATEST_EVENTS = 20
ZERO_SHOT = "zero-shot"
_ALL = ("", "*")  # the program of an event about the whole run directory (a pause, a resume)
# Event kinds drawn on the plots as vertical lines: colour and line style (none a version's colour).
MARKED = {
    "promotion": ("#2ca02c", "-"), "rollback": ("#d62728", "--"), "trigger": ("#e377c2", ":"),
    "pending": ("#525252", "-."), "approval": ("#006d2c", ":"), "rejection": ("#a50f15", ":"),
    "limit_stop": ("#000000", "--"), "pause": ("#7f7f7f", "-"), "resume": ("#7f7f7f", ":"),
}
VERSION_COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#bcbd22")
# The plotted panels: series key, rolling key, axis label. A panel with no value recorded is left out.
PANELS = (
    ("success", "rolling_success", "success (rolling)"),
    ("phi_gain", "rolling_phi_gain", "Φ gain"),
    ("lm_calls", "rolling_lm_calls", "LM calls / task"),
    ("tokens", "rolling_tokens", "tokens / task"),
    ("agreement", "rolling_agreement", "critic–env agreement"),
)
_FIELDS = {"success": "success", "phi_gain": "phi_gain", "lm_calls": "lm_calls", "tokens": "tokens",
           "agreement": "critic_env_agreement"}


# --- the figures -------------------------------------------------------------------------------------------------
def monitor_figures(monitor: Any, *, window: int = WINDOW, audit_lines: int = LATEST_AUDIT) -> dict[str, Any]:
    """What the report plots, as JSON-able data: per program its tasks in time order (with rolling means over the
    last `window` tasks of the same version), a summary per version, the events to mark at their place among the
    tasks, the latest events and the triggers firing now; the audit log's check and its latest lines; the pause."""
    tasks, events = monitor.ledger.tasks(), monitor.ledger.events()
    names = list(dict.fromkeys([t.program for t in tasks] + [e.program for e in events if e.program not in _ALL]))
    programs = {name: _program(monitor, name, [t for t in tasks if t.program == name],
                               [e for e in events if e.program in (*_ALL, name)], window) for name in names}
    pauses = [e for e in events if e.kind == "pause"]
    paused = monitor.paused()
    return {"format_version": FORMAT_VERSION, "run_dir": str(monitor.run_dir), "generated_at": round(time.time(), 3),
            "window": window, "paused": paused, "paused_by": _event(pauses[-1]) if paused and pauses else None,
            "tasks": len(tasks), "events": len(events),
            "programs": programs, "audit": _audit(monitor.audit, audit_lines)}


def _program(monitor: Any, program: str, tasks: Sequence[Any], events: Sequence[Any], window: int) -> dict[str, Any]:
    series, by_version = [], {}
    for i, t in enumerate(tasks, 1):
        seen = by_version.setdefault(_label(t.version), [])
        seen.append(t)
        point = {"i": i, "at": t.at, "version": _label(t.version), "source": t.source, "task_id": t.task_id}
        for key, field in _FIELDS.items():
            point[key] = getattr(t, field)
            point[f"rolling_{key}"] = _mean(getattr(r, field) for r in seen[-window:])
        series.append(point)
    return {"tasks": len(tasks), "versions": {v: _summary(ts, window) for v, ts in by_version.items()},
            "series": series, "marks": [_mark(e, tasks) for e in events if e.kind in MARKED],
            "events": [_event(e) for e in events[-LATEST_EVENTS:]],
            "firings": [f.model_dump(mode="json") for f in monitor.triggers(program)]}


def _summary(tasks: Sequence[Any], window: int) -> dict[str, Any]:
    n, wins = len(tasks), sum(t.success for t in tasks)
    tokens = sum(t.tokens for t in tasks)
    return {
        "n": n, "successes": wins, "success_rate": round(wins / n, 4),
        "rolling_success": _mean(t.success for t in tasks[-window:]),
        "phi_gain": _mean(t.phi_gain for t in tasks), "lm_calls_per_task": round(sum(t.lm_calls for t in tasks) / n, 2),
        "tokens_per_task": round(tokens / n, 1), "tokens_per_success": round(tokens / wins, 1) if wins else None,
        "seconds_per_task": round(sum(t.seconds for t in tasks) / n, 2),
        "agreement": _mean(t.critic_env_agreement for t in tasks),
        "invalid_action_rate": _mean(t.invalid_action_rate for t in tasks),
        "revisit_rate": _mean(t.revisit_rate for t in tasks), "critic_flags": sum(t.critic_flags for t in tasks),
        "first_at": tasks[0].at, "last_at": tasks[-1].at,
    }


def _mark(event: Any, tasks: Sequence[Any]) -> dict[str, Any]:
    """An event placed after the tasks recorded before it (x = how many there were)."""
    return {"kind": event.kind, "version": event.version, "at": event.at,
            "x": sum(1 for t in tasks if t.at <= event.at), "why": _why(event.detail)}


def _event(event: Any) -> dict[str, Any]:
    return {"kind": event.kind, "program": event.program, "version": event.version, "at": event.at,
            "why": _why(event.detail)}


def _why(detail: Any) -> str:
    if isinstance(detail, dict):
        for key in ("reason", "why", "rule", "message"):
            if detail.get(key):
                return one_line(str(detail[key]), 160)
    return one_line(json.dumps(detail, sort_keys=True, default=str), 160)


def _audit(audit: Any, latest: int) -> dict[str, Any]:
    check = audit.verify()
    try:
        lines, error = audit.lines(), None
    except (PurposeDspyError, ValueError) as exc:  # a log too damaged to read still gets its verdict on the page
        lines, error = [], f"the lines cannot be read: {exc}"
    lines = [line for line in lines if isinstance(line, dict)]
    return {"ok": check.ok, "first_bad_line": check.first_bad_line, "reason": check.reason, "lines": check.lines,
            "read_error": error, "latest": [_audit_row(line) for line in lines[-latest:]]}


def _audit_row(line: dict[str, Any]) -> dict[str, Any]:
    return {"n": line.get("n"), "at": line.get("at"), "who": line.get("who"), "change": line.get("change"),
            "why": one_line(json.dumps(line.get("why"), sort_keys=True, default=str), 240),
            "hash": str(line.get("hash", ""))[:12]}


def _label(version: str | None) -> str:
    return version or ZERO_SHOT


def _mean(values: Iterable[Any]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return round(statistics.fmean(kept), 4) if kept else None


def when(at: Any) -> str:
    """A ledger or audit time (unix seconds, or already text) as UTC text."""
    if isinstance(at, (int, float)):
        return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(at or "-")


def number(value: Any, digits: int = 2) -> str:
    """A figure for a table cell, "-" for none."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


# --- the plots -----------------------------------------------------------------------------------------------------
def plot_png(program: str, figures: dict[str, Any]) -> bytes | None:
    """One program's panels stacked over the task index (time order), a colour per version, the marked events as
    vertical lines; None without matplotlib."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError:
        return None
    series = figures["series"]
    panels = [p for p in PANELS if any(point[p[0]] is not None for point in series)]
    if not panels:
        return None
    with matplotlib.rc_context({"text.parse_math": False, "font.size": 9}):  # names are data, never TeX
        fig = Figure(figsize=(10, 0.6 + 1.9 * len(panels)), dpi=100)
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        colours = {v: VERSION_COLOURS[k % len(VERSION_COLOURS)] for k, v in enumerate(figures["versions"])}
        for ax, panel in zip(axes, panels):
            _panel(ax, series, panel, colours)
            for mark in figures["marks"]:
                colour, style = MARKED[mark["kind"]]
                ax.axvline(mark["x"] + 0.5, color=colour, linestyle=style, linewidth=1.6)
        axes[0].legend(loc="upper left", fontsize=8, ncols=min(len(colours), 6), title="version", title_fontsize=8)
        axes[-1].set_xlabel("task (in the order recorded)")
        kinds = list(dict.fromkeys(m["kind"] for m in figures["marks"]))
        if kinds:
            fig.legend([Line2D([], [], color=MARKED[k][0], linestyle=MARKED[k][1]) for k in kinds], kinds,
                       loc="upper right", ncols=len(kinds), fontsize=8, frameon=False)
        fig.suptitle(program, x=0.01, ha="left", fontsize=11)
        fig.tight_layout(rect=(0, 0, 1, 0.97))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _panel(ax: Any, series: Sequence[dict[str, Any]], panel: tuple[str, str, str], colours: dict[str, str]) -> None:
    key, rolling, label = panel
    for version, colour in colours.items():
        points = [p for p in series if p["version"] == version and p[key] is not None]
        if not points:
            continue
        xs = [p["i"] for p in points]
        ax.scatter(xs, [float(p[key]) for p in points], s=9, color=colour, alpha=0.35, linewidths=0)
        ax.plot(xs, [p[rolling] for p in points], color=colour, linewidth=1.8, label=version)
    ax.set_ylabel(label)
    ax.grid(alpha=0.25)
    if key in ("success", "agreement"):
        ax.set_ylim(-0.05, 1.05)


# --- the page ------------------------------------------------------------------------------------------------------
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 1060px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
img.plot { width: 100%; max-width: 1000px; display: block; }
.ok { color: #1b7a2e; font-weight: 600; } .bad, .paused { color: #b00020; font-weight: 600; }
.note { color: #666; } code { font-size: 12px; }
"""
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def render_report(monitor: Any, *, window: int = WINDOW) -> str:
    """The whole report as one HTML page (see the module's docstring)."""
    figures = monitor_figures(monitor, window=window)
    body = [_heading(figures)]
    body += [_program_section(name, p, window) for name, p in figures["programs"].items()]
    if not figures["programs"]:
        body.append('<p class="note">The ledger holds no task and no event yet.</p>')
    body.append(_audit_section(figures["audit"]))
    title = f"purpose-dspy monitor: {figures['run_dir']}"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")


def _heading(figures: dict[str, Any]) -> str:
    by = figures["paused_by"]
    state = ('<span class="paused">PAUSED</span>' + (f" at {when(by['at'])} UTC ({_e(by['why'])})" if by else "")
             + ": runs and compiles stop at their next step (<code>purpose-dspy resume DIR</code>)"
             if figures["paused"] else "not paused")
    return (f"<h1>{_e(figures['run_dir'])}</h1><p>{figures['tasks']} tasks, {figures['events']} events; "
            f"{state}; rolling means over the last {figures['window']} tasks of a version; "
            f"generated {when(figures['generated_at'])} UTC.</p>")


def _program_section(name: str, p: dict[str, Any], window: int) -> str:
    png = plot_png(name, p) if p["series"] else None
    if png:
        picture = (f'<img class="plot" alt="{_e(name)}: success, Φ gain, cost and agreement over time" '
                   f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    elif p["series"]:
        picture = "<p class=\"note\">Plots need matplotlib: <code>pip install 'purpose-dspy[plot]'</code>.</p>"
    else:
        picture = '<p class="note">No task recorded for this program yet.</p>'
    return "\n".join([f"<h2>{_e(name)}</h2>", _versions_table(p["versions"], window), picture,
                      _firings_block(p), _events_table(p["events"])])


def _versions_table(versions: dict[str, dict[str, Any]], window: int) -> str:
    head = ["version", "tasks", "success", f"last {window}", "Φ gain", "calls/task", "tokens/task", "tokens/success",
            "agreement", "first", "last"]
    rows = [[v, s["n"], number(s["success_rate"]), number(s["rolling_success"]), number(s["phi_gain"]),
             number(s["lm_calls_per_task"]), number(s["tokens_per_task"], 0), number(s["tokens_per_success"], 0),
             number(s["agreement"]), when(s["first_at"]), when(s["last_at"])] for v, s in versions.items()]
    return _table(head, rows) if rows else ""


def _firings_block(p: dict[str, Any]) -> str:
    if not p["firings"]:
        return '<p class="note">No trigger fires now.</p>'
    rows = [[f["rule"], number(f["value"], 4), number(f["threshold"], 4), f["window"], f["reason"]] for f in p["firings"]]
    return "<h3>Triggers firing now</h3>" + _table(["rule", "value", "threshold", "window", "reason"], rows)


def _events_table(events: list[dict[str, Any]]) -> str:
    if not events:
        return ""
    rows = [[when(e["at"]), e["kind"], e["version"] or "-", e["why"]] for e in events]
    return f"<h3>Latest events ({len(events)})</h3>" + _table(["at (UTC)", "kind", "version", "what"], rows)


def _audit_section(audit: dict[str, Any]) -> str:
    if audit["ok"]:
        verdict = f'<p><span class="ok">audit verify: ok</span>, {audit["lines"]} lines, the hash chain intact.</p>'
    else:
        verdict = (f'<p><span class="bad">audit verify: BROKEN at line {_e(audit["first_bad_line"])}</span>: '
                   f'{_e(audit["reason"])}</p>')
    if audit["read_error"]:
        verdict += f'<p class="bad">{_e(audit["read_error"])}</p>'
    rows = [[a["n"], when(a["at"]), a["who"], a["change"], a["why"], a["hash"]] for a in audit["latest"]]
    table = _table(["n", "at (UTC)", "who", "change", "why", "hash"], rows) if rows else '<p class="note">No line.</p>'
    return f"<h2>Audit log (latest {len(rows)})</h2>{verdict}{table}"


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return ("<table><tr>" + _cells(head, "th") + "</tr>"
            + "".join(f"<tr>{_cells(row, 'td')}</tr>" for row in rows) + "</table>")


def _cells(row: Sequence[Any], tag: str) -> str:
    return "".join(f'<{tag}{" class=n" if isinstance(v, (int, float)) else ""}>{_e(v)}</{tag}>' for v in row)


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value))
