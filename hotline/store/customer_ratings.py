"""A customer's one-question rating of a web call (migration 040): a score from 1 to 5 and an
optional comment, from the customer page after the talk, once per leg (hop); listed by
`hotline case show`. Separate from any phone survey: its own table, its own writer."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection, errors
from psycopg.rows import class_row

from hotline.errors import RatingRefused

SCORES = range(1, 6)
COMMENT_LIMIT = 500  # characters (the CHECK of migration 040 says the same)
# Refused in a comment, as migration 040's CHECK: control characters but the newline, line and
# paragraph separators, bidi controls.
_REFUSED = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Rating:
    hop_id: int
    score: int
    comment: str | None
    rated_at: datetime

    def text(self) -> str:
        said = f": {' / '.join(line.strip() for line in self.comment.splitlines())}" if self.comment else ""
        return f"rated {self.score} of 5 by the customer{said}"


def check_rating(score: object, comment: object) -> tuple[int, str | None]:
    """The score and comment as they will be kept; RatingRefused saying why not."""
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
        raise RatingRefused("a rating is a whole number from 1 to 5")
    if comment is None:
        return score, None
    if not isinstance(comment, str):
        raise RatingRefused("a rating's comment is text")
    kept = comment.strip()
    if len(kept) > COMMENT_LIMIT:
        raise RatingRefused(f"the comment is {len(kept)} characters long: at most {COMMENT_LIMIT}")
    if any(c != "\n" and (unicodedata.category(c) in _REFUSED or c in _BIDI) for c in kept):
        raise RatingRefused("the comment has a control character: only printable text and newlines are kept")
    return score, kept or None


async def add_rating(conn: AsyncConnection, hop_id: int, score: object, comment: object) -> Rating:
    """Keep the customer's rating of hop `hop_id` on its case; RatingRefused for a bad score or
    comment, an unknown hop, or a hop rated already (once per call)."""
    kept_score, kept_comment = check_rating(score, comment)
    try:
        async with conn.transaction(), conn.cursor(row_factory=class_row(Rating)) as cur:
            await cur.execute(
                "INSERT INTO customer_ratings (case_id, hop_id, score, comment)"
                " SELECT case_id, id, %s, %s FROM hops WHERE id = %s"
                " RETURNING hop_id, score, comment, rated_at", (kept_score, kept_comment, hop_id))
            rating = await cur.fetchone()
    except errors.UniqueViolation:
        raise RatingRefused("this call has been rated already", already=True) from None
    if rating is None:
        raise RatingRefused(f"there is no call {hop_id} to rate")
    return rating


async def ratings_of_case(conn: AsyncConnection, case_id: int) -> list[Rating]:
    async with conn.cursor(row_factory=class_row(Rating)) as cur:
        await cur.execute("SELECT hop_id, score, comment, rated_at FROM customer_ratings"
                          " WHERE case_id = %s ORDER BY id", (case_id,))
        return await cur.fetchall()
