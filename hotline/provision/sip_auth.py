"""Agents' SIP passwords are never kept: only the digest PJSIP checks a phone's answer against,
HA1 = md5(endpoint:realm:password) (RFC 2617), rendered as the auth section's `md5_cred`. The
agent page's login is checked against the same digest. A password given to provisioning is
turned into its HA1 as it is parsed; one generated for a new agent is shown once, then only its
HA1 remains."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets

from hotline.errors import ProvisionError
from hotline.provision.model import Agent, Provisioning

# The realm Asterisk challenges with (its default_realm), rendered into every agent's auth
# section so that the HA1 stays valid whatever pjsip.conf's [global] says.
SIP_REALM = "asterisk"
HA1_RE = re.compile(r"[0-9a-f]{32}")


def ha1(endpoint: str, password: str) -> str:
    """The digest of an endpoint's password that PJSIP and the web login check against."""
    credential = f"{endpoint}:{SIP_REALM}:{password}".encode()
    return hashlib.md5(credential, usedforsecurity=False).hexdigest()


def matches(endpoint: str, password: str, stored_ha1: str | None) -> bool:
    """Whether `password` is the endpoint's; the same time taken whatever is stored."""
    expected = stored_ha1 or "-" * 32  # no digest stored: nothing matches
    return hmac.compare_digest(ha1(endpoint, password), expected) and stored_ha1 is not None


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def fill_in(current: Provisioning, desired: Provisioning) -> tuple[Provisioning, dict[str, str]]:
    """`desired` with a generated password's HA1 for every agent that has none, and those
    passwords by agent name (to be shown once). ProvisionError when an agent's endpoint changes
    but its HA1 does not: the digest includes the endpoint, so the phone could no longer log in."""
    generated: dict[str, str] = {}
    agents: dict[str, Agent] = {}
    for name, agent in desired.agents.items():
        before = current.agents.get(name)
        moved = before is not None and before.endpoint != agent.endpoint
        if agent.password_ha1 is None:
            generated[name] = generate_password()
            agent = dataclasses.replace(agent, password_ha1=ha1(agent.endpoint, generated[name]))
        elif moved and before is not None and before.password_ha1 == agent.password_ha1:
            raise ProvisionError(f"agent {name!r}: a new endpoint needs a new password (the stored digest "
                                 f"of the password includes the endpoint {before.endpoint!r})")
        agents[name] = agent
    return dataclasses.replace(desired, agents=agents), generated
