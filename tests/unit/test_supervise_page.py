"""The agent page's supervision, without a lab: who the API lets supervise (the agent row's
flag), and what a live talk's line shows."""

from __future__ import annotations

import pytest

from hotline.engine.supervision import LiveTalk
from hotline.errors import WebRefusal
from hotline.provision.model import Agent
from hotline.web.backend import supervisor_of

AGENTS = {"boss": Agent("boss", "ep-boss", supervisor=True), "ivanov": Agent("ivanov", "ep-ivanov")}


def test_a_supervisors_endpoint_gives_their_agent() -> None:
    assert supervisor_of(AGENTS, "ep-boss").name == "boss"


def test_an_agent_whose_row_is_no_supervisor_is_refused_403() -> None:
    with pytest.raises(WebRefusal) as refused:
        supervisor_of(AGENTS, "ep-ivanov")
    assert (refused.value.status, refused.value.message) == (403, "Supervising talks is for supervisors")


def test_an_endpoint_provisioning_removed_since_the_login_is_refused_401() -> None:
    """By endpoint, never by name: an agent named like another's endpoint gets nothing of theirs."""
    with pytest.raises(WebRefusal) as refused:
        supervisor_of(AGENTS, "boss")
    assert refused.value.status == 401


def test_a_live_talk_shows_its_whole_seconds_and_never_a_negative_time() -> None:
    talk = LiveTalk(case_id=12, queue="support", agent="ivanov", caller="+79161234567", since=1000.0)
    assert talk.json(1065.9) == {"case": 12, "queue": "support", "agent": "ivanov",
                                 "caller": "+79161234567", "talk_s": 65}
    assert talk.json(999.0)["talk_s"] == 0  # a clock a moment behind the daemon's
