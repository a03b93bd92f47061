"""What applying a desired provisioning would change: added, changed (which fields), removed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hotline.provision.model import Agent, Provisioning

# How each kind is called in one line of a plan.
SINGULAR = {"queues": "queue", "menus": "menu", "hotlines": "hotline", "numbers": "number",
            "agents": "agent", "trunks": "trunk", "nodes": "node", "pause_reasons": "pause reasons"}


@dataclass(frozen=True)
class Change:
    kind: str  # a Provisioning section: queues, menus, ...
    name: str
    op: str  # add | change | remove
    fields: tuple[str, ...] = ()

    def line(self) -> str:
        sign = {"add": "+", "change": "~", "remove": "-"}[self.op]
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{sign} {SINGULAR[self.kind]} {self.name}{detail}"


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...] = field(default_factory=tuple)
    # SIP passwords generated for agents that had none, by agent: shown once, then only their
    # HA1 is kept (hotline.provision.sip_auth). Never in a repr.
    generated_passwords: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        return not self.changes

    def touched(self, kind: str) -> list[str]:
        """Names of `kind` to write (added or changed)."""
        return [c.name for c in self.changes if c.kind == kind and c.op != "remove"]

    def removed(self, kind: str) -> list[str]:
        return [c.name for c in self.changes if c.kind == kind and c.op == "remove"]

    def lines(self) -> list[str]:
        return [c.line() for c in self.changes]


def merge(current: Provisioning, file: Provisioning, *, prune: bool,
          states_pause_reasons: bool = True) -> Provisioning:
    """The state a file asks for: the file's objects over the current ones, and with `prune`
    nothing else. A password the file leaves out is the current one (files are kept in git), and
    so is the list of pause reasons of a file that does not state it (`states_pause_reasons`)."""
    out = {}
    for kind in Provisioning.KINDS:
        wanted = dict(file.section(kind))
        if kind == "agents":
            wanted = {n: _keep_password(a, current.agents.get(n)) for n, a in wanted.items()}  # type: ignore[arg-type]
        out[kind] = wanted if prune else {**current.section(kind), **wanted}
    reasons = file.pause_reasons if states_pause_reasons or prune else current.pause_reasons
    return Provisioning(**out, pause_reasons=reasons)  # type: ignore[arg-type]


def _keep_password(agent: Agent, existing: Agent | None) -> Agent:
    if agent.password_ha1 is None and existing is not None:
        return dataclasses.replace(agent, password_ha1=existing.password_ha1)
    return agent


def diff(current: Provisioning, desired: Provisioning) -> Plan:
    """Every object that differs between the two, in the order objects depend on each other."""
    changes: list[Change] = []
    for kind in Provisioning.KINDS:
        now, then = current.section(kind), desired.section(kind)
        for name in sorted(then.keys() - now.keys()):
            changes.append(Change(kind, name, "add"))
        for name in sorted(now.keys() & then.keys()):
            fields = _changed_fields(now[name], then[name])
            if fields:
                changes.append(Change(kind, name, "change", fields))
        for name in sorted(now.keys() - then.keys()):
            changes.append(Change(kind, name, "remove"))
    if desired.pause_reasons != current.pause_reasons:
        changes.append(Change("pause_reasons", ", ".join(desired.pause_reasons) or "(any reason)",
                              "change"))
    return Plan(tuple(changes))


def _changed_fields(old: object, new: object) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(old)  # type: ignore[arg-type]
                 if getattr(old, f.name) != getattr(new, f.name))
