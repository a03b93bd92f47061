"""Typed AMI events, parsed once at the boundary from panoramisk's Messages.

Handlers receive one of the dataclasses below and never index a raw AMI dict. An event hotline
knows but that lacks a field it relies on raises InvalidEvent; every other event becomes a
generic AmiEvent that keeps all its fields.

Field names and formats are those Asterisk 22 sends (see tests/unit/transcripts/).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, TypeAlias

from hotline.errors import InvalidEvent

_PANORAMISK_BODY = "content"

# What panoramisk hands over: header -> value, or a list of values for a repeated header.
RawMessage: TypeAlias = Mapping[str, str | list[str]]


@dataclass(frozen=True)
class AmiEvent:
    """Any event hotline has no type for; `fields` holds every header as Asterisk sent it."""

    name: str
    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class FullyBooted:
    """Asterisk finished booting; also sent to each new AMI session right after login."""

    name: ClassVar[str] = "FullyBooted"
    status: str
    uptime: int | None = None
    last_reload: int | None = None


@dataclass(frozen=True)
class Reload:
    """A module (or `All` for `core reload`) was reloaded; status "0" means success."""

    name: ClassVar[str] = "Reload"
    module: str
    status: str
    message: str = ""

    @property
    def succeeded(self) -> bool:
        # Asterisk sends enum ast_module_reload_result as a number (0 = success); the manager's
        # own reload says "Enabled"/"Disabled" instead.
        return self.status in ("0", "Enabled", "Disabled")


@dataclass(frozen=True)
class Shutdown:
    """Asterisk is stopping (`restart` true when it comes back by itself)."""

    name: ClassVar[str] = "Shutdown"
    shutdown: str
    restart: bool


@dataclass(frozen=True)
class DeviceStateChange:
    """A device (PJSIP/agent1, Custom:x, Queue:...) changed state (NOT_INUSE, INUSE, ...)."""

    name: ClassVar[str] = "DeviceStateChange"
    device: str
    state: str


@dataclass(frozen=True)
class ContactStatus:
    """A PJSIP contact was created/removed or its qualify result changed."""

    name: ClassVar[str] = "ContactStatus"
    aor: str
    contact_status: str
    endpoint_name: str = ""
    uri: str = ""
    roundtrip_usec: int | None = None


AnyAmiEvent: TypeAlias = FullyBooted | Reload | Shutdown | DeviceStateChange | ContactStatus | AmiEvent


def parse_event(message: RawMessage) -> AnyAmiEvent:
    """Turn one AMI event (a panoramisk Message or any header mapping) into a typed event."""
    fields = flatten_fields(message)
    name = _lookup(fields).get("event", "")
    if not name:
        raise InvalidEvent(f"AMI message without an Event header: {sorted(fields)}")
    parser = _PARSERS.get(name.lower())
    if parser is None:
        return AmiEvent(name, MappingProxyType(fields))
    return parser(_Fields(name, fields))


def flatten_fields(message: RawMessage) -> dict[str, str]:
    """Headers as str; a repeated header (ChanVariable, Output) is joined with newlines.

    Newline is safe as the separator: no AMI value can contain one. panoramisk stores the body
    of a `Response: Follows` as a pseudo-header `content` in every Message (message.py
    Message.__init__); it is no header Asterisk sent, so it is left out.
    """
    return {
        key: "\n".join(value) if isinstance(value, list) else str(value)
        for key, value in message.items()
        if key != _PANORAMISK_BODY
    }


def _lookup(fields: Mapping[str, str]) -> dict[str, str]:
    # AMI header names are case-insensitive; Asterisk's casing is not guaranteed across versions.
    return {key.lower(): value for key, value in fields.items()}


class _Fields:
    """Case-insensitive access to one event's headers that names the event in its errors."""

    def __init__(self, event: str, fields: Mapping[str, str]) -> None:
        self.event = event
        self._fields = _lookup(fields)

    def required(self, key: str) -> str:
        value = self._fields.get(key.lower(), "")
        if not value:
            raise InvalidEvent(f"AMI {self.event} event without {key}: {self._fields}")
        return value

    def optional(self, key: str) -> str:
        return self._fields.get(key.lower(), "")

    def optional_int(self, key: str) -> int | None:
        value = self.optional(key)
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            raise InvalidEvent(f"AMI {self.event} event: {key}={value!r} is not a number") from None


def _fully_booted(f: _Fields) -> FullyBooted:
    return FullyBooted(f.required("Status"), f.optional_int("Uptime"), f.optional_int("LastReload"))


def _reload(f: _Fields) -> Reload:
    return Reload(f.required("Module"), f.required("Status"), f.optional("Message"))


def _shutdown(f: _Fields) -> Shutdown:
    return Shutdown(f.required("Shutdown"), _bool(f, "Restart"))


def _device_state_change(f: _Fields) -> DeviceStateChange:
    return DeviceStateChange(f.required("Device"), f.required("State"))


def _contact_status(f: _Fields) -> ContactStatus:
    # EndpointName may be empty (a static contact removed with its AOR), and panoramisk drops an
    # empty header when it is the last one of a message: optional, not required.
    return ContactStatus(
        aor=f.required("AOR"),
        contact_status=f.required("ContactStatus"),
        endpoint_name=f.optional("EndpointName"),
        uri=f.optional("URI"),
        roundtrip_usec=f.optional_int("RoundtripUsec"),
    )


def _bool(f: _Fields, key: str) -> bool:
    value = f.required(key).lower()
    if value not in ("true", "false"):
        raise InvalidEvent(f"AMI {f.event} event: {key}={value!r} is not True/False")
    return value == "true"


_PARSERS: dict[str, Callable[[_Fields], AnyAmiEvent]] = {
    "fullybooted": _fully_booted,
    "reload": _reload,
    "shutdown": _shutdown,
    "devicestatechange": _device_state_change,
    "contactstatus": _contact_status,
}
