"""Webhook targets and their deliveries (migration 029), in PostgreSQL.

A target is a URL with its own secret and a filter (hotlines, event kinds; None: all). The rows
to deliver are made by a trigger when an event is written; here a deliverer claims the head of
each (webhook, case) line (FOR UPDATE SKIP LOCKED, a lease under its run id, as callbacks are
claimed), and records how each POST went. A delivery is marked delivered only by the run that
holds it: a run whose lease ran out (and whose row another run took) changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from psycopg import AsyncConnection, errors
from psycopg.rows import class_row, dict_row

from hotline.errors import WebhookError
from hotline.store.contact_events import KINDS, ContactEvent

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MIN_SECRET = 16


@dataclass(frozen=True)
class Webhook:
    id: int
    name: str
    url: str
    hotlines: list[str] | None
    events: list[str] | None


@dataclass(frozen=True)
class Delivery:
    """A claimed delivery: the event, where it goes, and the key to sign it with."""
    webhook_id: int
    webhook: str
    url: str
    secret: str
    attempts: int
    event: ContactEvent


def check_url(url: str) -> str:
    """`url` when it is an http:// or https:// URL with a host; WebhookError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise WebhookError(f"webhook URL {url!r} must be http:// or https:// with a host")
    return url


def check_secret(secret: str) -> str:
    if not MIN_SECRET <= len(secret) <= 200 or not secret.isprintable():
        raise WebhookError(f"a webhook secret is {MIN_SECRET} to 200 printable characters")
    return secret


def new_secret() -> str:
    return secrets.token_hex(24)


def check_events(events: Sequence[str] | None) -> list[str] | None:
    if not events:
        return None
    unknown = sorted(set(events) - set(KINDS))
    if unknown:
        raise WebhookError(f"unknown event kind(s) {', '.join(unknown)}; the kinds: {', '.join(KINDS)}")
    return sorted(set(events))


async def check_hotlines(conn: AsyncConnection, hotlines: Sequence[str] | None) -> list[str] | None:
    if not hotlines:
        return None
    cur = await conn.execute("SELECT name::text FROM hotlines WHERE name = ANY(%s) AND retired_at IS NULL",
                             (list(hotlines),))
    known = {str(r[0]) for r in await cur.fetchall()}
    unknown = sorted(set(hotlines) - known)
    if unknown:
        raise WebhookError(f"no hotline {', '.join(unknown)}")
    return sorted(set(hotlines))


async def add(conn: AsyncConnection, name: str, url: str, secret: str, *, hotlines: Sequence[str] | None,
              events: Sequence[str] | None) -> Webhook:
    """A new webhook; it gets the events written from now on."""
    row = (name, check_url(url), check_secret(secret), await check_hotlines(conn, hotlines),
           check_events(events))
    cur = conn.cursor(row_factory=class_row(Webhook))
    try:
        await cur.execute("INSERT INTO webhooks (name, url, secret, hotlines, events)"
                          " VALUES (%s, %s, %s, %s, %s)"
                          " RETURNING id, name::text, url, hotlines, events", row)
    except errors.UniqueViolation:
        raise WebhookError(f"webhook {name!r} already exists: use `hotline webhook set`") from None
    except errors.CheckViolation as e:
        raise WebhookError(f"webhook {name!r} refused: {e.diag.constraint_name}") from None
    made = await cur.fetchone()
    assert made is not None
    return made


async def change(conn: AsyncConnection, name: str, *, url: str | None = None, secret: str | None = None,
                 hotlines: Sequence[str] | None = None, all_hotlines: bool = False,
                 events: Sequence[str] | None = None, all_events: bool = False) -> Webhook:
    """Change what is given; the events already waiting keep their filter's decision."""
    sets: dict[str, Any] = {}
    if url is not None:
        sets["url"] = check_url(url)
    if secret is not None:
        sets["secret"] = check_secret(secret)
    if all_hotlines or hotlines:
        sets["hotlines"] = None if all_hotlines else await check_hotlines(conn, hotlines)
    if all_events or events:
        sets["events"] = None if all_events else check_events(events)
    cur = conn.cursor(row_factory=class_row(Webhook))
    assignments = ", ".join(f"{column} = %({column})s" for column in sets) or "name = name"
    await cur.execute(f"UPDATE webhooks SET {assignments} WHERE name = %(name)s"
                      " RETURNING id, name::text, url, hotlines, events", {**sets, "name": name})
    changed = await cur.fetchone()
    if changed is None:
        raise WebhookError(f"no webhook {name!r}")
    return changed


async def remove(conn: AsyncConnection, name: str) -> None:
    """Remove a webhook and what it had not delivered yet."""
    cur = await conn.execute("DELETE FROM webhooks WHERE name = %s", (name,))
    if cur.rowcount == 0:
        raise WebhookError(f"no webhook {name!r}")


async def pending_per_webhook(conn: AsyncConnection) -> dict[str, int]:
    """Each webhook's deliveries waiting (pending, retries included): the outbox's backlog."""
    cur = await conn.execute("SELECT w.name, count(d.event_id) FROM webhooks w"
                             " LEFT JOIN webhook_deliveries d ON d.webhook_id = w.id AND d.status = 'pending'"
                             " GROUP BY w.name")
    return {str(name): int(n) for name, n in await cur.fetchall()}


