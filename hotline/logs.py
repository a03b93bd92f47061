"""The daemon's and the CLI's log: one record, one line.

Log messages carry what callers chose (caller ids, dialled addresses, Stasis arguments, Asterisk's
error texts quoting them). A CR/LF among them would split a record and let a caller write a line
of their own into the log, one that looks like the daemon's (`... ERROR hotline...`) to a reader
and to fail2ban. The formatter escapes them in the message; a traceback keeps its own lines.
"""

from __future__ import annotations

import logging

from hotline.text import one_line

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = one_line(record.message)
        return super().formatMessage(record)


def setup_logging(level: int) -> None:
    """As logging.basicConfig(level, FORMAT), with the one-line formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
