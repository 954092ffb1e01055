"""The audit log: any single edit, deletion, reorder or insertion of lines is caught at the first broken line.

The property runs on real logs (written through `Monitor`, hashes anchored in a real SQLite ledger): hypothesis
draws one tampering, the file is rewritten, `verify` must fail and name the first line that differs from the
original; the untouched log passes. Two processes appending at once chain correctly.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purpose_dspy.errors import StoreCorruptError
from purpose_dspy.monitor import Monitor
from purpose_dspy.monitor.audit import FILENAME, line_hash

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 2, 5, 9)
WHYS = [{"trigger": "success-drop", "value": 0.61, "threshold": 0.855}, {"gate": {"wins": 5, "losses": 0, "p": 0.031}},
        {"reason": "opérateur: «rollback» after a bad night", "emoji": "🚦"}, {}, {"list": [1, 2.5, None, True, "x"]}]
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Run directories holding a log of each size, with the original bytes."""
    out = {}
    for n in SIZES:
        d = tmp_path_factory.mktemp(f"log{n}")
        m = Monitor.open(d)
        for i in range(n):
            m.audit.append("improve" if i % 2 else "operator", f"treasure-maze v{i + 1}: promoted", WHYS[i % len(WHYS)])
        out[n] = (d, m, (d / FILENAME).read_bytes())
    return out


def _lines(data: bytes) -> list[str]:
    return data.decode().split("\n")[:-1]  # every tampering below keeps the final newline


@st.composite
def tamperings(draw, n: int):
    """One tampering of a log of n lines: (kind, function of the list of line texts -> new list)."""
    kind = draw(st.sampled_from(["edit", "delete", "reorder", "insert"] if n > 1 else ["edit", "delete", "insert"]))
    if kind == "edit":
        k = draw(st.integers(0, n - 1))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        pos = draw(st.integers(0, 400))
        char = draw(st.characters(blacklist_categories=("Cs",)))

        def edit(lines):
            text = lines[k]
            p = pos % (len(text) + (op == "insert"))
            new = {"replace": text[:p] + char + text[p + 1:], "insert": text[:p] + char + text[p:],
                   "delete": text[:p] + text[p + 1:]}[op]
            return lines[:k] + new.split("\n") + lines[k + 1:]
        return kind, edit
    if kind == "delete":
        k = draw(st.integers(0, n - 1))
        return kind, lambda lines: lines[:k] + lines[k + 1:]
    if kind == "reorder":
        i = draw(st.integers(0, n - 1))
        j = draw(st.integers(0, n - 1).filter(lambda j: j != i))
        return kind, lambda lines: _moved(lines, i, j)
    k = draw(st.integers(0, n))
    what = draw(st.sampled_from(["copy", "text", "forged"]))
    other, junk = draw(st.integers(0, n - 1)), draw(TEXT.filter(lambda t: "\n" not in t))
    return kind, lambda lines: lines[:k] + [_inserted(lines, k, what, other, junk)] + lines[k:]


def _moved(lines, i, j):
    out = list(lines)
    out.insert(j, out.pop(i))
    return out


def _inserted(lines, k, what, other, junk):
    if what == "copy":
        return lines[other]
    if what == "text":
        return junk
    # forged: a well-formed line with the right number, the right prev and its own correct hash
    prev = json.loads(lines[k - 1])["hash"] if k else "0" * 64
    line = {"v": 1, "n": k + 1, "at": 1.0, "who": "improve", "change": "nothing to see", "why": {}, "prev": prev}
    line["hash"] = line_hash(line)
    return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _first_difference(original, tampered):
    k = 0
    while k < len(original) and k < len(tampered) and original[k] == tampered[k]:
        k += 1
    return k + 1


@settings(max_examples=400)
@given(data=st.data())
def test_any_single_tampering_is_caught_at_the_first_broken_line(logs, data):
    n = data.draw(st.sampled_from(SIZES))
    directory, monitor, original = logs[n]
    kind, tamper = data.draw(tamperings(n))
    lines = _lines(original)
    tampered = tamper(lines)
    if tampered == lines:  # e.g. a character replaced by itself: nothing was tampered with
        return
    path = directory / FILENAME
    try:
        path.write_bytes(("\n".join(tampered) + "\n").encode())
        check = monitor.audit.verify()
    finally:
        path.write_bytes(original)
    assert not check.ok, (kind, check)
    assert check.first_bad_line == _first_difference(lines, tampered), (kind, check)
    assert check.reason.startswith(f"line {check.first_bad_line} ") and "\n" not in check.reason


def test_an_untouched_log_passes_and_lines_carry_the_chain(logs):
    for n in SIZES:
        _, monitor, _ = logs[n]
        check = monitor.audit.verify()
        assert check.ok and check.first_bad_line is None and check.lines == n
        lines = monitor.audit.lines()
        assert [x["n"] for x in lines] == list(range(1, n + 1))
        assert all({"n", "at", "who", "change", "why", "prev", "hash"} <= set(x) for x in lines)
        assert [x["prev"] for x in lines[1:]] == [x["hash"] for x in lines[:-1]]


def test_a_half_written_last_line_is_named_and_refuses_further_appends(tmp_path):
    m = Monitor.open(tmp_path)
    m.audit.append("operator", "paused", {"reason": "night"})
    with open(tmp_path / FILENAME, "ab") as f:
        f.write(b'{"at":1.0,"chan')
    check = m.audit.verify()
    assert (check.ok, check.first_bad_line) == (False, 2)
    with pytest.raises(StoreCorruptError, match="half-written"):
        m.audit.append("operator", "resumed", {})


def test_why_must_be_json(tmp_path):
    from purpose_dspy.errors import UsageError

    with pytest.raises(UsageError, match="JSON-able"):
        Monitor.open(tmp_path).audit.append("improve", "promoted", {"gain": float("nan")})
    assert Monitor.open(tmp_path).audit.lines() == []


APPENDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from purpose_dspy.monitor import Monitor
    m, tag, go = Monitor.open(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    for i in range(60):
        m.audit.append(tag, f"change {i}", {"i": i})
""")


def test_two_processes_appending_at_once_chain_correctly(tmp_path):
    go = tmp_path / "go"
    Monitor.open(tmp_path).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path), tag, str(go)], env=env)
             for tag in ("loop", "operator")]
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    m = Monitor.open(tmp_path)
    assert m.audit.verify().ok
    lines = m.audit.lines()
    assert len(lines) == 120
    for tag in ("loop", "operator"):
        assert [x["why"]["i"] for x in lines if x["who"] == tag] == list(range(60))
