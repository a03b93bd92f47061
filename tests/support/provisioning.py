"""Provisioning a test's own database, the way `hotline provision FILE` does."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import date, timedelta

import psycopg

from hotline.store.provisioning_changes import apply_document

# What the call tests dial: a single-line and a two-line city number, an 8-800 number and a video
# address, all on one open hotline whose queue has no agents: callers wait 2 s, then overflow.
BASE = """
[queues.support]
max_wait = 2
overflow = "hangup"

[hotlines.city]
entry = "queue:support"

[numbers."+74951234567"]
hotline = "city"
lines = 1

[numbers."+74957654321"]
hotline = "city"
lines = 2

[numbers."+78005553535"]
hotline = "city"

[numbers.support]
hotline = "city"
"""


def closed_today(name: str = "closed") -> str:
    """A hotline closed around today whatever the time zone: holidays yesterday to tomorrow."""
    days = ", ".join(f'"{date.today() + timedelta(days=d)}" = "closed"' for d in (-1, 0, 1))
    return f"""
[hotlines.{name}]
entry = "queue:support"
hours = ["daily 00:00-24:00"]
holidays = {{ {days} }}
closed_prompt = "vm-goodbye"
"""


def provision(dsn: str, text: str) -> None:
    async def go() -> None:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        async with conn:
            await apply_document(conn, tomllib.loads(text))
    asyncio.run(go())
