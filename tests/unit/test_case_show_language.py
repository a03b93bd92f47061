"""`hotline case show` names each leg's language (hops.language, migration 038)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hotline.cli.cases import _as_text
from hotline.store.case_timeline import CaseTimeline


def _hop(seq: int, language: str | None) -> dict[str, object]:
    return {"id": seq, "seq": seq, "channel_kind": "pstn", "media": "audio", "end_reason": None,
            "ivr_path": "", "priority": None, "language": language, "caller_num": "+79161234567",
            "hotline": "support", "dialled": "84950000000", "channel_name": f"PJSIP/trunk-{seq}",
            "entered_at": datetime.now(UTC) - timedelta(minutes=5 - seq), "ended_at": None}


def test_case_show_names_each_legs_language_when_it_has_one() -> None:
    opened = datetime.now(UTC) - timedelta(minutes=5)
    case = {"id": 7, "customer_key": "+79161234567", "status": "open", "opened_at": opened,
            "closed_at": None, "last_agent": None}
    timeline = CaseTimeline(case, [_hop(1, "ru"), _hop(2, None)], [], [], [], [], [], [])
    legs = _as_text(timeline).splitlines()[1]
    assert legs == "2 leg(s): 1 pstn/audio live language ru, 2 pstn/audio live"
