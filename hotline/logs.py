"""Log lines as text or as one JSON object per line (log_format), and the call a log record is
about: the call's task names its case and hop once, and every record logged from that task (or
a task it starts) carries them, without threading ids through every log call."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

CallIds = tuple[int | None, int | None]  # (case id, hop id); None until the hop is open
_CALL: ContextVar[Callable[[], CallIds] | None] = ContextVar("hotline_call", default=None)


def about_call(ids: Callable[[], CallIds]) -> None:
    """From now on, in this task and the tasks it starts, records are about the call whose
    (case id, hop id) `ids` returns when a record is logged (a hop opened later counts)."""
    _CALL.set(ids)


def call_ids() -> CallIds:
    ids = _CALL.get()
    return ids() if ids is not None else (None, None)


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and case_id and
    hop_id when the record is about a call; exception: the traceback, when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        case_id, hop_id = call_ids()
        if case_id is not None:
            out["case_id"] = case_id
        if hop_id is not None:
            out["hop_id"] = hop_id
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def use_format(log_format: str) -> None:
    """Every handler of the root logger writes `log_format` ("text" or "json") from now on."""
    formatter = JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
