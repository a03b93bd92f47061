"""One error hierarchy. The CLI maps any HotlineError to a one-line message and exit 1."""

from collections.abc import Mapping


class HotlineError(Exception):
    """Base of every error hotline raises on purpose; its text is shown to the user as is."""


class Fenced(HotlineError):
    """The active daemon lost its lock's session (hotline.store.active_lock) and stopped
    controlling calls; exits non-zero so that its supervisor restarts it, as a standby."""


class ConfigError(HotlineError):
    """A setting is missing or malformed (names the setting and the value)."""


class LabError(HotlineError):
    """The lab cannot be built, started or stopped."""


class StoreError(HotlineError):
    """The database is unreachable, not migrated, or refused a write."""


class AsteriskError(HotlineError):
    """Asterisk is unreachable or refused a request."""


class AmiError(AsteriskError):
    """An AMI login, action or response failed."""


class AmiAuthError(AmiError):
    """Asterisk refused the AMI user or secret."""


class UnsafeAmiValue(AmiError, ValueError):
    """A value headed for an AMI action carries CR or LF (header injection)."""


class AriError(AsteriskError):
    """An ARI request failed; carries the HTTP status and Asterisk's message."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AriNotFound(AriError):
    """The ARI resource (channel, bridge, ...) does not exist (any more)."""


class HttpError(AsteriskError):
    """Asterisk's HTTP server could not be reached or broke the protocol (no HTTP status to report);
    the ARI client turns it into an AriError naming the request."""


class UnsafeConfigValue(HotlineError, ValueError):
    """A value headed for Asterisk config would change its meaning (injection) or is malformed."""


class InvalidEvent(HotlineError):
    """An AMI or ARI event lacks a field hotline relies on; logged once, then dropped."""


class NumberError(HotlineError, ValueError):
    """A telephone number could not be parsed or is not valid."""


class ProvisionError(HotlineError, ValueError):
    """Provisioning input is malformed or inconsistent; names the field and the value."""


class PromptsMissing(ProvisionError):
    """Sounds the provisioning plays are missing in a language its callers hear (hotline apply)."""


class DialRefused(HotlineError):
    """A number may not be dialled out: no trunk allows it (toll fraud), or it is no valid E.164
    number; the message names the number and the reason."""


class CallbackError(HotlineError):
    """A queued callback request cannot be changed as asked (unknown, ended, being placed, or no
    longer held by the daemon placing it); names the request."""


class CaseNotFound(HotlineError):
    """No case has the id asked for."""


class AgentStateError(HotlineError):
    """An agent presence change (login, logout, pause, unpause) is refused; names the agent."""


class StatsError(HotlineError, ValueError):
    """A statistics request is malformed (a date, an interval, a time zone, a range)."""


class IllegalTransition(HotlineError):
    """An agent was asked to do what its status does not allow (ring a paused agent, answer a
    call that is not ringing, ...): a bug in the caller, named with the agent and its status."""

    def __init__(self, agent: str, action: str, status: str, why: str) -> None:
        super().__init__(f"agent {agent}: cannot {action} while {status} ({why})")
        self.agent = agent
        self.action = action
        self.status = status


class UnknownMenu(HotlineError, LookupError):
    """A target names a menu that provisioning does not have (validation should prevent it)."""


class SwitchRefused(HotlineError):
    """A switch token that opens nothing; `state` (hotline.store.switches.TokenState) says why."""

    def __init__(self, state: str) -> None:
        super().__init__(f"switch token {state}")
        self.state = state


class SwitchNotPossible(HotlineError):
    """The leg cannot be switched now (unknown, ended, or not talking with an agent)."""


class PhoneSwitchRefused(HotlineError):
    """A move from video to phone that cannot be done (no valid number, none a trunk may dial, no
    live video talk): one line saying why; the talk goes on."""


class NotAPhoneNumber(PhoneSwitchRefused):
    """What was typed as the customer's number is no valid telephone number."""


class SupervisionRefused(HotlineError):
    """A supervision that cannot be done (no live talk, a supervisor unknown, not flagged, busy
    or supervising already): one line saying why; the talk goes on untouched."""


class TransferRefused(HotlineError):
    """A transfer that cannot be done (unknown target, no live talk): one line saying why; the
    customer's talk goes on untouched."""


class RecordingError(HotlineError):
    """A recording asked for that does not exist, has no file, or cannot be paused now: one line
    saying why."""


class WebRefusal(HotlineError):
    """The web pages refuse a request; `status` is the HTTP status the client gets, and
    `retry_after_s`, when set, how long it should wait before asking again (429, 503)."""

    def __init__(self, status: int, message: str, retry_after_s: float | None = None, *,
                 code: str = "", fields: Mapping[str, str | int | float] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s
        self.code = code  # stable, for the pages to show in their language (hotline.web.said)
        self.fields = dict(fields or {})


class DoctorWarning(HotlineError):
    """A `hotline doctor` check that passes, with something the operator should change."""


class WebhookError(HotlineError, ValueError):
    """A webhook cannot be added or changed as asked (bad URL, unknown hotline or event kind, no such
    webhook); names what was wrong."""


class RatingRefused(HotlineError, ValueError):
    """A customer's rating that cannot be kept (a score not 1-5, a bad comment, no such call, or
    the call rated already): one line saying why; nothing is written."""

    def __init__(self, message: str, *, already: bool = False) -> None:
        super().__init__(message)
        self.already = already


class NoteRefused(HotlineError, ValueError):
    """A case note that cannot be kept as typed (empty, too long, a control character) or for a
    case that cannot take it: one line saying why; nothing is written."""
