"""Provisioning in PostgreSQL: load the live state as a `Provisioning`, write a desired one.

Rows are matched by name, so ids (and the history hanging off them) stay stable across edits.
Removing retires a row (`retired_at`); adding its name again brings the same row back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import time
from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from hotline.provision.model import (
    Agent,
    Holiday,
    Hotline,
    Menu,
    MenuOption,
    Node,
    Number,
    OpeningHours,
    Provisioning,
    Queue,
    RegionRoute,
    Target,
    TargetAction,
    Trunk,
)
from hotline.provision.plan import Plan

Row = dict[str, Any]  # a row as psycopg's dict_row gives it
T = TypeVar("T")

# One writer at a time: CLI verbs and `provision` read, validate and write under this lock.
PROVISIONING_LOCK = 0x70726F76  # "prov"

MIDNIGHT_END = time(23, 59, 59, 999999)  # how a 24:00 closing comes back from PostgreSQL's `time`


async def lock(conn: AsyncConnection) -> None:
    """Take the provisioning lock for the current transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PROVISIONING_LOCK,))


async def load(conn: AsyncConnection) -> Provisioning:
    """The live (not retired) provisioning, with every reference by name."""
    names = await _names(conn)
    return Provisioning(
        queues={q.name: q for q in await _load_queues(conn, names)},
        menus={m.name: m for m in await _load_menus(conn, names)},
        hotlines={h.name: h for h in await _load_hotlines(conn, names)},
        numbers={n.number: n for n in await _load_numbers(conn, names)},
        agents={a.name: a for a in await _load_agents(conn, names)},
        trunks={t.name: t for t in await _load_trunks(conn)},
        nodes={n.name: n for n in await _load_nodes(conn)},
        pause_reasons=await pause_reasons(conn),
    )


async def write(conn: AsyncConnection, desired: Provisioning, plan: Plan) -> None:
    """Carry out `plan` (computed against the live state) so the database holds `desired`.

    Call inside a transaction holding `lock()`. CHECK constraints are immediate, so objects are
    first written with references that are always valid (overflow and closed action `hangup`),
    then every reference is set once all the rows it may point at exist.
    """
    touched = {kind: set(plan.touched(kind)) for kind in Provisioning.KINDS}
    for name in sorted(touched["menus"]):
        await _upsert_menu(conn, desired.menus[name])
    for name in sorted(touched["queues"]):
        await _upsert_queue(conn, desired.queues[name])
    names = await _ids(conn)
    for name in sorted(touched["hotlines"]):
        await _upsert_hotline(conn, desired.hotlines[name], names)
    names = await _ids(conn)
    for name in sorted(touched["queues"]):
        await _set_overflow(conn, desired.queues[name], names)
    for name in sorted(touched["menus"]):
        await _replace_options(conn, desired.menus[name], names)
    for name in sorted(touched["hotlines"]):
        await _set_hotline_details(conn, desired.hotlines[name], names)
    for name in sorted(touched["numbers"]):
        await _upsert_number(conn, desired.numbers[name], names)
    for name in sorted(touched["agents"]):
        await _upsert_agent(conn, desired.agents[name], names)
    for name in sorted(touched["trunks"]):
        await _upsert_trunk(conn, desired.trunks[name])
    for name in sorted(touched["nodes"]):
        await _upsert_node(conn, desired.nodes[name])
    if any(c.kind == "pause_reasons" for c in plan.changes):
        await _replace_pause_reasons(conn, desired.pause_reasons)
    await _retire(conn, plan)


async def pause_reasons(conn: AsyncConnection) -> tuple[str, ...]:
    """The provisioned pause reasons in their order; (): any reason goes."""
    cur = await conn.execute("SELECT reason FROM pause_reasons ORDER BY position")
    return tuple(row[0] for row in await cur.fetchall())


async def _replace_pause_reasons(conn: AsyncConnection, reasons: tuple[str, ...]) -> None:
    # The list is small and replaced whole; past pauses keep their reason text (agent_pauses).
    await conn.execute("DELETE FROM pause_reasons")
    for position, reason in enumerate(reasons, 1):
        await conn.execute("INSERT INTO pause_reasons (position, reason) VALUES (%s, %s)", (position, reason))


# -- loading ------------------------------------------------------------------------------------

_TABLES = {"queues": "queues", "menus": "ivr_menus", "hotlines": "hotlines", "agents": "agents"}
_RETIRED_BY_NAME = {**_TABLES, "trunks": "trunks"}


