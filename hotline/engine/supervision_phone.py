"""Supervision asked from the supervisor's own phone: a feature code and an agent (`*51anna`
listen, `*52anna` whisper, `*53anna` barge; hotline.provision.render.SUPERVISE_CODES) dialled in
the agents' context reaches Stasis as `supervise,AGENT_ENDPOINT,mode=MODE,by=CALLER_ENDPOINT`.

The call itself becomes the supervisor's leg (no second ring): checked here before anything
answers it, then a Supervision (hotline.engine.supervision) answers it and listens, whispers or
barges as when the CLI asks, with a row of supervisions asked by `phone:NAME`. A refusal is a SIP
answer before answer, each chosen so a desk phone's display says what happened (chan_pjsip maps
the ARI hangup reason's cause: rejected 21 -> 403, no_answer 19 -> 480, busy 17 -> 486)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from hotline.engine.queueing.agent_state import AgentState, AgentStatus
from hotline.engine.supervision import MODES, Talk
from hotline.provision.model import Agent, Provisioning

REJECTED = "rejected"  # 403 Forbidden: not a supervisor, their own talk, not from an agent's phone
UNKNOWN = "unallocated"  # 404 Not Found: no agent (any more) has the endpoint dialled
NO_TALK = "no_answer"  # 480 Temporarily Unavailable: the agent talks with no customer here
BUSY = "busy"  # 486 Busy Here: the supervisor is on a call of their own, or supervising already


@dataclass(frozen=True)
class Dialled:
    """What the supervisor's phone dialled, as the dialplan passed it."""

    mode: str
    target: str  # the agent's endpoint
    by: str  # the endpoint of the phone that dialled
    from_agents: bool  # it came through the agents' context (else nobody's phone dialled it)


@dataclass(frozen=True)
class PhoneRefusal:
    reason: str  # the ARI hangup reason, which says the SIP answer
    why: str  # one line for the log (and the row, when a talk was found)


def caller_of(prov: Provisioning, dialled: Dialled) -> Agent | None:
    """The agent whose phone dialled."""
    return next((a for a in prov.agents.values() if a.endpoint == dialled.by), None)


def target_of(prov: Provisioning, dialled: Dialled) -> Agent | None:
    return next((a for a in prov.agents.values() if a.endpoint == dialled.target), None)


def phone_refusal(dialled: Dialled, caller: Agent | None, target: Agent | None, talk: Talk | None,
                  state: AgentState | None, supervising: Collection[str], in_a_talk: bool,
                  now: float) -> PhoneRefusal | None:
    """Why the daemon will not take this call as a supervision (a reason that says the SIP
    answer, and one line), or None: it may. `state`: the caller's live agent state;
    `supervising`: the supervisors whose supervision runs now; `in_a_talk`: the caller talks with
    a customer of this daemon."""
    if not dialled.from_agents or dialled.mode not in MODES:
        return PhoneRefusal(REJECTED, f"{dialled.mode or '?'} not dialled from an agent's phone")
    if caller is None:
        return PhoneRefusal(REJECTED, f"endpoint {dialled.by!r} is no agent's")
    if not caller.supervisor:
        return PhoneRefusal(REJECTED, f"agent {caller.name!r} is not a supervisor")
    if target is None:
        return PhoneRefusal(UNKNOWN, f"no agent has endpoint {dialled.target!r}")
    if target.endpoint == caller.endpoint:
        return PhoneRefusal(REJECTED, f"{caller.name} cannot {dialled.mode} their own talk")
    if talk is None:
        return PhoneRefusal(NO_TALK, f"agent {target.name} is in no live talk here")
    if caller.name in supervising:
        return PhoneRefusal(BUSY, f"{caller.name} is already supervising a talk")
    # Not the device state: the phone is busy with this very call.
    if in_a_talk or (state is not None and state.status(now) is AgentStatus.RINGING):
        return PhoneRefusal(BUSY, f"{caller.name} is busy in a call")
    return None
