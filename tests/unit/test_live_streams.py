"""The pages' Server-Sent Event streams through make_app and aiohttp's test client, with a real
hub: who may open them, what a ring looks like on the agent's stream, the wallboard's pictures,
and every stream ending when the application shuts down."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientResponse, hdrs
from aiohttp.test_utils import TestClient, TestServer

from hotline.engine.live_hub import WALLBOARD, Event, LiveHub, RingNews, Subscription, agent_topic, ring_event
from hotline.errors import WebRefusal
from hotline.web.app import WebConfig, make_app

TOKEN = "wallboard-token-0123456789"
CONFIG = WebConfig(sip_ws_url="ws://127.0.0.1:8088/ws", sip_domain="127.0.0.1",
                   origin="https://video.example.ru", supervisor_token=TOKEN)
NEWS = RingNews("ivanov", "leg-1", 7, 9, "support", "+79161234567", "Petr", 1_796_000_000.0)


class Backend:
    def __init__(self) -> None:
        self.hub = LiveHub()
        self.pictures = 0

    def authenticate(self, endpoint: str, password: str) -> bool:
        return (endpoint, password) == ("ivanov-ep", "secret")

    def subscribe_agent(self, endpoint: str) -> Subscription:
        if endpoint != "ivanov-ep":
            raise WebRefusal(401, "Wrong agent or password")
        return self.hub.subscribe(agent_topic("ivanov"))  # the endpoint's agent

    def subscribe_wallboard(self) -> Subscription:
        return self.hub.subscribe(WALLBOARD)

    async def screen_pop(self, event: Event) -> Event:
        if event["state"] != "ringing":
            return event
        return event | {"earlier_hops": [{"seq": 1, "agent": "petrov"}]}

    async def wallboard(self) -> Event:
        self.pictures += 1
        return {"picture": self.pictures, "queues": [], "agents": []}

    def desk(self, endpoint: str) -> dict[str, object]:
        self.pictures += 1
        return {"agent": "ivanov", "state": "paused", "reason": "lunch", "picture": self.pictures}


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
async def client(backend: Backend) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(make_app(CONFIG, backend))) as test_client:  # type: ignore[arg-type]
        yield test_client


def basic(endpoint: str, password: str) -> dict[str, str]:
    return {hdrs.AUTHORIZATION: "Basic " + base64.b64encode(f"{endpoint}:{password}".encode()).decode()}


async def next_event(response: ClientResponse) -> tuple[str, dict[str, object]]:
    """The next event of the stream (keepalive comments skipped): its kind and its data."""
    kind, data = "", ""
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and kind:
            return kind, json.loads(data)


async def wait_subscribed(hub: LiveHub, topic: str) -> None:
    for _ in range(100):
        if hub.subscribers(topic):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"nobody subscribed to {topic}")


@pytest.mark.parametrize("headers", [{}, basic("ivanov-ep", "wrong"),
                                     {hdrs.AUTHORIZATION: f"Bearer {TOKEN}"}])
async def test_the_screen_pop_stream_needs_the_agents_own_login(
        client: TestClient, headers: dict[str, str]) -> None:
    response = await client.get("/api/agent/events", headers=headers)
    assert response.status == 401
    assert "WWW-Authenticate" not in response.headers
    assert response.content_type == "application/json"


async def test_the_agents_stream_says_hello_then_the_ring_its_history_and_its_answer(
        client: TestClient, backend: Backend) -> None:
    response = await client.get("/api/agent/events", headers=basic("ivanov-ep", "secret"))
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    assert response.headers[hdrs.CACHE_CONTROL] == "no-store"
    assert await next_event(response) == ("hello", {"stream": "screenpop"})
    backend.hub.publish(agent_topic("petrov"), ring_event(NEWS, "ringing"))  # another agent's ring
    backend.hub.publish(agent_topic("ivanov"), ring_event(NEWS, "ringing"))
    backend.hub.publish(agent_topic("ivanov"), ring_event(NEWS, "answered"))
    kind, ringing = await next_event(response)
    assert (kind, ringing["state"], ringing["caller"], ringing["earlier_hops"]) == (
        "screenpop", "ringing", "+79161234567", [{"seq": 1, "agent": "petrov"}])
    kind, answered = await next_event(response)
    assert (answered["state"], answered["ring"], "earlier_hops" in answered) == ("answered", "leg-1", False)
    response.close()


@pytest.mark.parametrize("headers", [basic("ivanov-ep", "secret"), {hdrs.AUTHORIZATION: f"Bearer {TOKEN}"}])
async def test_the_wallboard_stream_opens_to_an_agent_or_the_supervisor_token_and_sends_a_picture_per_change(
        client: TestClient, backend: Backend, headers: dict[str, str]) -> None:
    response = await client.get("/api/wallboard/events", headers=headers)
    assert response.status == 200 and response.content_type == "text/event-stream"
    assert await next_event(response) == ("wallboard", {"picture": 1, "queues": [], "agents": []})
    await wait_subscribed(backend.hub, WALLBOARD)
    for _ in range(3):  # changes piling up before the page reads: one picture shows them
        backend.hub.publish(WALLBOARD, {"changed": "now"})
    assert (await next_event(response))[1]["picture"] == 2
    response.close()


async def test_the_wallboard_stream_refuses_a_wrong_token(client: TestClient) -> None:
    response = await client.get("/api/wallboard/events", headers={hdrs.AUTHORIZATION: f"Bearer {TOKEN}x"})
    assert response.status == 401


async def test_the_wallboard_page_is_served_without_a_login_and_names_its_stream(client: TestClient) -> None:
    response = await client.get("/wallboard")
    body = await response.text()
    assert response.status == 200
    assert '"eventsApi": "/api/wallboard/events"' in body and 'src="/static/wallboard.js"' in body


async def test_a_shutdown_ends_the_open_streams_at_once(backend: Backend) -> None:
    app = make_app(CONFIG, backend)  # type: ignore[arg-type]
    client = TestClient(TestServer(app))
    await client.start_server()
    response = await client.get("/api/agent/events", headers=basic("ivanov-ep", "secret"))
    await next_event(response)
    await wait_subscribed(backend.hub, agent_topic("ivanov"))
    await asyncio.wait_for(client.close(), 3)  # the stream's handler returned: nothing held the stop
    assert backend.hub.subscribers(agent_topic("ivanov")) == 0


async def test_the_desk_stream_sends_the_agents_own_desk_at_once_and_again_on_a_change(
        client: TestClient, backend: Backend) -> None:
    assert (await client.get("/api/agent/desk", headers=basic("ivanov-ep", "wrong"))).status == 401
    response = await client.get("/api/agent/desk", headers=basic("ivanov-ep", "secret"))
    assert response.status == 200 and response.content_type == "text/event-stream"
    assert await next_event(response) == ("hello", {"stream": "desk"})
    kind, first = await next_event(response)
    assert (kind, first["state"], first["reason"], first["picture"]) == ("desk", "paused", "lunch", 1)
    await wait_subscribed(backend.hub, WALLBOARD)
    backend.hub.publish(WALLBOARD, {"changed": "now"})
    kind, second = await next_event(response)
    assert (kind, second["picture"]) == ("desk", 2)
    response.close()
