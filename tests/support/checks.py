"""Waiting on what a user would check, with a deadline (no sleep-and-hope)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout_s: float = 15, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def rows(db: psycopg.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    return db.cursor(row_factory=dict_row).execute(sql, params).fetchall()
