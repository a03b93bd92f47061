"""Transfers: an agent's talk passed to a queue, a hotline or another agent, inside the same case.

The customer's leg stays one hop. A blind transfer ends the talk (its `complete`, with its talk
time, and a `transfer` queue event naming the agent and the target), frees the agent into wrap-up,
takes the customer out of the case's bridge and sends them on to the target: a queue's visit (a
`join` on the same hop, counted in that queue's statistics like any caller) or a hotline's entry
(its menu included). To an agent: a visit of the talk's own queue that rings that agent first,
and when nobody answers waits at the head of that queue's line, or rings the transferring agent
back first, as the queue's `transfer_no_answer` says. Every transfer asked, done or refused, is
a row of `transfers`.

Who asks: the CLI, by an ARI user event about the customer's channel (`ask_transfer`), and the
agent's phone, by a REFER that Asterisk hands to the app (a ChannelTransfer event: agents' legs
are placed with PJSIP_TRANSFER_HANDLING() = ari-only). The router turns either into a
TransferAsked message in the call's inbox; the call's visit acts on it while it talks, or refuses
it, and a phone hears which by the NOTIFY that `transfer_progress` makes.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from hotline.asterisk.ari import AriClient
from hotline.asterisk.ari_events import ChannelTransfer, ChannelUserevent
from hotline.engine.messages import TransferAsked
from hotline.engine.routing.outbound import trunk_for
from hotline.errors import DialRefused, TransferRefused
from hotline.numbers import to_e164
from hotline.provision.model import Agent, Provisioning, Target, TargetAction

TRANSFER_EVENT = "hotline-transfer"
CONSULT_STEPS = ("begin", "complete", "cancel")  # of an attended transfer
CONSULT_ENDED_BY_RESTART = "the daemon restarted during the consult"  # its `cancelled` row's detail
NUMBER_LIKE = re.compile(r"\+?[0-9][0-9 ()-]{3,30}")  # what may be a telephone number, as typed
TARGET_KINDS = (TargetAction.QUEUE, TargetAction.HOTLINE)
ASKED_LIMIT = 64  # characters kept of who asked and of a target as asked
# An agent's leg: its REFER reaches the app (ChannelTransfer) instead of Asterisk's dialplan.
ARI_TRANSFERS = {"PJSIP_TRANSFER_HANDLING()": "ari-only"}
# transfer_progress states: what the phone that sent the REFER is told (its NOTIFY's sipfrag)
TRANSFER_DONE = "channel_answered"  # 200 OK
TRANSFER_REFUSED = "channel_declined"  # 603 Decline
# An agent's own consult call refused (no live talk of theirs): hung up with this ARI reason,
# 403 Forbidden, as the agents' context refuses what it does not hand on; refused because the
# colleague cannot take it (not free, a consult under way): 486 Busy Here.
CONSULT_REFUSED = "rejected"
CONSULT_BUSY = "busy"


@dataclass(frozen=True)
class AgentTarget:
    """A transfer to one agent (`agent:NAME`)."""

    name: str

    def __str__(self) -> str:
        return f"agent:{self.name}"


@dataclass(frozen=True)
class NumberTarget:
    """A transfer to an outside number (E.164), dialled through the trunk that allows it."""

    number: str

    def __str__(self) -> str:
        return f"number:{self.number}"


TransferTo = Target | AgentTarget | NumberTarget


@dataclass(frozen=True)
class Handoff:
    """What a transfer to one party does before the caller waits, first in the line of the queue
    the talk was in: dial `number` (an outside number), or ring `agent`, then, where the queue
    sends an unanswered transfer back to the transferring agent, `back_to`. All None: the caller
    is only placed first in line. `leg`: `agent`'s leg already ringing since `rung_at` (a consult
    whose transferring agent hung up), which rings on instead of a new one. `by`: the agent who
    passed the caller on."""

    agent: str | None = None
    back_to: str | None = None
    number: str | None = None
    leg: str | None = None
    rung_at: float = 0.0
    by: str | None = None  # the agent who passed the caller on (their page's screen pop says so)


def transfer_target(prov: Provisioning, text: str) -> TransferTo:
    """`queue:NAME`, `hotline:NAME`, `agent:NAME`, `number:NUMBER`, or a bare NAME that only one
    queue, hotline or agent has (an agent also by its endpoint: what a phone's REFER names), or a
    bare telephone number. A number is refused unless a trunk's allowed prefixes take it."""
    kind, sep, name = text.strip().partition(":")
    if not sep and name_or_number(prov, kind) == "number":
        return _number_target(prov, kind, kind)
    if not sep:
        name = kind
        found: list[TransferTo] = [Target(k, name) for k in TARGET_KINDS if name in _names(prov, k)]
        agent = _agent(prov, name)
        if agent is not None:
            found.append(AgentTarget(agent.name))
        if len(found) == 1:
            return found[0]
        if found:
            raise TransferRefused(f"{name!r} names more than one target: say "
                                  + " or ".join(f"{t.action if isinstance(t, Target) else 'agent'}:{name}"
                                                for t in found))
        raise TransferRefused(f"unknown transfer target {name!r}: no queue, hotline or agent has that name")
    if kind == "number":
        return _number_target(prov, name, text.strip())
    if kind == "agent":
        agent = _agent(prov, name)
        if agent is None:
            raise TransferRefused(f"unknown transfer target {text!r}: there is no agent {name!r}")
        return AgentTarget(agent.name)
    if kind not in TARGET_KINDS:
        raise TransferRefused(f"unknown transfer target {text!r}: "
                              f"a transfer goes to queue:NAME, hotline:NAME, agent:NAME or number:NUMBER")
    if name not in _names(prov, kind):
        raise TransferRefused(f"unknown transfer target {text!r}: there is no {kind} {name!r}")
    return Target(kind, name)


def name_or_number(prov: Provisioning, text: str) -> str:
    """"number" for a bare text that is a telephone number and names no queue, hotline or agent."""
    named = any(text in _names(prov, k) for k in TARGET_KINDS) or _agent(prov, text) is not None
    return "number" if not named and NUMBER_LIKE.fullmatch(text) and to_e164(text) else "name"


def _number_target(prov: Provisioning, text: str, asked: str) -> NumberTarget:
    number = to_e164(text)
    if number is None:
        raise TransferRefused(f"transfer target {asked!r} is not a valid telephone number")
    try:
        trunk_for(prov.trunks.values(), number)
    except DialRefused as refused:  # toll fraud: nothing outside a trunk's prefixes is dialled
        raise TransferRefused(f"transfer to {number} refused: {refused}") from None
    return NumberTarget(number)


def _agent(prov: Provisioning, name: str) -> Agent | None:
    """The agent of that name, or else of that endpoint."""
    if name in prov.agents:
        return prov.agents[name]
    return next((a for a in prov.agents.values() if a.endpoint == name), None)


def _names(prov: Provisioning, kind: str) -> dict[str, object]:
    return dict(prov.queues) if kind == TargetAction.QUEUE else dict(prov.hotlines)


def transfer_asked(event: ChannelUserevent) -> TransferAsked | None:
    """The TransferAsked a user event carries, or None when it is no transfer request."""
    if event.eventname != TRANSFER_EVENT:
        return None
    variables = event.variables
    asked_by = variables.get("asked_by", "")[:ASKED_LIMIT] or "unknown"
    kind = "attended" if variables.get("kind") == "attended" else "blind"
    step = variables.get("step", "begin") if kind == "attended" else "begin"
    return TransferAsked(variables.get("target", "")[:ASKED_LIMIT], asked_by,
                         variables.get("request") or None, kind=kind, step=step[:ASKED_LIMIT])


def transfer_referred(event: ChannelTransfer) -> TransferAsked | None:
    """The TransferAsked of a REFER, or None for Asterisk's echo of a progress the app reported."""
    if event.state is not None:
        return None
    if event.protocol_id:  # Replaces: the consult call it names is what the customer is passed to
        return TransferAsked(event.destination[:ASKED_LIMIT], "phone", refer_leg=event.source_channel_id,
                             kind="attended", step="complete",
                             replaces=event.destination_channel_id or "")
    return TransferAsked(event.destination[:ASKED_LIMIT], "phone", refer_leg=event.source_channel_id)


async def ask_transfer(ari: AriClient, app: str, channel_id: str, target: TransferTo | None,
                       asked_by: str, *, attended: bool = False, step: str = "begin") -> str:
    """Ask the daemon that runs `channel_id` to transfer its talk to `target` (blind, or the
    `step` of an attended one: complete and cancel name no target); the request id its row of
    transfers will carry."""
    request = uuid.uuid4().hex
    variables = {"target": "" if target is None else str(target), "asked_by": asked_by, "request": request}
    if attended:
        variables |= {"kind": "attended", "step": step}
    await ari.user_event(app, TRANSFER_EVENT, channel_id, variables)
    return request
