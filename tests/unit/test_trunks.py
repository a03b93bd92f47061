"""Outbound trunks: as an engineer provisions them, and the one decision that guards against toll
fraud: which numbers may be dialled through which trunk."""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_provision_parse import example, refused

from hotline.cli.doctor import trunks_loaded
from hotline.engine.dial_out import dial_out
from hotline.engine.routing.outbound import dial_endpoint, may_dial, refusal, trunk_for
from hotline.errors import DialRefused, HotlineError, ProvisionError
from hotline.provision import export, parse
from hotline.provision.model import Trunk
from hotline.provision.validate import validate

MOSCOW = Trunk("carrier", "sipp-carrier", "+74951234567", ("+7495", "+7916"))


# -- the decision -------------------------------------------------------------------------------

@pytest.mark.parametrize("number", ["+74951234567", "+79161234567", "+74959999999"])
def test_numbers_in_the_allowed_ranges_may_be_dialled(number: str) -> None:
    assert may_dial(MOSCOW, number)
    assert dial_endpoint(MOSCOW, number) == f"PJSIP/{number}@sipp-carrier"


@pytest.mark.parametrize("number, why", [
    ("+78095551234", "outside trunk carrier's allowed prefixes"),  # premium rate, same country
    ("+79131234567", "outside trunk carrier's allowed prefixes"),  # another mobile range
    ("+12125550100", "outside trunk carrier's allowed prefixes"),  # international
    ("84951234567", "not a number in E.164 form"),  # national form: not guessed at
    ("+7 495 123-45-67", "not a number in E.164 form"),
    ("+7495123", "not a valid telephone number"),  # starts right, too short
    ("+749512345678", "not a valid telephone number"),  # starts right, too long
    ("+74951234567;user=phone", "not a number in E.164 form"),
    ("+74951234567@evil", "not a number in E.164 form"),
    ("+74951234567\n", "not a number in E.164 form"),
    ("", "not a number in E.164 form"),
])
def test_anything_else_is_refused_with_the_reason(number: str, why: str) -> None:
    assert not may_dial(MOSCOW, number)
    assert why in (refusal(MOSCOW, number) or "")
    with pytest.raises(DialRefused, match="not dialling through trunk carrier"):
        dial_endpoint(MOSCOW, number)


@given(st.text(alphabet="+0123456789 -;@()", max_size=16))
def test_nothing_outside_the_prefixes_is_ever_dialled(number: str) -> None:
    if may_dial(MOSCOW, number):
        assert number.startswith(("+7495", "+7916")) and number[1:].isdigit()
        assert dial_endpoint(MOSCOW, number) == f"PJSIP/{number}@sipp-carrier"
    else:
        with pytest.raises(DialRefused):
            dial_endpoint(MOSCOW, number)


def test_the_most_specific_trunk_takes_the_number() -> None:
    mobile = Trunk("mobile", "gsm-gateway", "+74951234567", ("+79161",))
    assert trunk_for([MOSCOW, mobile], "+79161234567") is mobile
    assert trunk_for([MOSCOW, mobile], "+79169876543") is MOSCOW
    assert trunk_for([mobile, MOSCOW], "+74951234567") is MOSCOW


def test_no_trunk_for_a_number_says_why_for_each() -> None:
    with pytest.raises(DialRefused) as info:
        trunk_for([MOSCOW], "+78095551234")
    assert "no trunk may dial '+78095551234'" in str(info.value)
    assert "outside trunk carrier's allowed prefixes (+7495, +7916)" in str(info.value)
    with pytest.raises(DialRefused, match="no trunk is provisioned"):
        trunk_for([], "+74951234567")


# -- provisioning -------------------------------------------------------------------------------

def with_trunk(**table: Any) -> dict[str, Any]:
    doc = example()
    doc["trunks"] = {"carrier": {"endpoint": "sipp-carrier", "caller_id": "8 (495) 123-45-67",
                                 "allow": ["+7495", "+7916"], **table}}
    return doc


def test_example_trunk_is_read_as_typed_into_e164() -> None:
    prov = parse.provisioning(example())
    validate(prov)
    assert prov.trunks["carrier"] == Trunk("carrier", "sipp-carrier", "+74951234567",
                                           ("+7495", "+7499", "+7916"))


def test_trunk_round_trips_through_export() -> None:
    prov = parse.provisioning(with_trunk(allow=["+7916", "+7 495"], ring_timeout=20))
    assert prov.trunks["carrier"].allow == ("+7495", "+7916")
    assert prov.trunks["carrier"].ring_timeout == 20
    text = export.to_toml(prov, with_secrets=True)  # the example gives an agent's password
    assert 'allow = [\n    "+7495",\n    "+7916",\n]' in text or 'allow = ["+7495", "+7916"]' in text
    assert parse.provisioning(tomllib.loads(text)) == prov


