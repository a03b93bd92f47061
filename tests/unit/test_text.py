"""Text from callers, made safe: stored clean and bounded, logged on one line."""

import io
import logging

from hotline.asterisk.ari_events import parse_channel
from hotline.logs import OneLineFormatter
from hotline.text import NAME_LIMIT, NUMBER_LIMIT, clean_text, one_line


def test_clean_text_drops_controls_line_separators_and_bidi_overrides_and_keeps_letters() -> None:
    assert clean_text("Иван\r\n\x1b[31m\u2028 Петров\u202e 王\x00\udcff") == "Иван[31m Петров 王"


def test_clean_text_bounds_the_length() -> None:
    assert clean_text("N" * 10_000) == "N" * NAME_LIMIT
    assert clean_text("9" * 500, NUMBER_LIMIT) == "9" * NUMBER_LIMIT


def test_one_line_escapes_what_would_break_a_line_and_leaves_plain_text_alone() -> None:
    assert one_line("call 1 from '+7916'") == "call 1 from '+7916'"
    assert one_line("+7916\r\n2026-12-02 ERROR x\u2028y\x1b") == "+7916\\r\\n2026-12-02 ERROR x\\u2028y\\x1b"


def test_a_channel_from_ari_carries_a_clean_bounded_caller_id() -> None:
    channel = parse_channel({"id": "1.1", "name": "PJSIP/sipp-trunk-00000001", "state": "Ring",
                             "caller": {"number": "+7916\r\nX-Evil: yes" + "9" * 500,
                                        "name": "Evil\x1b[2J\u202e" + "N" * 10_000}})
    assert channel.caller_num.startswith("+7916X-Evil: yes999") and len(channel.caller_num) == NUMBER_LIMIT
    assert channel.caller_name.startswith("Evil[2JNNN") and len(channel.caller_name) == NAME_LIMIT


def test_a_log_record_with_an_injected_newline_stays_one_line_and_a_traceback_keeps_its_lines() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("test_text.one_line")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("caller %s", "+7916\r\nERROR hotline.daemon: forged")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("call %s failed", "x\ny")
    finally:
        log.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0] == "WARNING caller +7916\\r\\nERROR hotline.daemon: forged"
    assert lines[1] == "ERROR call x\\ny failed"
    assert lines[2] == "Traceback (most recent call last):" and lines[-1] == "ValueError: boom"
