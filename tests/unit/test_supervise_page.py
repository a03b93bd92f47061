"""The agent page's supervision, without a lab: who the API lets supervise (the agent row's
flag), what a live talk's line shows, and what the asker (page or CLI) is told of each outcome."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from hotline.engine.supervision import LiveTalk
from hotline.engine.supervision_request import ANSWER_PATIENCE_S, TAKEN_PATIENCE_S, Look, outcome_said
from hotline.errors import SupervisionRefused, WebRefusal
from hotline.provision.model import Agent
from hotline.store.supervisions import SupervisionOutcome
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


def looks(*answers: SupervisionOutcome | None) -> tuple[Look, list[tuple[float, tuple[str, ...]]]]:
    """A look answering `answers` in turn, and what it was asked (patience, past outcomes)."""
    asked: list[tuple[float, tuple[str, ...]]] = []
    left = list(answers)

    async def look(request: str, within_s: float, past: Collection[str]) -> SupervisionOutcome | None:
        assert request == "r1"
        asked.append((within_s, tuple(past)))
        return left.pop(0)

    return look, asked


async def test_the_supervisor_in_is_said_as_the_cli_says_it() -> None:
    look, asked = looks(SupervisionOutcome("ringing", ""), SupervisionOutcome("supervising", ""))
    said = await outcome_said(look, "r1", 12, "whisper", "boss")
    assert said == "case 12: boss whispers to the agent (the customer does not hear them)"
    assert asked == [(TAKEN_PATIENCE_S, ()), (ANSWER_PATIENCE_S, ("ringing",))]


@pytest.mark.parametrize(("answers", "why"), [
    ((None,), "case 12: no daemon took the request within 10 s (is `hotline run` running?)"),
    ((SupervisionOutcome("refused", "boss is busy in a call"),),
     "case 12: listen refused: boss is busy in a call"),
    ((SupervisionOutcome("ringing", ""), SupervisionOutcome("unanswered", "not answered (No answer)")),
     "case 12: boss did not take the listen: not answered (No answer)"),
    ((SupervisionOutcome("ringing", ""), None), "case 12: boss did not take the listen: no answer"),
])
async def test_a_refusal_or_no_answer_is_one_line_why(answers: tuple[SupervisionOutcome | None, ...],
                                                      why: str) -> None:
    look, _ = looks(*answers)
    with pytest.raises(SupervisionRefused) as refused:
        await outcome_said(look, "r1", 12, "listen", "boss")
    assert str(refused.value) == why