async def listing(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Each webhook (never its secret) with its backlog, failures and last error."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT w.name::text AS name, w.url, coalesce(array_to_string(w.hotlines, ','), 'all') AS hotlines,"
        "       coalesce(array_to_string(w.events, ','), 'all') AS events,"
        "       count(d.*) FILTER (WHERE d.status = 'pending') AS pending,"
        "       count(d.*) FILTER (WHERE d.status = 'delivered') AS delivered,"
        "       count(d.*) FILTER (WHERE d.status = 'failed') AS failed,"
        "       min(e.at) FILTER (WHERE d.status = 'pending') AS oldest_pending,"
        "       w.last_delivered_at, w.last_error, w.last_error_at"
        "  FROM webhooks w LEFT JOIN webhook_deliveries d ON d.webhook_id = w.id"
        "  LEFT JOIN contact_events e ON e.id = d.event_id AND d.status = 'pending'"
        " GROUP BY w.id ORDER BY w.name")
    return await cur.fetchall()


# The heads of the lines: a pending delivery with no pending one of a lower event id for the same
# webhook and case, due, and not held under a live lease. FOR UPDATE re-checks the row's own
# conditions on the latest version (a head another run just took is skipped or re-checked).
_CLAIM = """
UPDATE webhook_deliveries d SET claimed_by = %(run)s, lease_until = now() + make_interval(secs => %(lease)s)
  FROM (SELECT x.webhook_id, x.event_id FROM webhook_deliveries x
         WHERE x.status = 'pending' AND x.next_try_at <= now()
           AND (x.lease_until IS NULL OR x.lease_until < now())
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                            WHERE p.webhook_id = x.webhook_id AND p.case_id = x.case_id
                              AND p.status = 'pending' AND p.event_id < x.event_id)
         ORDER BY x.event_id LIMIT %(limit)s
           FOR UPDATE OF x SKIP LOCKED) c
 WHERE d.webhook_id = c.webhook_id AND d.event_id = c.event_id
RETURNING d.webhook_id, d.event_id, d.attempts
"""


async def claim(conn: AsyncConnection, run: str, *, lease_s: float, limit: int) -> list[Delivery]:
    """Up to `limit` heads of lines, now held by `run` for `lease_s` seconds, oldest event first."""
    async with conn.transaction():
        cur = await conn.execute(_CLAIM, {"run": run, "lease": lease_s, "limit": limit})
        held = await cur.fetchall()
    if not held:
        return []
    cur2 = conn.cursor(row_factory=dict_row)
    await cur2.execute(
        "SELECT w.id AS webhook_id, w.name::text AS webhook, w.url, w.secret, d.attempts,"
        f"      {', '.join('e.' + c.strip() for c in _EVENT_COLUMNS)}"
        "  FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
        "  JOIN contact_events e ON e.id = d.event_id"
        " WHERE (d.webhook_id, d.event_id) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))"
        "   AND d.claimed_by = %s ORDER BY e.id",
        ([h[0] for h in held], [h[1] for h in held], run))
    return [_delivery(r) for r in await cur2.fetchall()]


_EVENT_COLUMNS = ("id", "case_id", "hop_id", "kind", "at", "hotline", "queue", "agent", "data")


def _delivery(row: dict[str, Any]) -> Delivery:
    event = ContactEvent(**{c: row[c] for c in _EVENT_COLUMNS})
    return Delivery(webhook_id=row["webhook_id"], webhook=row["webhook"], url=row["url"],
                    secret=row["secret"],
                    attempts=row["attempts"], event=event)


async def delivered(conn: AsyncConnection, delivery: Delivery, run: str) -> bool:
    """Record a 2xx answer; False when `run` no longer held it (its lease ran out and another took it)."""
    cur = await conn.execute(
        "WITH done AS (UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(),"
        "                     attempts = attempts + 1, claimed_by = NULL, lease_until = NULL"
        "               WHERE webhook_id = %(w)s AND event_id = %(e)s AND claimed_by = %(run)s"
        "                 AND status = 'pending' RETURNING webhook_id)"
        " UPDATE webhooks SET last_delivered_at = now() WHERE id IN (SELECT webhook_id FROM done)",
        {"w": delivery.webhook_id, "e": delivery.event.id, "run": run})
    return cur.rowcount > 0


async def not_delivered(conn: AsyncConnection, delivery: Delivery, run: str, error: str, *,
                        retry_in_s: float | None) -> None:
    """Record a failed POST: tried again in `retry_in_s` seconds, or given up (None): 'failed',
    and the case's later events for that URL go on."""
    await conn.execute(
        "WITH tried AS (UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = %(err)s,"
        "                      claimed_by = NULL, lease_until = NULL,"
        "                      status = CASE WHEN %(retry)s::float8 IS NULL THEN 'failed' ELSE 'pending' END,"
        "                      next_try_at = now() + make_interval(secs => coalesce(%(retry)s::float8, 0))"
        "                WHERE webhook_id = %(w)s AND event_id = %(e)s AND claimed_by = %(run)s"
        "                  AND status = 'pending' RETURNING webhook_id)"
        " UPDATE webhooks SET last_error = %(err)s, last_error_at = now()"
        "  WHERE id IN (SELECT webhook_id FROM tried)",
        {"err": error[:500], "retry": retry_in_s, "w": delivery.webhook_id, "e": delivery.event.id,
         "run": run})


async def release(conn: AsyncConnection, run: str) -> None:
    """Give back what `run` holds (a stopping daemon): due again at once, attempts unchanged."""
    await conn.execute("UPDATE webhook_deliveries SET claimed_by = NULL, lease_until = NULL"
                       " WHERE claimed_by = %s AND status = 'pending'", (run,))


async def events_of_case(conn: AsyncConnection, case_id: int) -> list[ContactEvent]:
    cur = conn.cursor(row_factory=class_row(ContactEvent))
    await cur.execute(f"SELECT {', '.join(_EVENT_COLUMNS)} FROM contact_events"
                      " WHERE case_id = %s ORDER BY id",
                      (case_id,))
    return await cur.fetchall()
