"""Agents' SIP passwords: only their HA1 is kept, from the file or CLI through to the export."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import replace

import pytest

from hotline.errors import ProvisionError
from hotline.provision import export, parse, sip_auth
from hotline.provision.model import Agent, Provisioning

PASSWORD = "s3cret-Passw0rd"


def md5_of(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def agents(*items: Agent) -> Provisioning:
    return Provisioning(agents={a.name: a for a in items})


def test_a_password_in_a_file_is_kept_only_as_its_ha1_for_the_endpoint_and_realm() -> None:
    agent = parse.agent("ivanov", {"endpoint": "ivan-7", "password": PASSWORD})
    assert agent.password_ha1 == md5_of(f"ivan-7:asterisk:{PASSWORD}")
    assert PASSWORD not in repr(agent)


def test_an_exported_ha1_is_taken_back_as_it_is() -> None:
    digest = md5_of(f"ivanov:asterisk:{PASSWORD}")
    agent = parse.agent("ivanov", {"password_ha1": digest})
    assert agent.password_ha1 == digest
    text = export.to_toml(agents(agent), with_secrets=True)
    assert f'password_ha1 = "{digest}"' in text and "password =" not in text
    assert parse.provisioning(tomllib.loads(text)).agents == {"ivanov": agent}


@pytest.mark.parametrize("digest", ["0" * 31, "0" * 33, "A" * 32, "g" * 32, "0" * 31 + "\n", 12])
def test_a_malformed_ha1_is_refused_without_being_repeated(digest: object) -> None:
    with pytest.raises(ProvisionError, match="agents.ivanov.password_ha1") as info:
        parse.agent("ivanov", {"password_ha1": digest})
    assert str(digest) not in str(info.value)


def test_a_password_and_an_ha1_together_are_refused() -> None:
    with pytest.raises(ProvisionError, match="password and password_ha1 are both given"):
        parse.agent("ivanov", {"password": PASSWORD, "password_ha1": "0" * 32})


def test_the_export_without_secrets_leaves_the_ha1_out() -> None:
    agent = parse.agent("ivanov", {"password": PASSWORD})
    assert "password" not in export.to_toml(agents(agent))


def test_login_matches_the_password_of_that_endpoint_only() -> None:
    digest = sip_auth.ha1("ivanov", PASSWORD)
    assert sip_auth.matches("ivanov", PASSWORD, digest)
    assert not sip_auth.matches("ivanov", PASSWORD + "x", digest)
    assert not sip_auth.matches("petrova", PASSWORD, digest)
    assert not sip_auth.matches("ivanov", PASSWORD, None)


def test_an_agent_without_a_password_gets_a_generated_one_shown_once_as_its_ha1() -> None:
    desired, generated = sip_auth.fill_in(agents(), agents(Agent("ivanov", "ivanov")))
    password = generated["ivanov"]
    assert len(password) >= 20
    assert desired.agents["ivanov"].password_ha1 == sip_auth.ha1("ivanov", password)


def test_two_generated_passwords_differ() -> None:
    _, generated = sip_auth.fill_in(agents(), agents(Agent("a", "a"), Agent("b", "b")))
    assert generated["a"] != generated["b"]


def test_an_agent_with_an_ha1_gets_nothing_generated() -> None:
    ivanov = Agent("ivanov", "ivanov", password_ha1=sip_auth.ha1("ivanov", PASSWORD))
    desired, generated = sip_auth.fill_in(agents(ivanov), agents(replace(ivanov, display_name="Ivan")))
    assert generated == {} and desired.agents["ivanov"].password_ha1 == ivanov.password_ha1


def test_a_new_endpoint_with_the_old_digest_is_refused_and_with_a_new_password_is_taken() -> None:
    ivanov = Agent("ivanov", "ivanov", password_ha1=sip_auth.ha1("ivanov", PASSWORD))
    with pytest.raises(ProvisionError, match="agent 'ivanov': a new endpoint needs a new password"):
        sip_auth.fill_in(agents(ivanov), agents(replace(ivanov, endpoint="ivan-7")))
    moved = replace(ivanov, endpoint="ivan-7", password_ha1=sip_auth.ha1("ivan-7", PASSWORD))
    assert sip_auth.fill_in(agents(ivanov), agents(moved))[0].agents["ivanov"] == moved
