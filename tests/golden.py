"""Golden-file snapshots: rendered outputs compared with files kept under ``tests/golden/``.

Use ``assert_golden("name.md", text)`` in a test. When an output changes on purpose, look at
the diff the failing test shows, then regenerate every snapshot with::

    DERIVGEN_UPDATE_GOLDEN=1 python -m pytest tests

and review the changed files with ``git diff tests/golden`` before committing them.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from derivgen.output import write_atomic

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
UPDATE_ENV = "DERIVGEN_UPDATE_GOLDEN"


def assert_golden(name: str, text: str) -> None:
    """Fail unless `text` equals ``tests/golden/<name>``; rewrite the file instead when
    ``DERIVGEN_UPDATE_GOLDEN=1`` is set. A mismatch fails with a unified diff."""
    path = GOLDEN_DIR / name
    if os.environ.get(UPDATE_ENV) == "1":
        write_atomic(path, text)
        return
    if not path.exists():
        pytest.fail(
            f"no golden file {path.relative_to(GOLDEN_DIR.parent.parent)}; "
            f"create it with {UPDATE_ENV}=1 python -m pytest tests",
            pytrace=False,
        )
    expected = path.read_bytes().decode("utf-8")
    if text == expected:
        return
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"golden/{name}",
            tofile=f"rendered/{name}",
        )
    )
    pytest.fail(
        f"output differs from golden/{name} (regenerate with {UPDATE_ENV}=1 if intended):\n{diff}",
        pytrace=False,
    )
