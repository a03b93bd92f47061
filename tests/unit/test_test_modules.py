"""The suite imports test modules by their file name (pytest's default import mode, with each
test folder on sys.path), so two test files of one name in different folders stop `make test` at
collection, though each passes run alone. Caught here, in the fast run every change goes through."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_files_share_a_name() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