async def _names(conn: AsyncConnection) -> dict[str, dict[int, str]]:
    """id -> name for every table a reference may point into (retired rows included)."""
    out: dict[str, dict[int, str]] = {}
    for kind, table in _TABLES.items():
        cur = await conn.execute(f"SELECT id, name FROM {table}")
        out[kind] = {row[0]: row[1] for row in await cur.fetchall()}
    return out


async def _ids(conn: AsyncConnection) -> dict[str, dict[str, int]]:
    return {kind: {name: ident for ident, name in by_id.items()}
            for kind, by_id in (await _names(conn)).items()}


async def _rows(conn: AsyncConnection, sql: str, *params: object) -> list[Row]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql, params)
    return await cur.fetchall()


def _target(action: str, ident: int | None, kind: str | None, names: dict[str, dict[int, str]]) -> Target:
    if ident is None or kind is None:
        return Target(action)
    return Target(action, names[kind][ident])


async def _load_queues(conn: AsyncConnection, names: dict[str, dict[int, str]]) -> list[Queue]:
    out = []
    for r in await _rows(conn, "SELECT * FROM queues WHERE retired_at IS NULL ORDER BY name"):
        ident, kind = _overflow_ref(r)
        out.append(Queue(
            name=r["name"], strategy=r["strategy"], ring_timeout=r["ring_timeout_s"], retry=r["retry_s"],
            wrapup=r["wrapup_s"], max_wait=r["max_wait_s"], max_len=r["max_len"],
            join_empty=r["join_empty"], announce_period=r["announce_period_s"], music=r["music_class"],
            service_level=r["service_level_s"], prefer_video_agents=r["prefer_video_agents"],
            overflow=_target(r["overflow_action"], ident, kind, names),
            announce_holdtime=r["announce_holdtime"], ringback=r["ringback_s"],
            video_fallback=r["video_fallback_s"], video_key=r["video_key"],
            transfer_no_answer=r["transfer_no_answer"],
            callback_key=r["callback_key"],
            callback_retries=r["callback_retries"], callback_retry_interval=r["callback_retry_interval_s"],
            callback_expiry=r["callback_expiry_s"], record=r["record"],
            record_announcement=r["record_announcement"],
            survey=tuple(r["survey"] or ()), survey_thanks=r["survey_thanks"],
            breakout_menu=names["menus"].get(r["breakout_menu_id"]) if r["breakout_menu_id"] else None))
    return out


def _overflow_ref(r: Row) -> tuple[int | None, str | None]:
    for column, kind in (("overflow_queue_id", "queues"), ("overflow_hotline_id", "hotlines"),
                         ("overflow_menu_id", "menus")):
        if r[column] is not None:
            return r[column], kind
    return None, None


async def _load_menus(conn: AsyncConnection, names: dict[str, dict[int, str]]) -> list[Menu]:
    options: dict[int, list[MenuOption]] = {}
    for r in await _rows(conn, "SELECT * FROM ivr_options ORDER BY menu_id, digit"):
        ident, kind = next(((r[c], k) for c, k in (("target_menu_id", "menus"),
                                                   ("target_queue_id", "queues"),
                                                   ("target_hotline_id", "hotlines"))
                            if r[c] is not None), (None, None))
        options.setdefault(r["menu_id"], []).append(_option(r, ident, kind, names))
    return [Menu(name=r["name"], prompt=r["prompt"], timeout=r["timeout_s"], retries=r["retries"],
                 invalid_prompt=r["invalid_prompt"], timeout_prompt=r["timeout_prompt"],
                 options=tuple(sorted(options.get(r["id"], []), key=lambda o: o.digit)))  # not by collation
            for r in await _rows(conn, "SELECT * FROM ivr_menus WHERE retired_at IS NULL ORDER BY name")]


def _option(r: Row, ident: int | None, kind: str | None, names: dict[str, dict[int, str]]) -> MenuOption:
    """A key; a `language:LANG` key's target columns name its next step (then_action)."""
    if r["action"] == TargetAction.LANGUAGE:
        then = _target(r["then_action"], ident, kind, names) if r["then_action"] else None
        return MenuOption(r["digit"], Target(TargetAction.LANGUAGE, r["language"]), r["prompt"],
                          r["priority"], then)
    return MenuOption(r["digit"], _target(r["action"], ident, kind, names), r["prompt"], r["priority"])


