"""log_format = json: one object per line, with the case and hop of the call a record is about."""

from __future__ import annotations

import asyncio
import json
import logging

from hotline.logs import JsonLines, about_call, call_ids


def formatted(message: str, *args: object, exc: bool = False) -> dict[str, object]:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError as error:
            exc_info = (type(error), error, error.__traceback__)
    record = logging.LogRecord("hotline.engine.call", logging.WARNING, __file__, 1, message, args, exc_info)
    line = JsonLines().format(record)
    assert "\n" not in line
    return dict(json.loads(line))


def test_a_record_outside_any_call_has_time_level_logger_and_message_only() -> None:
    out = formatted("call %s: %s", "ch-1", "ringing\nwith a newline")
    assert set(out) == {"time", "level", "logger", "message"}
    assert out["level"] == "WARNING" and out["logger"] == "hotline.engine.call"
    assert out["message"] == "call ch-1: ringing\nwith a newline"
    assert str(out["time"]).endswith("+00:00")


def test_an_exception_is_one_field_of_the_same_line() -> None:
    out = formatted("failed", exc=True)
    assert "ValueError: boom" in str(out["exception"])


async def test_records_of_a_call_task_and_of_the_tasks_it_starts_carry_its_case_and_hop() -> None:
    hop: list[tuple[int, int]] = []

    async def call() -> list[dict[str, object]]:
        about_call(lambda: hop[0] if hop else (None, None))
        before = formatted("entered")
        hop.append((7, 42))  # the hop is opened after the call began

        async def helper() -> dict[str, object]:
            return formatted("in a task of the call")
        return [before, formatted("queued"), *await asyncio.gather(helper())]

    async def other_call() -> dict[str, object]:
        return formatted("another task")

    records, other = await asyncio.gather(call(), other_call())
    assert "hop_id" not in records[0]
    assert [(r["case_id"], r["hop_id"]) for r in records[1:]] == [(7, 42), (7, 42)]
    assert "hop_id" not in other
    assert call_ids() == (None, None)  # the test's own task was never about a call
