"""`hotline lab call`: one sipp caller through the lab and what the database says became of it
(its case and hop, the agent who answered, the menu keys, the end)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from hotline.config import Settings
from hotline.errors import LabError
from hotline.lab.sipp import place_call
from hotline.numbers import to_e164
from hotline.store.db import connect

HOP_CLOSE_WAIT_S = 10.0  # the write-behind records the hop's end a moment after the BYE


@dataclass(frozen=True)
class CallPlan:
    number: str
    caller: str
    keys: tuple[str, ...]
    talk_s: int


@dataclass(frozen=True)
class CallOutcome:
    hop: dict[str, Any] | None  # the caller's hop with hotline, queue and agent names
    sipp_ok: bool
    sipp_output: str

    @property
    def answered_by(self) -> str | None:
        return self.hop["agent"] if self.hop and self.hop["answered_at"] else None

    def lines(self) -> list[str]:
        if self.hop is None:
            tail = "\n".join(self.sipp_output.splitlines()[-12:])
            return ["no hop was recorded for this call: did it reach the daemon?", tail]
        h = self.hop
        where = f" (hotline {h['hotline']})" if h["hotline"] else ""
        out = [f"case {h['case_id']}, hop {h['id']} (leg {h['seq']}): {h['caller_num']} dialled "
               f"{h['dialled']}{where}"]
        if h["ivr_path"]:
            out.append(f"menu keys pressed: {' '.join(h['ivr_path'])}")
        if self.answered_by:
            waited = (h["answered_at"] - h["entered_at"]).total_seconds()
            queue = f" in queue {h['queue']}" if h["queue"] else ""
            out.append(f"answered by agent {self.answered_by} after {waited:.1f} s{queue}")
        else:
            out.append("not answered by an agent" + (f" (queue {h['queue']})" if h["queue"] else ""))
        if h["ended_at"] is None:
            out.append(f"still open {HOP_CLOSE_WAIT_S:.0f} s after the caller left")
        else:
            cause = f", cause {h['hangup_cause']}" if h["hangup_cause"] is not None else ""
            out.append(f"ended: {h['end_reason']}{cause}")
        return out


def random_caller() -> str:
    """A Moscow mobile of its own for each call: a fresh case, not the continuation of the
    last test call's (continue_case_within)."""
    return f"+7916{secrets.randbelow(10**7):07d}"


def check_daemon(settings: Settings) -> None:
    """LabError unless a daemon's health endpoint says it serves calls."""
    address = settings.health_address
    if address is None:
        return  # health_listen is off: nothing to ask; the call tells
    url = f"http://{address[0]}:{address[1]}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise LabError(f"the daemon at {url} does not serve calls yet "
                       f"(HTTP {exc.code}: {exc.read()[:200].decode(errors='replace')})") from None
    except (urllib.error.URLError, OSError) as exc:
        raise LabError(f"no daemon answers at {url}: start `hotline run` (or `make run`) first "
                       f"({getattr(exc, 'reason', exc)})") from None


def run_call(settings: Settings, plan: CallPlan) -> CallOutcome:
    asyncio.run(_check_number(settings, plan.number))
    started = datetime.now().astimezone()
    proc = place_call(plan.number, caller=plan.caller, keys=plan.keys, talk_s=plan.talk_s)
    output, _ = proc.communicate(timeout=plan.talk_s + 60)
    hop = asyncio.run(_caller_hop(settings.dsn, plan.caller, started))
    return CallOutcome(hop, proc.returncode == 0, output)


async def _check_number(settings: Settings, number: str) -> None:
    key = to_e164(number, settings.default_region) or number
    async with await connect(settings.dsn) as conn:
        cur = await conn.execute("SELECT 1 FROM numbers WHERE number = %s", (key,))
        if await cur.fetchone() is None:
            raise LabError(f"number {number!r} is not provisioned (`hotline number list` shows "
                           "the numbers; `hotline provision FILE` adds them)")


async def _caller_hop(dsn: str, caller: str, since: datetime) -> dict[str, Any] | None:
    """The caller's hop, once closed (or as it is after HOP_CLOSE_WAIT_S)."""
    deadline = time.monotonic() + HOP_CLOSE_WAIT_S
    async with await connect(dsn) as conn:
        while True:
            hop = await _hop(conn, caller, since)
            if (hop is not None and hop["ended_at"] is not None) or time.monotonic() > deadline:
                return hop
            await asyncio.sleep(0.2)


async def _hop(conn: AsyncConnection, caller: str, since: datetime) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT h.*, l.name AS hotline, q.name AS queue, a.name AS agent FROM hops h"
        " LEFT JOIN hotlines l ON l.id = h.hotline_id LEFT JOIN queues q ON q.id = h.queue_id"
        " LEFT JOIN agents a ON a.id = h.agent_id"
        " WHERE h.caller_num = %s AND h.entered_at >= %s ORDER BY h.id LIMIT 1", (caller, since))
    return await cur.fetchone()