async def _load_hotlines(conn: AsyncConnection, names: dict[str, dict[int, str]]) -> list[Hotline]:
    hours = _group(await _rows(conn, f"SELECT hotline_id, weekday, opens, {_CLOSES} FROM hotline_hours"),
                   lambda r: OpeningHours(r["weekday"], r["opens"], _closing(r["closes"])))
    holidays = _group(await _rows(conn, f"SELECT hotline_id, day, opens, {_CLOSES}, note"
                                        " FROM hotline_holidays"),
                      lambda r: Holiday(r["day"], r["opens"], _closing(r["closes"]) if r["closes"] else None,
                                        r["note"]))
    regions = _group(await _rows(conn, "SELECT * FROM hotline_region_routes"), lambda r: RegionRoute(
        r["match_kind"], r["match"], names["queues"][r["queue_id"]], r["priority"]))
    out = []
    for r in await _rows(conn, "SELECT * FROM hotlines WHERE retired_at IS NULL ORDER BY name"):
        entry = (Target("menu", names["menus"][r["entry_menu_id"]]) if r["entry_menu_id"]
                 else Target("queue", names["queues"][r["entry_queue_id"]]))
        out.append(Hotline(
            name=r["name"], entry=entry, description=r["description"], time_zone=r["time_zone"],
            hours=tuple(sorted(hours.get(r["id"], []))), holidays=tuple(sorted(holidays.get(r["id"], []))),
            closed=_closed(r, names),
            closed_prompt=r["closed_prompt"], regions=tuple(sorted(regions.get(r["id"], []))),
            record=r["record"], record_announcement=r["record_announcement"],
            page_title=r["page_title"], page_text=r["page_text"], page_logo=r["page_logo"],
            page_color=r["page_color"], language=r["language"]))
    return out


def _closed(r: Row, names: dict[str, dict[int, str]]) -> Target:
    """A hotline's closed action: `hotline:NAME`, `callback:QUEUE`, or one standing alone."""
    if r["closed_queue_id"] is not None:
        return _target(r["closed_action"], r["closed_queue_id"], "queues", names)
    return _target(r["closed_action"], r["closed_hotline_id"], "hotlines", names)


# psycopg cannot load PostgreSQL's '24:00:00' (Python's time has no hour 24): read it as the last
# microsecond of the day instead.
_CLOSES = "CASE WHEN closes = '24:00' THEN time '23:59:59.999999' ELSE closes END AS closes"


def _closing(value: time) -> time:
    """24:00 is stored as PostgreSQL's '24:00:00', read (see _CLOSES) as 23:59:59.999999."""
    return MIDNIGHT_END if value >= MIDNIGHT_END else value


def _group(rows: Iterable[Row], make: Callable[[Row], T]) -> dict[int, list[T]]:
    """Objects made of rows, by the hotline they belong to."""
    out: dict[int, list[T]] = {}
    for r in rows:
        out.setdefault(r["hotline_id"], []).append(make(r))
    return out


async def _load_numbers(conn: AsyncConnection, names: dict[str, dict[int, str]]) -> list[Number]:
    return [Number(r["number"], names["hotlines"][r["hotline_id"]], r["kind"], r["line_limit"], r["priority"],
                   r["language"])
            for r in await _rows(conn, "SELECT * FROM numbers WHERE retired_at IS NULL ORDER BY number")]


async def _load_agents(conn: AsyncConnection, names: dict[str, dict[int, str]]) -> list[Agent]:
    members: dict[int, list[tuple[str, int]]] = {}
    for r in await _rows(conn, "SELECT * FROM queue_members"):
        members.setdefault(r["agent_id"], []).append((names["queues"][r["queue_id"]], r["penalty"]))
    return [Agent(name=r["name"], endpoint=r["endpoint"], display_name=r["display_name"],
                  password_ha1=r["password_ha1"],
                  capabilities=frozenset(c for c in ("audio", "video", "webrtc") if r[c]),
                  queues=tuple(sorted(members.get(r["id"], []))), supervisor=r["supervisor"])
            for r in await _rows(conn, "SELECT * FROM agents WHERE retired_at IS NULL ORDER BY name")]


async def _load_nodes(conn: AsyncConnection) -> list[Node]:
    return [Node(name=r["name"], ari=r["ari_url"], ami=r["ami_url"], sip=r["sip_uri"])
            for r in await _rows(conn, "SELECT * FROM nodes ORDER BY name")]


