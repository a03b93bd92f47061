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

import uuid
from dataclasses import dataclass

from hotline.asterisk.ari import AriClient
from hotline.asterisk.ari_events import ChannelTransfer, ChannelUserevent
from hotline.engine.messages import TransferAsked
from hotline.errors import TransferRefused
from hotline.provision.model import Agent, Provisioning, Target, TargetAction

TRANSFER_EVENT = "hotline-transfer"
TARGET_KINDS = (TargetAction.QUEUE, TargetAction.HOTLINE)
ASKED_LIMIT = 64  # characters kept of who asked and of a target as asked
# An agent's leg: its REFER reaches the app (ChannelTransfer) instead of Asterisk's dialplan.
ARI_TRANSFERS = {"PJSIP_TRANSFER_HANDLING()": "ari-only"}
# transfer_progress states: what the phone that sent the REFER is told (its NOTIFY's sipfrag)
TRANSFER_DONE = "channel_answered"  # 200 OK
TRANSFER_REFUSED = "channel_declined"  # 603 Decline


@dataclass(frozen=True)
class AgentTarget:
    """A transfer to one agent (`agent:NAME`)."""

    name: str

    def __str__(self) -> str:
        return f"agent:{self.name}"


TransferTo = Target | AgentTarget


@dataclass(frozen=True)
class DirectRing:
    """What a visit begun by a transfer to an agent rings before it waits in line: `agent`, then,
    where the queue sends an unanswered transfer back to the transferring agent, `back_to`."""

    agent: str
    back_to: str | None = None


def transfer_target(prov: Provisioning, text: str) -> TransferTo:
    """`queue:NAME`, `hotline:NAME`, `agent:NAME`, or a bare NAME that only one queue, hotline or
    agent has (an agent also by its endpoint: what a phone's REFER names)."""
    kind, sep, name = text.strip().partition(":")
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
    if kind == "agent":
        agent = _agent(prov, name)
        if agent is None:
            raise TransferRefused(f"unknown transfer target {text!r}: there is no agent {name!r}")
        return AgentTarget(agent.name)
    if kind not in TARGET_KINDS:
        raise TransferRefused(f"unknown transfer target {text!r}: "
                              f"a transfer goes to queue:NAME, hotline:NAME or agent:NAME")
    if name not in _names(prov, kind):
        raise TransferRefused(f"unknown transfer target {text!r}: there is no {kind} {name!r}")
    return Target(kind, name)


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
    asked_by = event.variables.get("asked_by", "")[:ASKED_LIMIT] or "unknown"
    return TransferAsked(event.variables.get("target", "")[:ASKED_LIMIT], asked_by,
                         event.variables.get("request") or None)


def transfer_referred(event: ChannelTransfer) -> TransferAsked | None:
    """The TransferAsked of a REFER, or None for Asterisk's echo of a progress the app reported."""
    if event.state is not None:
        return None
    kind = "attended" if event.protocol_id and not event.destination else "blind"
    return TransferAsked(event.destination[:ASKED_LIMIT], "phone", refer_leg=event.source_channel_id,
                         kind=kind)


async def ask_transfer(ari: AriClient, app: str, channel_id: str, target: TransferTo,
                       asked_by: str) -> str:
    """Ask the daemon that runs `channel_id` to transfer its talk to `target`; the request id
    its row of transfers will carry."""
    request = uuid.uuid4().hex
    await ari.user_event(app, TRANSFER_EVENT, channel_id,
                         {"target": str(target), "asked_by": asked_by, "request": request})
    return request
