"""Nodes as provisioning (the file's [nodes.NAME], `hotline node add`), where the daemon logs in
to each, and one device state from several nodes' words."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from hotline.asterisk.nodes import node_addresses
from hotline.config import ConfigError, Settings
from hotline.engine.device_states import NodeDeviceStates, combined
from hotline.engine.node_loss import lost_end, lost_why
from hotline.engine.outcomes import EndReason, QueueEventKind
from hotline.errors import ProvisionError
from hotline.provision import export, parse
from hotline.provision.model import Node, Provisioning
from hotline.provision.validate import validate
from hotline.store.hops import Hop

SETTINGS = Settings(dsn="postgresql://x@127.0.0.1/x", ami_url="ami://hotline:amisecret@127.0.0.1:5038",
                    ari_url="http://hotline:arisecret@127.0.0.1:8088", node="pbx1")
NODE_A = {"ari": "http://10.0.0.2:8088", "ami": "ami://10.0.0.2:5038", "sip": "sip:10.0.0.2:5060"}


def test_a_node_round_trips_through_the_file() -> None:
    node = parse.node("a", NODE_A)
    assert node == Node("a", "http://10.0.0.2:8088", "ami://10.0.0.2:5038", "sip:10.0.0.2:5060")
    assert parse.node("a", export.node_table(node)) == node
    assert parse.provisioning({"nodes": {"a": NODE_A}}).nodes == {"a": node}


@pytest.mark.parametrize("name, table, says", [
    ("A", NODE_A, "not a valid node name"),
    ("a", {**NODE_A, "ari": "http://hotline:secret@10.0.0.2:8088"}, "carries a user or secret"),
    ("a", {**NODE_A, "ari": "http://10.0.0.2"}, "is not a URL like http://host:port"),
    ("a", {**NODE_A, "ami": "tcp://10.0.0.2:5038"}, "is not a URL like ami://host:port"),
    ("a", {**NODE_A, "ari": "http://10.0.0.2:8088/ari"}, "is not a URL like http://host:port"),
    ("a", {**NODE_A, "sip": "sip:agent@10.0.0.2"}, "is not a SIP URI"),
    ("a", {k: v for k, v in NODE_A.items() if k != "sip"}, "nodes.a.sip: None is required"),
    ("a", {**NODE_A, "weight": 2}, "nodes.a.weight: 2 is not a setting"),
])
def test_a_bad_node_is_refused_naming_the_field(name: str, table: dict[str, object], says: str) -> None:
    with pytest.raises(ProvisionError, match=says):
        parse.node(name, table)


def test_a_secret_in_a_node_url_is_not_echoed() -> None:
    with pytest.raises(ProvisionError) as refused:
        parse.node("a", {**NODE_A, "ami": "ami://hotline:hunter2@10.0.0.2:5038"})
    assert "hunter2" not in str(refused.value)


def test_two_nodes_at_one_address_are_refused() -> None:
    prov = Provisioning(nodes={"a": parse.node("a", NODE_A),
                               "b": parse.node("b", {**NODE_A, "sip": "sip:10.0.0.3:5060"})})
    with pytest.raises(ProvisionError, match="nodes.b.ari: 'http://10.0.0.2:8088' is already node 'a''s"):
        validate(prov)


def test_no_node_is_the_settings_one_asterisk_and_nodes_share_its_logins() -> None:
    [only] = node_addresses(SETTINGS, {})
    assert (only.name, only.ari, only.ami) == ("pbx1", SETTINGS.ari, SETTINGS.ami)
    nodes = {n: parse.node(n, {"ari": f"http://10.0.0.{i}:8088", "ami": f"ami://10.0.0.{i}:5038",
                               "sip": f"sip:10.0.0.{i}"}) for i, n in ((3, "b"), (2, "a"))}
    a, b = node_addresses(SETTINGS, nodes)
    assert (a.name, a.ari.host, a.ari.port, a.ari.user, a.ari.secret) == ("a", "10.0.0.2", 8088, "hotline",
                                                                         "arisecret")
    assert (b.name, b.ami.host, b.ami.port, b.ami.user, b.ami.secret) == ("b", "10.0.0.3", 5038, "hotline",
                                                                         "amisecret")


@pytest.mark.parametrize("states, one", [
    (["RINGING"], "RINGING"),
    (["INUSE", "NOT_INUSE"], "INUSE"),
    (["UNAVAILABLE", "NOT_INUSE"], "NOT_INUSE"),  # registered at Kamailio: one node's qualify failing
    (["UNAVAILABLE", "UNAVAILABLE"], "UNAVAILABLE"),
    (["UNKNOWN", "UNAVAILABLE"], "UNAVAILABLE"),
    (["RINGING", "INUSE"], "INUSE"),
])
def test_several_nodes_words_make_one_device_state(states: list[str], one: str) -> None:
    assert combined(states) == one


def test_a_node_let_go_no_longer_has_a_word() -> None:
    states = NodeDeviceStates()
    states.told("a", "ivanov", "INUSE")
    assert states.told("b", "ivanov", "NOT_INUSE") == "INUSE"
    assert states.forget_node("a") == {"ivanov": "NOT_INUSE"}  # what the queues are told at once
    assert states.told("b", "ivanov", "NOT_INUSE") == "NOT_INUSE"
    assert states.forget_node("c") == {}  # a node that never spoke changes nobody


def test_a_lost_nodes_hop_ends_failed_with_the_loss_its_visit_as_an_unwatched_one() -> None:
    at = datetime.now(UTC)
    why = lost_why("b", 121.4)
    assert why == "node lost: b's Asterisk unreachable for 121 s"
    talking = Hop(id=7, case_id=3, seq=1, node="b", channel_id="c1", channel_kind="pstn", dialled="+7495",
                  dialled_e164="+7495", caller_num="+7916", entered_at=at - timedelta(seconds=60),
                  ended_at=None, end_reason=None, hangup_cause=None, queue_id=2, agent_id=5,
                  queued_at=at - timedelta(seconds=50), answered_at=at - timedelta(seconds=30))
    steps, end = lost_end(talking, why, at)
    assert [(s.event, s.agent_id, s.talk_ms, s.detail) for s in steps] == [
        (QueueEventKind.COMPLETE, 5, 30000, why)]
    assert (end.reason, end.cause_text, end.at) == (EndReason.FAILED, why, at)
    waiting = dataclasses.replace(talking, agent_id=None, answered_at=None)
    steps, end = lost_end(waiting, why, at)
    assert [(s.event, s.wait_ms) for s in steps] == [(QueueEventKind.ABANDON, 50000)]
    assert end.reason == EndReason.FAILED


@pytest.mark.parametrize("states, registered, one", [
    (["NOT_INUSE", "NOT_INUSE"], False, "UNAVAILABLE"),  # the nodes' static contact says nothing
    (["NOT_INUSE", "NOT_INUSE"], True, "NOT_INUSE"),
    ([], True, "NOT_INUSE"),  # registered before any node said a word
    (["INUSE", "NOT_INUSE"], False, "INUSE"),  # talking through a node: in use, whatever the registrar
    (["RINGING"], True, "RINGING"),
])
def test_behind_kamailio_the_registrar_says_reachable_and_the_nodes_say_busy(
        states: list[str], registered: bool, one: str) -> None:
    assert combined(states, registered) == one


def test_a_registration_at_kamailio_changes_only_the_phones_whose_registration_changed() -> None:
    states = NodeDeviceStates()
    states.told("a", "ivanov", "NOT_INUSE")
    states.told("a", "petrova", "INUSE")
    assert states.registrations({"petrova"}) == {"ivanov": "UNAVAILABLE", "petrova": "INUSE"}
    assert states.registrations({"petrova", "sidorov"}) == {"sidorov": "NOT_INUSE"}
    assert states.registrations({"sidorov"}) == {"petrova": "INUSE"}  # in use still: its talk goes on
    assert states.told("a", "petrova", "NOT_INUSE") == "UNAVAILABLE"  # the talk ended, unregistered


def test_node_lost_after_is_whole_seconds_from_5() -> None:
    assert dataclasses.replace(SETTINGS, node_lost_after="30").node_lost_after_s == 30
    assert SETTINGS.node_lost_after_s == 120
    for bad in ("4", "2m", "-1"):
        with pytest.raises(ConfigError, match="node_lost_after"):
            dataclasses.replace(SETTINGS, node_lost_after=bad)