async def _load_trunks(conn: AsyncConnection) -> list[Trunk]:
    return [Trunk(name=r["name"], endpoint=r["endpoint"], caller_id=r["caller_id"], allow=tuple(r["allow"]),
                  ring_timeout=r["ring_timeout"])
            for r in await _rows(conn, "SELECT * FROM trunks WHERE retired_at IS NULL ORDER BY name")]


# -- writing ------------------------------------------------------------------------------------

def _pg_time(value: time | None) -> str | None:
    """time -> PostgreSQL text; the day's end is written as 24:00 so that opens < closes holds."""
    if value is None:
        return None
    return "24:00" if value >= MIDNIGHT_END else value.isoformat()


async def _upsert_menu(conn: AsyncConnection, m: Menu) -> None:
    await conn.execute(
        "INSERT INTO ivr_menus (name, prompt, invalid_prompt, timeout_prompt, timeout_s, retries)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET prompt = excluded.prompt,"
        " invalid_prompt = excluded.invalid_prompt, timeout_prompt = excluded.timeout_prompt,"
        " timeout_s = excluded.timeout_s, retries = excluded.retries, retired_at = NULL,"
        " updated_at = now()",
        (m.name, m.prompt, m.invalid_prompt, m.timeout_prompt, m.timeout, m.retries))


async def _upsert_queue(conn: AsyncConnection, q: Queue) -> None:
    await conn.execute(
        "INSERT INTO queues (name, strategy, ring_timeout_s, retry_s, wrapup_s, max_wait_s, max_len,"
        " join_empty, announce_period_s, music_class, service_level_s, prefer_video_agents,"
        " announce_holdtime, ringback_s, video_fallback_s, video_key,"
        " transfer_no_answer, callback_key, callback_retries,"
        " callback_retry_interval_s, callback_expiry_s, record, record_announcement, survey, survey_thanks)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET strategy = excluded.strategy,"
        " ring_timeout_s = excluded.ring_timeout_s, retry_s = excluded.retry_s,"
        " wrapup_s = excluded.wrapup_s, max_wait_s = excluded.max_wait_s, max_len = excluded.max_len,"
        " join_empty = excluded.join_empty, announce_period_s = excluded.announce_period_s,"
        " music_class = excluded.music_class, service_level_s = excluded.service_level_s,"
        " prefer_video_agents = excluded.prefer_video_agents, retired_at = NULL, updated_at = now(),"
        " announce_holdtime = excluded.announce_holdtime, ringback_s = excluded.ringback_s,"
        " video_fallback_s = excluded.video_fallback_s, video_key = excluded.video_key,"
        " transfer_no_answer = excluded.transfer_no_answer,"
        " callback_key = excluded.callback_key,"
        " callback_retries = excluded.callback_retries,"
        " callback_retry_interval_s = excluded.callback_retry_interval_s,"
        " callback_expiry_s = excluded.callback_expiry_s, record = excluded.record,"
        " record_announcement = excluded.record_announcement,"
        " survey = excluded.survey, survey_thanks = excluded.survey_thanks,"
        " overflow_action = 'hangup',"
        " overflow_queue_id = NULL, overflow_hotline_id = NULL, overflow_menu_id = NULL,"
        " breakout_menu_id = NULL",
        (q.name, q.strategy, q.ring_timeout, q.retry, q.wrapup, q.max_wait, q.max_len, q.join_empty,
         q.announce_period, q.music, q.service_level, q.prefer_video_agents, q.announce_holdtime,
         q.ringback, q.video_fallback, q.video_key, q.transfer_no_answer, q.callback_key, q.callback_retries,
         q.callback_retry_interval, q.callback_expiry, q.record, q.record_announcement,
         list(q.survey) or None, q.survey_thanks))


async def _set_overflow(conn: AsyncConnection, q: Queue, ids: dict[str, dict[str, int]]) -> None:
    refs = _refs(q.overflow, ids)
    breakout = ids["menus"][q.breakout_menu] if q.breakout_menu else None
    await conn.execute(
        "UPDATE queues SET overflow_action = %s, overflow_queue_id = %s, overflow_hotline_id = %s,"
        " overflow_menu_id = %s, breakout_menu_id = %s WHERE name = %s",
        (q.overflow.action, refs["queue"], refs["hotline"], refs["menu"], breakout, q.name))


def _refs(target: Target | None, ids: dict[str, dict[str, int]]) -> dict[str, int | None]:
    out: dict[str, int | None] = {"queue": None, "hotline": None, "menu": None}
    if target is not None and target.names_object and target.name is not None:
        out[target.kind.removesuffix("s")] = ids[target.kind][target.name]
    return out


