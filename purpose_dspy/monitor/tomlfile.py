"""A run directory's TOML files (limits.toml, triggers.toml) read into frozen models, errors naming file and line.

tomllib reports where a syntax error is but not where a key is written, so a value pydantic refuses is placed
by `line_of`: the line of its key (inside the n-th `[[table]]` for an array of tables), or of its table's
header when the key is missing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from purpose_dspy.errors import UsageError
from purpose_dspy.text import one_line

M = TypeVar("M", bound=BaseModel)
_HEADER = re.compile(r"""^\s*\[\[?\s*[\w."' -]+\s*\]\]?\s*(#.*)?$""")


def read_model(path: Path, model: type[M], *, hint: str) -> M:
    """`path` parsed as TOML into `model`; a `UsageError` of one line (file, line, field, what to do) if not."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} cannot be read ({type(exc).__name__}: {one_line(str(exc), 120)}); fix or "
                         "remove it") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line N, column M)"
        raise UsageError(f"{path} is not TOML: {one_line(str(exc), 160)}; fix the file") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(file)"
        line = line_of(text, err["loc"])
        at = f" line {line}:" if line else ""
        got = one_line(repr(err.get("input")), 80)
        raise UsageError(f"{path}:{at} {where}: {one_line(err['msg'], 160)} (got {got}); {hint}") from exc


def line_of(text: str, loc: Sequence[str | int]) -> int | None:
    """The 1-based line where the value at pydantic's error location `loc` is written (None: not found)."""
    lines = text.splitlines()
    lo, hi, found = 0, len(lines), None
    parts = list(loc)
    while parts and isinstance(parts[0], str):
        key = parts.pop(0)
        nth = parts.pop(0) if parts and isinstance(parts[0], int) else None
        if nth is not None:  # an array of tables: the nth `[[key]]` section, or else `key = [...]`
            headers = [n for n in range(lo, hi) if re.match(rf"\s*\[\[\s*{re.escape(key)}\s*\]\]", lines[n])]
            if nth < len(headers):
                lo = headers[nth]
                hi = next((n for n in range(lo + 1, hi) if _HEADER.match(lines[n])), hi)
                found = lo + 1
                continue
        n = _key_line(lines, lo, hi, key)
        return found if n is None else n + 1
    return found


def _key_line(lines: list[str], lo: int, hi: int, key: str) -> int | None:
    """The line of `key = ...` (bare or quoted) or of a `[key]` header between `lo` and `hi`."""
    k = re.escape(key)
    pattern = re.compile(rf"""^\s*(?:(["']?){k}\1\s*=|\[\[?\s*{k}\s*\]\]?)""")
    return next((n for n in range(lo, hi) if pattern.match(lines[n])), None)
