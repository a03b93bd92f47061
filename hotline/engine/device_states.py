"""An agent phone's device state across nodes. With several Asterisk nodes behind Kamailio, each
node reports the same endpoint (reached through Kamailio): in use on the node where the agent
talks, idle (or unavailable, once its qualify through Kamailio fails) on the others. The queues
want one state: in use anywhere wins, then reachable anywhere, then what the nodes agree on."""

from __future__ import annotations

# From the state that says most about the phone to the least: the first any node reports wins.
PRECEDENCE = ("INUSE", "BUSY", "RINGINUSE", "RINGING", "ONHOLD", "NOT_INUSE", "UNAVAILABLE", "INVALID",
              "UNKNOWN")


def combined(states: list[str]) -> str:
    """One device state from every node's word (one node: its word, unchanged)."""
    if len(states) == 1:
        return states[0]
    present = set(states)
    return next((s for s in PRECEDENCE if s in present), "UNKNOWN")


class NodeDeviceStates:
    """Each node's last word per endpoint; `told` answers the combined state to give the queues."""

    def __init__(self) -> None:
        self._words: dict[str, dict[str, str]] = {}  # endpoint -> node -> state

    def told(self, node: str, endpoint: str, state: str) -> str:
        words = self._words.setdefault(endpoint, {})
        words[node] = state
        return combined(list(words.values()))

    def forget_node(self, node: str) -> None:
        for words in self._words.values():
            words.pop(node, None)
