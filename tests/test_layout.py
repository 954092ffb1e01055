"""The package's shape, checked: a small top level, short modules and functions, a README line per file.

The import-layer and no-cycle contracts are checked by `make lint` (import-linter, pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = [ROOT / "purpose_dspy", ROOT / "programs", ROOT / "signatures"]
MAX_MODULE_LINES, MAX_FUNCTION_LINES, MAX_TOP_LEVEL_MODULES = 400, 60, 8


def modules():
    return sorted(p for folder in CODE for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_top_level_holds_at_most_eight_modules():
    top = sorted(p.name for p in (ROOT / "purpose_dspy").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_are_short(path):
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: split it by role"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
            and "Long because" not in (ast.get_docstring(node) or "")]
    assert not long, f"{path.name}: {long}; split into named steps, or say 'Long because ...' in the docstring"


FOLDERS = sorted({p.parent for p in modules()} | {ROOT / "tests", ROOT / "benchmarks"})


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_folder_has_a_readme_with_a_line_per_file(folder):
    readme = folder / "README.md"
    assert readme.exists(), f"{folder.relative_to(ROOT)} has no README.md"
    text = readme.read_text()
    files = [p.name for p in folder.glob("*.py") if p.name != "__init__.py" or folder.name == "cli"]
    missing = [name for name in files if f"`{name}`" not in text]
    assert not missing, f"{readme.relative_to(ROOT)} does not mention {missing}"