@pytest.mark.parametrize("table, field, value", [
    ({"allow": ["+7"]}, "trunks.carrier.allow", "'+7' is a whole country code"),
    ({"allow": ["+1"]}, "trunks.carrier.allow", "'+1' is a whole country code"),
    ({"allow": []}, "trunks.carrier.allow", "must list E.164 prefixes"),
    ({"allow": ["7495"]}, "trunks.carrier.allow", "'7495' is not an E.164 prefix"),
    ({"allow": ["+7495.*"]}, "trunks.carrier.allow", "not an E.164 prefix"),
    ({"allow": ["+7495", "+7495"]}, "trunks.carrier.allow", "is listed twice"),
    ({"caller_id": "8 (495) 12"}, "trunks.carrier.caller_id", "not a valid number"),
    ({"endpoint": "a b"}, "trunks.carrier.endpoint", "not a PJSIP endpoint name"),
    ({"dial_prefix": "9"}, "trunks.carrier.dial_prefix", "is not a setting"),
    ({"ring_timeout": 4}, "trunks.carrier.ring_timeout", "from 5 to 300"),
    ({"ring_timeout": "forever"}, "trunks.carrier.ring_timeout", "from 5 to 300"),
])
def test_bad_trunk_settings_are_refused_naming_the_field(table: dict[str, Any], field: str,
                                                        value: str) -> None:
    refused(lambda: parse.provisioning(with_trunk(**table)), field, value)


@pytest.mark.parametrize("missing", ["endpoint", "caller_id", "allow"])
def test_each_trunk_setting_is_required(missing: str) -> None:
    doc = with_trunk()
    del doc["trunks"]["carrier"][missing]
    refused(lambda: parse.provisioning(doc), f"trunks.carrier.{missing}", "is required")


@pytest.mark.parametrize("table, message", [
    ({"caller_id": "+74991112233"}, "trunks.carrier.caller_id: '+74991112233' is not one of the hotlines'"),
    ({"endpoint": "ivanov"}, "trunks.carrier.endpoint: 'ivanov' is the phone of agent 'ivanov'"),
    ({"endpoint": "hotline-web"}, "trunks.carrier.endpoint: 'hotline-web' is not a carrier's endpoint"),
    ({"endpoint": "hotline-trunk"}, "trunks.carrier.endpoint: 'hotline-trunk' is not a carrier's endpoint"),
])
def test_a_trunk_must_fit_the_rest_of_provisioning(table: dict[str, Any], message: str) -> None:
    prov = parse.provisioning(with_trunk(**table))
    with pytest.raises(ProvisionError) as info:
        validate(prov)
    assert str(info.value).startswith(message)


def test_removing_the_number_a_trunk_presents_is_refused() -> None:
    prov = parse.provisioning(with_trunk())
    numbers = {k: v for k, v in prov.numbers.items() if k != "+74951234567"}
    with pytest.raises(ProvisionError, match="trunks.carrier.caller_id"):
        validate(dataclasses.replace(prov, numbers=numbers))


# -- dialling -----------------------------------------------------------------------------------

class RecordingAri:
    def __init__(self) -> None:
        self.originated: list[dict[str, object]] = []

    async def originate(self, endpoint: str, app: str, app_args: str, channel_id: str, *,
                        timeout_s: int, caller_id: str = "", formats: str | None = None) -> None:
        self.originated.append({"endpoint": endpoint, "app": app, "app_args": app_args,
                                "channel_id": channel_id, "caller_id": caller_id, "formats": formats,
                                "timeout_s": timeout_s})


async def test_dial_out_goes_through_the_trunk_with_its_caller_id_and_audio_only() -> None:
    ari = RecordingAri()
    used = await dial_out(ari, [MOSCOW], "+79161234567", app="hotline", app_args="callback,7",
                          channel_id="cb-7-1")
    assert used is MOSCOW
    assert ari.originated == [{"endpoint": "PJSIP/+79161234567@sipp-carrier", "app": "hotline",
                               "app_args": "callback,7", "channel_id": "cb-7-1",
                               "caller_id": "+74951234567", "formats": "ulaw,alaw", "timeout_s": 30}]


async def test_dial_out_rings_for_the_trunks_own_timeout() -> None:
    ari = RecordingAri()
    quick = dataclasses.replace(MOSCOW, ring_timeout=12)
    await dial_out(ari, [quick], "+79161234567", app="hotline", app_args="callback,7", channel_id="c")
    assert ari.originated[0]["timeout_s"] == 12


async def test_dial_out_refuses_a_number_no_trunk_allows_and_dials_nothing() -> None:
    ari = RecordingAri()
    with pytest.raises(DialRefused, match="no trunk may dial '\\+78095551234'"):
        await dial_out(ari, [MOSCOW], "+78095551234", app="hotline", app_args="x", channel_id="c")
    assert ari.originated == []


# -- hotline doctor -----------------------------------------------------------------------------

def test_doctor_names_each_trunk_whose_endpoint_asterisk_lacks() -> None:
    backup = Trunk("backup", "carrier-2", "+74951234567", ("+7499",))
    with pytest.raises(HotlineError) as info:
        trunks_loaded([MOSCOW, backup], {"sipp-carrier", "hotline-web"})
    assert str(info.value).startswith("trunk backup: endpoint 'carrier-2' is not loaded in Asterisk")
    assert "sipp-carrier" not in str(info.value)


def test_doctor_says_what_each_trunk_allows_when_all_are_loaded() -> None:
    assert trunks_loaded([MOSCOW], {"sipp-carrier"}) == (
        "carrier through endpoint sipp-carrier, allowing +7495, +7916, as +74951234567")