async def _upsert_hotline(conn: AsyncConnection, h: Hotline, ids: dict[str, dict[str, int]]) -> None:
    refs = _refs(h.entry, ids)
    await conn.execute(
        "INSERT INTO hotlines (name, description, time_zone, entry_menu_id, entry_queue_id,"
        " closed_action, closed_prompt, region_routing, record, record_announcement,"
        " page_title, page_text, page_logo, page_color, language)"
        " VALUES (%s, %s, %s, %s, %s, 'hangup', %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET description = excluded.description,"
        " time_zone = excluded.time_zone, entry_menu_id = excluded.entry_menu_id,"
        " entry_queue_id = excluded.entry_queue_id, closed_action = 'hangup', closed_hotline_id = NULL,"
        " closed_queue_id = NULL,"
        " closed_prompt = excluded.closed_prompt, region_routing = excluded.region_routing,"
        " record = excluded.record, record_announcement = excluded.record_announcement,"
        " page_title = excluded.page_title, page_text = excluded.page_text,"
        " page_logo = excluded.page_logo, page_color = excluded.page_color,"
        " language = excluded.language, retired_at = NULL, updated_at = now()",
        (h.name, h.description, h.time_zone, refs["menu"], refs["queue"], h.closed_prompt,
         bool(h.regions), h.record, h.record_announcement, h.page_title, h.page_text, h.page_logo,
         h.page_color, h.language))


async def _set_hotline_details(conn: AsyncConnection, h: Hotline, ids: dict[str, dict[str, int]]) -> None:
    hotline_id = ids["hotlines"][h.name]
    refs = _refs(h.closed, ids)
    await conn.execute("UPDATE hotlines SET closed_action = %s, closed_hotline_id = %s, closed_queue_id = %s"
                       " WHERE id = %s", (h.closed.action, refs["hotline"], refs["queue"], hotline_id))
    for table in ("hotline_hours", "hotline_holidays", "hotline_region_routes"):
        await conn.execute(f"DELETE FROM {table} WHERE hotline_id = %s", (hotline_id,))
    for oh in h.hours:
        await conn.execute("INSERT INTO hotline_hours (hotline_id, weekday, opens, closes)"
                           " VALUES (%s, %s, %s, %s)",
                           (hotline_id, oh.weekday, _pg_time(oh.opens), _pg_time(oh.closes)))
    for hd in h.holidays:
        await conn.execute("INSERT INTO hotline_holidays (hotline_id, day, opens, closes, note)"
                           " VALUES (%s, %s, %s, %s, %s)",
                           (hotline_id, hd.day, _pg_time(hd.opens), _pg_time(hd.closes), hd.note))
    for rr in h.regions:
        await conn.execute("INSERT INTO hotline_region_routes (hotline_id, match_kind, match, queue_id,"
                           " priority) VALUES (%s, %s, %s, %s, %s)",
                           (hotline_id, rr.match_kind, rr.match, ids["queues"][rr.queue], rr.priority))


async def _replace_options(conn: AsyncConnection, m: Menu, ids: dict[str, dict[str, int]]) -> None:
    menu_id = ids["menus"][m.name]
    await conn.execute("DELETE FROM ivr_options WHERE menu_id = %s", (menu_id,))
    for o in m.options:
        language = o.target.name if o.target.action == TargetAction.LANGUAGE else None
        refs = _refs(o.then if language else o.target, ids)
        await conn.execute(
            "INSERT INTO ivr_options (menu_id, digit, action, target_menu_id, target_queue_id,"
            " target_hotline_id, prompt, priority, language, then_action)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (menu_id, o.digit, o.target.action, refs["menu"], refs["queue"], refs["hotline"], o.prompt,
             o.priority, language, o.then.action if o.then else None))


async def _upsert_number(conn: AsyncConnection, n: Number, ids: dict[str, dict[str, int]]) -> None:
    await conn.execute(
        "INSERT INTO numbers (number, kind, hotline_id, line_limit, priority, language)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (number) DO UPDATE SET kind = excluded.kind, hotline_id = excluded.hotline_id,"
        " line_limit = excluded.line_limit, priority = excluded.priority, language = excluded.language,"
        " retired_at = NULL",
        (n.number, n.kind, ids["hotlines"][n.hotline], n.lines, n.priority, n.language))


