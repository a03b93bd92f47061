"""Pure parts of the composition root."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hotline.asterisk.ami_events import DeviceStateChange
from hotline.asterisk.ari_events import EndpointState, parse_endpoint
from hotline.config import Settings
from hotline.daemon import Daemon, endpoint_device_state
from hotline.provision.model import Agent, Provisioning, Queue


@pytest.mark.parametrize("endpoint, state", [
    ({"resource": "ivanov", "state": "offline", "channel_ids": []}, "UNAVAILABLE"),
    ({"resource": "ivanov", "state": "online", "channel_ids": []}, "NOT_INUSE"),
    ({"resource": "ivanov", "state": "online", "channel_ids": ["1795.1"]}, "INUSE"),
    ({"resource": "ivanov", "state": "unknown", "channel_ids": []}, "UNKNOWN"),
    ({"resource": "ivanov"}, "UNKNOWN"),
])
def test_an_ari_endpoint_reads_as_the_device_state_app_queue_would_see(endpoint: dict[str, object],
                                                                      state: str) -> None:
    assert endpoint_device_state(parse_endpoint(endpoint)) == state


class EndpointListTakingItsTime:
    """ARI's endpoint list, read while the phone registers: AMI's news of it arrives during the read."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def endpoints(self, tech: str) -> list[EndpointState]:
        await self.daemon._on_ami_event("a", DeviceStateChange("PJSIP/ivanov", "NOT_INUSE"))
        return [EndpointState("ivanov", "offline"), EndpointState("petrov", "online")]


async def test_an_endpoint_list_asked_for_before_amis_news_does_not_undo_it() -> None:
    daemon = Daemon(Settings(dsn="postgresql://x@127.0.0.1/x", ami_url="ami://u:s@127.0.0.1:5038",
                             ari_url="http://u:p@127.0.0.1:8088"))
    daemon.queues.provision(Provisioning(
        queues={"q": Queue("q")},
        agents={n: Agent(n, n, queues=(("q", 0),)) for n in ("ivanov", "petrov")}))
    link = SimpleNamespace(name="a", client=EndpointListTakingItsTime(daemon))
    await daemon._read_device_states(link)  # type: ignore[arg-type]
    assert daemon.queues.agents["ivanov"].device_state == "NOT_INUSE"  # AMI's, newer than the list
    assert daemon.queues.agents["petrov"].device_state == "NOT_INUSE"  # the list's


async def test_an_agent_in_use_on_one_node_is_in_use_whatever_the_other_node_says() -> None:
    daemon = Daemon(Settings(dsn="postgresql://x@127.0.0.1/x", ami_url="ami://u:s@127.0.0.1:5038",
                             ari_url="http://u:p@127.0.0.1:8088"))
    ivanov = Agent("ivanov", "ivanov", queues=(("q", 0),))
    daemon.queues.provision(Provisioning(queues={"q": Queue("q")}, agents={"ivanov": ivanov}))
    await daemon._on_ami_event("a", DeviceStateChange("PJSIP/ivanov", "INUSE"))
    await daemon._on_ami_event("b", DeviceStateChange("PJSIP/ivanov", "NOT_INUSE"))
    assert daemon.queues.agents["ivanov"].device_state == "INUSE"  # talking through node a
    await daemon._on_ami_event("a", DeviceStateChange("PJSIP/ivanov", "NOT_INUSE"))
    assert daemon.queues.agents["ivanov"].device_state == "NOT_INUSE"
