"""Calls to outside numbers: through the trunk whose allow-list takes the number, with the
trunk's caller id (the hotline's number), audio only (a carrier is never offered video). The one
place the engine dials the outside world; hotline.engine.routing.outbound decides what may be."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from hotline.engine.routing.outbound import dial_endpoint, trunk_for
from hotline.provision.model import Trunk

log = logging.getLogger(__name__)

CARRIER_FORMATS = "ulaw,alaw"  # what the reference `hotline-trunk` template allows, but opus/gsm


class Originator(Protocol):
    async def originate(self, endpoint: str, app: str, app_args: str, channel_id: str, *,
                        timeout_s: int, caller_id: str = "", formats: str | None = None,
                        variables: Mapping[str, str] | None = None) -> None: ...


async def dial_out(ari: Originator, trunks: Iterable[Trunk], number: str, *, app: str, app_args: str,
                   channel_id: str, variables: Mapping[str, str] | None = None) -> Trunk:
    """Dial `number` (E.164) into Stasis `app` with `app_args` (and `variables` on the channel),
    ringing for the trunk's `ring_timeout`; the trunk used (its timeout is the caller's deadline).
    DialRefused, and nothing dialled, when no trunk allows the number."""
    trunk = trunk_for(trunks, number)
    extra = {"variables": variables} if variables else {}  # most calls out carry none
    await ari.originate(dial_endpoint(trunk, number), app, app_args, channel_id,
                        timeout_s=trunk.ring_timeout,
                        caller_id=trunk.caller_id, formats=CARRIER_FORMATS, **extra)
    log.info("dialling %s through trunk %s as %s (%s)", number, trunk.name, trunk.caller_id, channel_id)
    return trunk
