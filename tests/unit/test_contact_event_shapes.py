"""The JSON a webhook receiver gets for a contact event: a fixed envelope (id, kind, at in UTC,
case, hop, hotline, queue, agent) and the kind's data; and the backoff between tries."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from hotline.config import DeliveryTiming, Settings
from hotline.engine.webhook_deliverer import retry_in
from hotline.errors import ConfigError, WebhookError
from hotline.store import migrations
from hotline.store.contact_events import DATA_KEYS, KINDS, ContactEvent, as_json, body
from hotline.store.webhooks import check_events, check_secret, check_url

MSK = timezone(timedelta(hours=3))


def event(**changes: object) -> ContactEvent:
    base: dict[str, object] = dict(
        id=42, case_id=7, hop_id=9, kind="answered", at=datetime(2026, 12, 3, 2, 50, 1, 250000, tzinfo=MSK),
        hotline="support-line", queue="support", agent="ivanov", data={"wait_ms": 1500, "ring_ms": 800})
    base.update(changes)
    return ContactEvent(**base)  # type: ignore[arg-type]


def test_envelope_has_every_key_in_a_fixed_order_and_the_time_in_utc() -> None:
    shape = json.loads(body(event()))
    assert list(shape) == ["id", "kind", "at", "case", "hop", "hotline", "queue", "agent", "data"]
    assert shape == {"id": 42, "kind": "answered", "at": "2026-12-02T23:50:01.250Z", "case": 7, "hop": 9,
                     "hotline": "support-line", "queue": "support", "agent": "ivanov",
                     "data": {"wait_ms": 1500, "ring_ms": 800}}


def test_a_case_event_has_null_hop_queue_and_agent_not_missing_keys() -> None:
    shape = as_json(event(kind="case_opened", hop_id=None, queue=None, agent=None,
                          data={"customer": "+79161234567"}))
    assert shape["hop"] is None and shape["queue"] is None and shape["agent"] is None
    assert shape["data"] == {"customer": "+79161234567"}


def test_body_is_compact_utf8_json() -> None:
    raw = body(event(hotline="горячая-линия", data={}))
    assert b" " not in raw
    assert "горячая-линия".encode() in raw


def test_every_kind_the_issue_names_is_in_the_stream() -> None:
    for kind in ("case_opened", "entered_hotline", "menu_key", "queued", "ringing_agent", "answered",
                 "transfer", "switched", "callback_requested", "callback_placed", "ended"):
        assert kind in KINDS
    assert set(DATA_KEYS["menu_key"]) == {"key", "path", "language"}
    assert set(DATA_KEYS["ended"]) == {"reason", "cause", "cause_text"}


def test_the_kinds_the_triggers_write_are_the_kinds_webhooks_may_filter_on() -> None:
    """`hotline webhook add --event` takes KINDS: a kind a trigger writes but KINDS lacks could not
    be chosen, a kind in KINDS no trigger writes would be a filter that never matches."""
    folder = Path(migrations.__file__).parent / "migrations"
    sql = "\n".join(f.read_text() for f in sorted(folder.glob("*.sql")))
    written = set(re.findall(r"add_contact_event\([^,]+,[^,]+,\s*'(\w+)'", sql))
    queue_events = sql.index("FUNCTION contact_events_of_queue_event")  # its kinds: a CASE of the event
    written |= set(re.findall(r"THEN '(\w+)'", sql[queue_events:sql.index("$$;", queue_events)]))
    assert written - set(KINDS) == set()
    assert {k for k in KINDS if f"'{k}'" not in sql} == set()
    assert {"supervision_started", "supervision_ended", "participant_joined", "participant_left",
            "recording_started", "recording_stopped", "note_added"} <= written


def test_retries_double_from_the_first_wait_up_to_the_cap_then_give_up() -> None:
    timing = DeliveryTiming(retry_first_s=2, retry_max_s=10, attempts=5)
    assert [retry_in(n, timing) for n in range(1, 6)] == [2.0, 4.0, 8.0, 10.0, None]


def test_webhook_settings_become_the_deliverers_timing() -> None:
    timing = Settings(webhook_poll="0.2", webhook_retry_first="0.25", webhook_retry_max="1",
                      webhook_attempts="7", webhook_timeout="3").webhook_timing
    assert timing == DeliveryTiming(poll_s=0.2, timeout_s=3.0, retry_first_s=0.25, retry_max_s=1.0,
                                    attempts=7)
    assert timing.lease_s > timing.timeout_s


@pytest.mark.parametrize("name, value", [("webhook_poll", "0"), ("webhook_attempts", "0"),
                                         ("webhook_timeout", "soon"), ("webhook_retry_first", "-1")])
def test_webhook_settings_out_of_range_are_refused_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings(**{name: value})


@pytest.mark.parametrize("url", ["ftp://crm.example/x", "crm.example/hook", "http:///nohost",
                                 "https://crm.example/a b", "javascript:alert(1)"])
def test_only_http_and_https_urls_with_a_host_are_webhooks(url: str) -> None:
    with pytest.raises(WebhookError):
        check_url(url)


def test_good_urls_secrets_and_kinds_pass() -> None:
    assert check_url("https://crm.example:8443/hooks/hotline?x=1") == "https://crm.example:8443/hooks/hotline?x=1"
    assert check_secret("0123456789abcdef") == "0123456789abcdef"
    assert check_events(["ended", "answered", "ended"]) == ["answered", "ended"]
    assert check_events([]) is None


def test_short_secrets_and_unknown_kinds_are_refused() -> None:
    with pytest.raises(WebhookError, match="16"):
        check_secret("short")
    with pytest.raises(WebhookError, match="hungup"):
        check_events(["hungup"])


def test_utc_is_utc() -> None:
    assert as_json(event(at=datetime(2026, 1, 1, tzinfo=UTC)))["at"] == "2026-01-01T00:00:00.000Z"
