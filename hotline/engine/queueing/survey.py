"""The post-call survey: after its agent hangs up, a caller of a queue with a `survey` hears one
or two questions, each answered with a key 1-5, then the queue's `survey_thanks`, and the call
ends. Run by the caller's own task, after the talk was recorded as over (so its time is no talk
time); each answer is recorded as it comes (SurveyAnswered, through the call's funnel).

A question is played with keys cutting it short, then waits `survey_key_timeout_s` for a key. No
key in time, or a key that is no score, and the question is asked once more; then it is skipped.
So each question is played at most twice whatever the caller presses, and a flood of keys ends
the survey quickly (the call's inbox keeps only a few keys ahead). The caller hanging up raises
CallerGone out of it: what was answered stays recorded.
"""

from __future__ import annotations

import logging
from typing import Protocol

from hotline.engine.call_state import CallState
from hotline.engine.facts import Fact, SurveyAnswered

log = logging.getLogger(__name__)

SCORES = frozenset("12345")
ASKED_AT_MOST = 2  # a question is played at most this many times


class SurveyedCall(Protocol):
    """What the survey needs of a call (engine.call.InboundCall)."""

    @property
    def channel_id(self) -> str: ...
    def move(self, new: CallState, *facts: Fact) -> None: ...
    async def play(self, media: str, *, stop_on_digit: bool = False) -> str | None: ...
    async def digit(self, timeout: float) -> str | None: ...


async def run_survey(call: SurveyedCall, questions: tuple[str, ...], thanks: str | None,
                     key_timeout_s: float) -> list[int | None]:
    """Ask each question, record each answer, thank the caller; the scores (None: skipped)."""
    scores: list[int | None] = []
    for number, question in enumerate(questions, start=1):
        score = await ask(call, question, key_timeout_s)
        scores.append(score)
        if score is None:
            log.info("call %s: survey question %d skipped", call.channel_id, number)
            continue
        log.info("call %s: survey question %d answered %d", call.channel_id, number, score)
        call.move(CallState.SURVEY, SurveyAnswered(number, score))
    if thanks is not None:
        await call.play(f"sound:{thanks}")
    return scores


async def ask(call: SurveyedCall, question: str, key_timeout_s: float) -> int | None:
    """One question: its score, or None when no score came in ASKED_AT_MOST tries."""
    for _ in range(ASKED_AT_MOST):
        key = await call.play(f"sound:{question}", stop_on_digit=True) or await call.digit(key_timeout_s)
        if key is not None and key in SCORES:
            return int(key)
        log.debug("call %s: survey key %r is no score", call.channel_id, key)
    return None
