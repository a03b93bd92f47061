"""What a case note may hold: the text kept as typed (only surrounding whitespace trimmed), or a
refusal that says why; never a silently cleaned text. And the ring events' kinds, a conference
invitation's among them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hotline.asterisk.ari_events import Channel, ChannelDestroyed, ChannelUserevent
from hotline.engine.conference import INVITE_RINGING, InviteRings, invite_ringing
from hotline.engine.live_hub import LiveHub, RingNews, agent_topic, ring_event
from hotline.errors import NoteRefused
from hotline.store import migrations
from hotline.store.case_notes import NOTE_LIMIT, check_note
from hotline.store.case_timeline import note_line


def test_a_note_is_kept_as_typed_with_its_newlines_tabs_and_any_script() -> None:
    text = "Клиент просит перезвонить\n\tпосле 18:00 — номер +7 916 123-45-67 ✓"
    assert check_note(text) == text


def test_only_the_surrounding_whitespace_is_trimmed() -> None:
    assert check_note("  \n call back \n ") == "call back"


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n"])
def test_an_empty_note_is_refused(text: str) -> None:
    with pytest.raises(NoteRefused, match="^the note is empty$"):
        check_note(text)


def test_a_note_at_the_limit_is_kept_and_one_longer_refused_not_cut() -> None:
    assert check_note("я" * NOTE_LIMIT) == "я" * NOTE_LIMIT
    with pytest.raises(NoteRefused, match=f"is {NOTE_LIMIT + 1} characters long: at most {NOTE_LIMIT}"):
        check_note("я" * (NOTE_LIMIT + 1))


@pytest.mark.parametrize(("text", "said"), [
    ("ok\x1b[31mred", "U+001B at character 3"),
    ("line\r\nnext", "U+000D at character 5"),
    ("a\x00b", "U+0000 at character 2"),
    ("a\x7fb", "U+007F at character 2"),
    ("a\x85b", "U+0085 at character 2"),
    ("a\u2028b", "U+2028 LINE SEPARATOR at character 2"),
    ("abc\u202edcba", "U+202E RIGHT-TO-LEFT OVERRIDE at character 4"),
])
def test_a_control_character_is_refused_by_name_and_place_never_stripped(text: str, said: str) -> None:
    with pytest.raises(NoteRefused) as refused:
        check_note(text)
    message = str(refused.value)
    assert said.split(" at ")[0] in message and f"at {said.split(' at ')[1]}" in message
    assert "\n" not in message  # the CLI's one line


def test_the_databases_check_refuses_what_check_note_refuses() -> None:
    """Migration 035's CHECK and check_note agree on the limit and on the refused characters."""
    sql = (Path(migrations.__file__).parent / "migrations" / "035_case_notes.sql").read_text()
    assert f"BETWEEN 1 AND {NOTE_LIMIT}" in sql
    match = re.search(r"text !~ '(\[[^']+\])'", sql)
    assert match is not None
    pattern = re.compile(match.group(1).encode().decode("unicode_escape"))
    for ch in ["\x01", "\x1b", "\r", "\x0b", "\x7f", "\x85", "\x9f", "\u2028", "\u2029", "\u202a", "\u2069"]:
        assert pattern.search(f"a{ch}b"), repr(ch)
        with pytest.raises(NoteRefused):
            check_note(f"a{ch}b")
    for ch in ["\n", "\t", "é", "я", "\u00a0"]:
        assert not pattern.search(f"a{ch}b"), repr(ch)
        assert check_note(f"a{ch}b") == f"a{ch}b"


def test_a_notes_lines_show_on_one_line_of_the_timeline() -> None:
    assert note_line("first\n\n\tsecond  \nthird") == "first / second / third"


def news(**changes: object) -> RingNews:
    base: dict[str, object] = dict(agent="petrov", leg="c1-agent-1", case_id=7, hop_id=9, queue="support",
                                   caller="+79161234567", caller_name="", waiting_since=0.0)
    return RingNews(**(base | changes))  # type: ignore[arg-type]


def test_a_queues_ring_says_so_and_names_no_one_passing_it() -> None:
    event = ring_event(news(), "ringing")
    assert event["kind"] == "queue" and "passed_by" not in event


def test_a_consult_ring_names_the_agent_passing_the_caller_on() -> None:
    event = ring_event(news(kind="consult", passed_by="ivanov"), "ringing")
    assert (event["kind"], event["passed_by"], event["case"]) == ("consult", "ivanov", 7)


EVENT: dict[str, object] = {"type": "ChannelUserevent", "application": "hotline", "timestamp": None}


def user_event(name: str, **variables: str) -> ChannelUserevent:
    return ChannelUserevent(**EVENT, channel=Channel("case-7-conf-ab12cd34", "PJSIP/petrov-1", "Ringing"),
                            eventname=name, variables=variables)


def test_an_invitations_ring_is_read_from_its_user_event_and_names_the_inviter() -> None:
    ringing = invite_ringing(user_event(INVITE_RINGING, case="7", agent="petrov", by="agent:ivanov"))
    assert ringing is not None
    assert (ringing.case_id, ringing.agent, ringing.passed_by) == (7, "petrov", "ivanov")
    by_cli = invite_ringing(user_event(INVITE_RINGING, case="7", agent="petrov", by="cli"))
    assert by_cli is not None and by_cli.passed_by == "cli"
    assert invite_ringing(user_event(INVITE_RINGING, case="x", agent="petrov")) is None
    assert invite_ringing(user_event("hotline-transfer", case="7", agent="petrov")) is None


def test_an_invitations_ring_pops_then_its_end_and_only_once() -> None:
    hub = LiveHub()
    page = hub.subscribe(agent_topic("petrov"))
    rings = InviteRings(hub)
    rings.ringing(news(agent="petrov", leg="case-7-conf-1", kind="conference", passed_by="cli"))
    rings.ended(ChannelDestroyed(**EVENT | {"type": "ChannelDestroyed"},
                                 channel=Channel("case-7-conf-1", "PJSIP/petrov-1", "Down"), cause=19,
                                 cause_txt="No Answer"))
    rings.answered("case-7-conf-1")  # too late: it is over
    states = [(e["state"], e.get("detail"), e["kind"]) for e in page.events]
    assert states == [("ringing", None, "conference"), ("gone", "cause 19 No Answer", "conference")]
