"""A queue's callback offer to a waiting caller: what the announcements add, and the request a
caller's key makes (the number confirmed, then stored with the caller's join time, so the
callback keeps their place in the line). A menu key or closed action `callback:QUEUE` makes one
for a caller not in the line: it joins QUEUE's line now. Placing it later:
hotline.engine.callback_placer.

Sounds are Asterisk's core sounds: "to call this person back, press 5" is the nearest they say.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from hotline.cancellation import raise_if_cancelled
from hotline.engine import built_in_prompts as prompts
from hotline.engine.built_in_prompts import sound
from hotline.engine.callback_number import ask_number
from hotline.engine.context import CallbackStore, CallContext
from hotline.engine.facts import QueueStep
from hotline.engine.ivr import CallIO
from hotline.engine.outcomes import QueueEventKind
from hotline.engine.queueing.callback_rules import CallbackRules, expires_at
from hotline.engine.routing.outbound import may_dial
from hotline.provision.model import Queue, Trunk
from hotline.store.callbacks import CallbackRequest
from hotline.store.db import STORE_DOWN
from hotline.store.hops import Hop

log = logging.getLogger(__name__)

THANK_YOU = (sound(prompts.THANK_YOU), sound(prompts.GOODBYE))  # stored: the caller hangs up
TRY_LATER = sound(prompts.TRY_LATER)  # the request could not be stored: the caller waits on


def offer_media(queue: Queue) -> list[str]:
    """What a position announcement adds when the queue offers callbacks."""
    if queue.callback_key is None:
        return []
    return [sound(prompts.TO_CALL_BACK), sound(prompts.PRESS), f"digits:{queue.callback_key}"]


def rules_of(queue: Queue) -> CallbackRules:
    return CallbackRules(retries=queue.callback_retries, retry_interval_s=queue.callback_retry_interval,
                         expiry_s=queue.callback_expiry)


async def ask_callback(io: CallIO, store: CallbackStore, trunks: list[Trunk], queue: Queue, *,
                       queue_id: int, case_id: int, hop_id: int | None, caller_id: str | None,
                       region: str, joined_at: datetime,
                       expiry_from: datetime | None = None) -> CallbackRequest | None:
    """Ask the caller for the number, and store the request, due now, its expiry counted from
    `expiry_from` (None: now; a closed hotline's next opening: the placer holds it until then);
    None when they gave no number (or it could not be stored: they heard "please try later"),
    and go back to waiting."""
    number = await ask_number(io, caller_id, lambda n: any(may_dial(t, n) for t in trunks), region)
    if number is None:
        return None
    now = datetime.now(UTC)
    try:
        made = await store.request(case_id=case_id, hop_id=hop_id, queue_id=queue_id, number=number,
                                   joined_at=joined_at, due_at=now,
                                   expires_at=expires_at(rules_of(queue), max(now, expiry_from or now)))
    except (*STORE_DOWN, TimeoutError) as exc:  # the database away: nothing promised, they wait on
        raise_if_cancelled()
        log.warning("call %s: callback request not stored: %s", io.channel_id, exc)
        await io.play(TRY_LATER)
        return None
    log.info("call %s: callback %s asked in queue %s to %s", io.channel_id, made.id, queue.name,
             number)
    for media in THANK_YOU:
        await io.play(media)
    return made


async def ask_callback_in(io: CallIO, ctx: CallContext, queue_name: str, *, hop: Hop | None,
                          caller_id: str | None, priority: int,
                          expiry_from: datetime | None = None) -> tuple[QueueStep, ...] | None:
    """A menu key or closed action `callback:QUEUE` (the caller not in any line): ask the number
    and store the request in QUEUE, joining its line now; the visit it records (a join and its
    `callback`, waiting 0), or None when nothing was stored (no case, no number, the database
    away)."""
    snapshot = ctx.directory.snapshot
    queue, queue_id = snapshot.prov.queues.get(queue_name), snapshot.ids.get("queues", {}).get(queue_name)
    if hop is None or ctx.callbacks is None or queue is None or queue_id is None:
        log.info("call %s: callback in queue %s, but no request can be stored", io.channel_id, queue_name)
        return None
    joined = datetime.now(UTC)
    position = ctx.queues.length(queue_name) + 1  # behind everyone waiting now
    made = await ask_callback(io, ctx.callbacks, list(snapshot.prov.trunks.values()), queue,
                              queue_id=queue_id, case_id=hop.case_id, hop_id=hop.id, caller_id=caller_id,
                              region=ctx.region, joined_at=joined, expiry_from=expiry_from)
    if made is None:
        return None
    return (QueueStep(queue_id, QueueEventKind.JOIN, position=position, at=joined, priority=priority),
            QueueStep(queue_id, QueueEventKind.CALLBACK, wait_ms=0,
                      detail=f"callback {made.id} to {made.number}"))
