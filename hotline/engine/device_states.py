"""An agent phone's device state across nodes. With several Asterisk nodes behind Kamailio, each
node reports the same endpoint (reached through Kamailio): in use on the node where the agent
talks, and otherwise what a static contact says, which is nothing about the phone (a node cannot
see a registration made at Kamailio, and any answer to its qualify, 404 included, reads as
reachable). So the queues' one state is: in use on any node wins; else, when Kamailio's location
table is known, registered there is idle and not registered is unavailable; else (one node) what
the nodes say, the most telling word first."""

from __future__ import annotations

IN_USE = ("INUSE", "BUSY", "RINGINUSE", "RINGING", "ONHOLD")
# From the state that says most about the phone to the least: the first any node reports wins.
PRECEDENCE = (*IN_USE, "NOT_INUSE", "UNAVAILABLE", "INVALID", "UNKNOWN")


def combined(states: list[str], registered: bool | None = None) -> str:
    """One device state from every node's word and, behind Kamailio, whether the phone is
    registered there (None: no registrar in front; one node's word is then kept as it is)."""
    present = set(states)
    busy = next((s for s in IN_USE if s in present), None)
    if busy is not None:
        return busy
    if registered is not None:
        return "NOT_INUSE" if registered else "UNAVAILABLE"
    if len(states) == 1:
        return states[0]
    return next((s for s in PRECEDENCE if s in present), "UNKNOWN")


class NodeDeviceStates:
    """Each node's last word per endpoint, and Kamailio's registrations when known; `told` and
    `registrations` answer the combined states to give the queues."""

    def __init__(self) -> None:
        self._words: dict[str, dict[str, str]] = {}  # endpoint -> node -> state
        self._registered: set[str] | None = None  # None: no registrar in front of the nodes

    def _state(self, endpoint: str) -> str:
        registered = None if self._registered is None else endpoint in self._registered
        return combined(list(self._words.get(endpoint, {}).values()), registered)

    def told(self, node: str, endpoint: str, state: str) -> str:
        self._words.setdefault(endpoint, {})[node] = state
        return self._state(endpoint)

    def registrations(self, registered: set[str]) -> dict[str, str]:
        """Kamailio's registered endpoints now: the combined state of each endpoint whose
        registration changed (or that is seen for the first time)."""
        before, self._registered = self._registered, set(registered)
        # the first list changes every phone a node spoke of: their static contacts said nothing
        changed = registered | set(self._words) if before is None else registered ^ before
        return {endpoint: self._state(endpoint) for endpoint in changed}

    def forget_node(self, node: str) -> dict[str, str]:
        """A node let go or lost says nothing any more (its last "in use" ended with it): the
        combined state of each endpoint it had a word on."""
        changed = [endpoint for endpoint, words in self._words.items() if words.pop(node, None) is not None]
        return {endpoint: self._state(endpoint) for endpoint in changed}
