"""The states of an inbound call and the transitions between them.

    ENTERED ──► IN_MENU ──► WAITING ◄──► RINGING ──► TALKING ──► LEAVING ──► ENDED
       │           ▲           │            │           │  │        ▲ ▲
       └──► PROMPTING ─────────┴────────────┴───────────┼──┼────────┘ │
                   ▲           ▲                        │  └► SURVEY ─┘
                   └───────────┴──── transferred ───────┘

A transfer takes a talking call on to a queue (WAITING) or a hotline's entry (IN_MENU). A talk its
agent ended in a queue with a survey goes on to SURVEY: the talk is over and recorded, the caller
answers the questions, then leaves.

A call changes state only through its one funnel (InboundCall._move), which checks the move
against ALLOWED, logs it, and submits the records of the change. A state may move to itself: a
step that records something (a key pressed, an agent rung) without changing where the call is.
"""

from __future__ import annotations

import enum


class CallState(enum.StrEnum):
    ENTERED = "entered"      # in Stasis; its hop being opened and its route decided
    PROMPTING = "prompting"  # hearing a last message (not in service, closed) before the hangup
    IN_MENU = "in_menu"      # in the IVR
    WAITING = "waiting"      # in a queue's line, with music (or ringback before the first ring)
    RINGING = "ringing"      # in a queue, one or more agents rung for it
    TALKING = "talking"      # in the case's bridge with an agent
    SURVEY = "survey"        # the agent hung up; the caller answers the queue's survey
    LEAVING = "leaving"      # its end reason decided; its channel being hung up or gone
    ENDED = "ended"          # its hop closed (or the call refused before it had one)


_S = CallState
ALLOWED: dict[CallState, frozenset[CallState]] = {
    _S.ENTERED: frozenset({_S.ENTERED, _S.PROMPTING, _S.IN_MENU, _S.WAITING, _S.TALKING, _S.LEAVING,
                           _S.ENDED}),
    _S.PROMPTING: frozenset({_S.LEAVING}),
    _S.IN_MENU: frozenset({_S.IN_MENU, _S.WAITING, _S.LEAVING}),
    _S.WAITING: frozenset({_S.WAITING, _S.RINGING, _S.IN_MENU, _S.LEAVING}),
    _S.RINGING: frozenset({_S.RINGING, _S.WAITING, _S.TALKING, _S.IN_MENU, _S.LEAVING}),
    # TALKING -> TALKING: a step within the talk (a transfer refused, or the one that ends it)
    _S.TALKING: frozenset({_S.TALKING, _S.WAITING, _S.IN_MENU, _S.SURVEY, _S.LEAVING}),
    # SURVEY -> SURVEY: an answer recorded
    _S.SURVEY: frozenset({_S.SURVEY, _S.LEAVING}),
    _S.LEAVING: frozenset({_S.LEAVING, _S.ENDED}),
    _S.ENDED: frozenset(),
}

# Where a caller hanging up ends a handled contact; anywhere before, it is abandoned.
HANDLED = frozenset({_S.TALKING})


def allowed(old: CallState, new: CallState) -> bool:
    return new in ALLOWED[old]
