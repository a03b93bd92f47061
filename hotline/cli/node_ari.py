"""The ARI a CLI request about a live call goes to: the node its leg is on (a user event reaches
the daemon only through the Asterisk that has the channel; a leg joining a case must be placed on
the node of the case's bridge). No node provisioned: the settings' one Asterisk, as before."""

from __future__ import annotations

from psycopg import AsyncConnection

from hotline.asterisk.ari import AriClient
from hotline.asterisk.nodes import endpoint_at
from hotline.config import Settings
from hotline.store import nodes


async def ari_for_channel(conn: AsyncConnection, settings: Settings, channel_id: str) -> AriClient:
    return AriClient(endpoint_at(settings.ari, await nodes.ari_url_of_channel(conn, channel_id)))


async def ari_for_case(conn: AsyncConnection, settings: Settings, case_id: int) -> AriClient:
    return AriClient(endpoint_at(settings.ari, await nodes.ari_url_of_case(conn, case_id)))
