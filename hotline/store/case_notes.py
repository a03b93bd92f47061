"""Notes on a case (migration 035): what an agent (from their page) or the CLI writes about a
contact, kept with the case, listed in `hotline case show`, shown on the screen pop of the
customer's next calls, and sent as the contact event `note_added`.

A note is refused, never changed: text with a control character (other than a newline or a
tab), a line or paragraph separator or a bidi control is refused with the character's position,
not silently cleaned, since the writer would not see that what was kept differs from what they
typed. Only surrounding whitespace is trimmed."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

from hotline.errors import NoteRefused

NOTE_LIMIT = 2000  # characters: a few paragraphs (the CHECK of migration 035 says the same)
# Notes on a screen pop: the case's own and the customer's earlier cases', newest first.
POP_NOTES = 10
CLI_AUTHOR = "cli"
_ALLOWED_CONTROLS = frozenset("\n\t")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Note:
    id: int
    case_id: int
    author: str
    text: str
    created_at: datetime


def check_note(text: str) -> str:
    """The note as it will be kept (surrounding whitespace trimmed); NoteRefused saying why not."""
    kept = text.strip()
    if not kept:
        raise NoteRefused("the note is empty")
    if len(kept) > NOTE_LIMIT:
        raise NoteRefused(f"the note is {len(kept)} characters long: at most {NOTE_LIMIT}")
    bad = next(((i, ch) for i, ch in enumerate(kept, 1) if _refused(ch)), None)
    if bad is not None:
        position, ch = bad
        raise NoteRefused(f"the note has a control character ({_named(ch)}) at character {position}: "
                          f"only printable text, newlines and tabs are kept")
    return kept


def _refused(ch: str) -> bool:
    if ch in _ALLOWED_CONTROLS or ch.isprintable():
        return False
    return ch in _BIDI_CONTROLS or unicodedata.category(ch) in _REFUSED_CATEGORIES


def _named(ch: str) -> str:
    return f"U+{ord(ch):04X}" + (f" {unicodedata.name(ch)}" if unicodedata.name(ch, "") else "")


async def add_note(conn: AsyncConnection, case_id: int, author: str, text: str,
                   agent_id: int | None = None) -> Note:
    """Keep a checked note on case `case_id` (its contact event in the same transaction);
    NoteRefused for bad text or an unknown case."""
    kept = check_note(text)
    async with conn.cursor(row_factory=class_row(Note)) as cur:
        await cur.execute(
            "INSERT INTO case_notes (case_id, author, agent_id, text)"
            " SELECT id, %(author)s, %(agent)s, %(text)s FROM cases WHERE id = %(case)s"
            " RETURNING id, case_id, author, text, created_at",
            {"case": case_id, "author": author, "agent": agent_id, "text": kept})
        note = await cur.fetchone()
    if note is None:
        raise NoteRefused(f"case {case_id} does not exist")
    return note


async def notes_of_case(conn: AsyncConnection, case_id: int) -> list[Note]:
    """The case's notes, oldest first (as `hotline case show` lists its timeline)."""
    async with conn.cursor(row_factory=class_row(Note)) as cur:
        await cur.execute("SELECT id, case_id, author, text, created_at FROM case_notes"
                          " WHERE case_id = %s ORDER BY id", (case_id,))
        return await cur.fetchall()


async def customer_notes(conn: AsyncConnection, case_id: int, customer_key: str,
                         limit: int = POP_NOTES) -> list[Note]:
    """The notes of case `case_id` and of the customer's other cases (the same customer key, as the
    screen pop's earlier cases; none for an empty key), newest first, at most `limit`."""
    async with conn.cursor(row_factory=class_row(Note)) as cur:
        await cur.execute(
            "SELECT n.id, n.case_id, n.author, n.text, n.created_at FROM case_notes n"
            " WHERE n.case_id = %(case)s OR n.case_id IN (SELECT id FROM cases"
            "       WHERE customer_key = %(key)s AND customer_key <> '')"
            " ORDER BY n.created_at DESC, n.id DESC LIMIT %(n)s",
            {"case": case_id, "key": customer_key, "n": limit})
        return await cur.fetchall()


async def agent_handled(conn: AsyncConnection, case_id: int, agent_id: int) -> bool:
    """Whether the agent had a part in case `case_id`: answered one of its legs (a queue event
    naming them), talks on it now, or joined it as an invited party."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM queue_events WHERE case_id = %(case)s AND agent_id = %(agent)s"
        "               AND event = 'answer')"
        "    OR EXISTS (SELECT 1 FROM hops WHERE case_id = %(case)s AND agent_id = %(agent)s)"
        "    OR EXISTS (SELECT 1 FROM case_participants WHERE case_id = %(case)s"
        "               AND agent_id = %(agent)s)", {"case": case_id, "agent": agent_id})
    row = await cur.fetchone()
    return bool(row and row[0])