async def _upsert_agent(conn: AsyncConnection, a: Agent, ids: dict[str, dict[str, int]]) -> None:
    caps = a.capabilities
    # Every agent comes with its password's HA1 (provisioning_changes fills in a generated one).
    cur = await conn.execute(
        "INSERT INTO agents (name, endpoint, display_name, password_ha1, audio, video, webrtc, supervisor)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET endpoint = excluded.endpoint,"
        " display_name = excluded.display_name, password_ha1 = excluded.password_ha1,"
        " audio = excluded.audio, video = excluded.video, webrtc = excluded.webrtc,"
        " supervisor = excluded.supervisor,"
        " retired_at = NULL, updated_at = now() RETURNING id",
        (a.name, a.endpoint, a.display_name, a.password_ha1, "audio" in caps, "video" in caps,
         "webrtc" in caps, a.supervisor))
    row = await cur.fetchone()
    assert row is not None
    await conn.execute("DELETE FROM queue_members WHERE agent_id = %s", (row[0],))
    for queue, penalty in a.queues:
        await conn.execute("INSERT INTO queue_members (queue_id, agent_id, penalty) VALUES (%s, %s, %s)",
                           (ids["queues"][queue], row[0], penalty))


async def _upsert_trunk(conn: AsyncConnection, t: Trunk) -> None:
    await conn.execute(
        "INSERT INTO trunks (name, endpoint, caller_id, allow, ring_timeout) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET endpoint = excluded.endpoint, caller_id = excluded.caller_id,"
        " allow = excluded.allow, ring_timeout = excluded.ring_timeout, retired_at = NULL,"
        " updated_at = now()",
        (t.name, t.endpoint, t.caller_id, list(t.allow), t.ring_timeout))


async def _upsert_node(conn: AsyncConnection, n: Node) -> None:
    # draining and serving_until are operations' and the daemon's: a file never touches them
    await conn.execute(
        "INSERT INTO nodes (name, ari_url, ami_url, sip_uri) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET ari_url = excluded.ari_url, ami_url = excluded.ami_url,"
        " sip_uri = excluded.sip_uri", (n.name, n.ari, n.ami, n.sip))


async def _retire(conn: AsyncConnection, plan: Plan) -> None:
    """Retire in the order that keeps references valid: numbers, agents, hotlines, menus, queues."""
    removed = {kind: sorted(plan.removed(kind)) for kind in Provisioning.KINDS}
    if removed["numbers"]:
        await conn.execute("UPDATE numbers SET retired_at = now() WHERE number = ANY(%s)",
                           (removed["numbers"],))
    if removed["agents"]:
        await conn.execute("DELETE FROM queue_members WHERE agent_id IN"
                           " (SELECT id FROM agents WHERE name = ANY(%s))", (removed["agents"],))
        # A removed agent is logged out: open intervals would grow logged-in time for ever.
        for table, column in (("agent_pauses", "ended_at"), ("agent_sessions", "logged_out_at")):
            await conn.execute(f"UPDATE {table} SET {column} = now() WHERE {column} IS NULL AND agent_id IN"
                               " (SELECT id FROM agents WHERE name = ANY(%s))", (removed["agents"],))
        await conn.execute("UPDATE agents SET retired_at = now() WHERE name = ANY(%s)", (removed["agents"],))
    for kind in ("hotlines", "menus", "queues", "trunks"):
        if removed[kind]:
            await conn.execute(f"UPDATE {_RETIRED_BY_NAME[kind]} SET retired_at = now() WHERE name = ANY(%s)",
                               (removed[kind],))
    if removed["nodes"]:  # hops keep the node's name: nothing refers to the row
        await conn.execute("DELETE FROM nodes WHERE name = ANY(%s)", (removed["nodes"],))
    if removed["queues"]:
        await conn.execute("DELETE FROM queue_members WHERE queue_id IN"
                           " (SELECT id FROM queues WHERE name = ANY(%s))", (removed["queues"],))


async def live_ids(conn: AsyncConnection) -> dict[str, dict[str, int]]:
    """name -> id of live numbers, hotlines, queues, agents and menus (what hops record)."""
    out = {}
    for kind, table, key in (("numbers", "numbers", "number"), ("hotlines", "hotlines", "name"),
                             ("queues", "queues", "name"), ("agents", "agents", "name"),
                             ("menus", "ivr_menus", "name")):
        cur = await conn.execute(f"SELECT {key}, id FROM {table} WHERE retired_at IS NULL")
        out[kind] = {row[0]: row[1] for row in await cur.fetchall()}
    return out
