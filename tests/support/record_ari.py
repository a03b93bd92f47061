"""Record the raw ARI events of one call on the lab, for the unit tests' transcripts.

    eval "$(hotline lab env)"; python tests/support/record_ari.py OUT.jsonl
    # then, from another shell: sipp 127.0.0.1:5060 -i 127.0.0.2 -sn uac -s 84951234567 -m 1

It serves the call as the first slice does (subscribe, answer, play, hang up) and writes every
event as one JSON line; run it only when no daemon is connected.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp

from hotline.asterisk.ari import AriClient
from hotline.config import load_settings


async def record(out_path: str) -> None:
    settings = load_settings()
    client = AriClient(settings.ari)
    app = settings.ari_app
    async with client.http.ws_connect(client.url("events"), params={"app": app}) as ws:
        with open(out_path, "w") as out:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                event = json.loads(msg.data)
                out.write(json.dumps(event, ensure_ascii=False) + "\n")
                if event["type"] == "StasisStart":
                    channel = event["channel"]["id"]
                    await client.subscribe(app, f"channel:{channel}")
                    await client.answer(channel)
                    await client.play(channel, "sound:hello-world")
                elif event["type"] == "PlaybackFinished":
                    await client.hangup(event["playback"]["target_uri"].split(":", 1)[1])
                elif event["type"] == "ChannelDestroyed":
                    break
    await client.close()


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1]))
