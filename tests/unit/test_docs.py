"""The failure-mode table names only tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
FAILURE_MODES = REPOSITORY_ROOT / "docs" / "failure-modes.md"
# A cell names a test as `test_file.py::test_name`, and further tests of the same file as
# `test_name`.
_HEADER_ROW_STARTS = ("| fault", "| input", "| attack", "| ---")
_TEST_REFERENCE = re.compile(r"`(?:(test_\w+\.py)::)?(test_\w+)`")


def _referenced_tests() -> list[tuple[str, str]]:
    references = []
    for line in FAILURE_MODES.read_text("utf-8").splitlines():
        module: str | None = None
        for match in _TEST_REFERENCE.finditer(line):
            module = match.group(1) or module
            if module is not None:
                references.append((module, match.group(2)))
    return references


def test_failure_mode_table_names_existing_tests() -> None:
    references = _referenced_tests()
    assert len(references) >= 40
    for module, name in references:
        path = REPOSITORY_ROOT / "tests" / "integration" / module
        if not path.exists():
            path = REPOSITORY_ROOT / "tests" / "unit" / module
        source = path.read_text("utf-8")
        assert f"def {name}(" in source, f"{module}::{name} is named in {FAILURE_MODES.name}"


def test_every_failure_mode_row_names_a_test() -> None:
    text = FAILURE_MODES.read_text("utf-8")
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith(_HEADER_ROW_STARTS)
    ]
    assert rows
    for row in rows:
        assert _TEST_REFERENCE.search(row), row
