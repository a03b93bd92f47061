"""The daemon's and the CLI's log: one record, one line, as text or as one JSON object per line
(log_format); and the call a log record is about: the call's task names its case and hop once,
and every record logged from that task (or a task it starts) carries them, without threading ids
through every log call.

Log messages carry what callers chose (caller ids, dialled addresses, Stasis arguments, Asterisk's
error texts quoting them). A CR/LF among them would split a record and let a caller write a line
of their own into the log, one that looks like the daemon's (`... ERROR hotline...`) to a reader
and to fail2ban. The text formatter escapes them in the message (a traceback keeps its own
lines); JSON escapes them by itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

from hotline.text import one_line

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


class OneLineFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = one_line(record.message)
        return super().formatMessage(record)


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


def setup_logging(level: int) -> None:
    """As logging.basicConfig(level, TEXT_FORMAT), with the one-line formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


def use_format(log_format: str) -> None:
    """Every handler of the root logger writes `log_format` ("text" or "json") from now on."""
    formatter = JsonLines() if log_format == "json" else OneLineFormatter(TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
