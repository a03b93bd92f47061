"""Recordings as the database keeps them (migration 030), against the lab's real PostgreSQL: the
records a recorded talk submits (start, pause, resume, end) applied in one batch; the duration the
file holds, less the pause; a failed start; `case show` listing them; the file commands against a
directory of the test's own (a file present, gone, purged)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg_pool import AsyncConnectionPool
from test_transfer_records import at, live_hop

from hotline.cli import main
from hotline.engine.recording_mover import RecordingMover, destination, move_file
from hotline.store import recordings
from hotline.store.case_timeline import case_timeline
from hotline.store.contacts import Contacts
from hotline.store.db import connect, open_pool
from hotline.store.records import (
    RecordingRow,
    recording_ended_record,
    recording_paused_record,
    recording_resumed_record,
    recording_started_record,
    write_records,
)

from support.checks import rows

pytestmark = pytest.mark.lab


@pytest.fixture
def ids(db: psycopg.Connection) -> dict[str, int]:
    db.execute("INSERT INTO queues (name) VALUES ('support')")
    db.execute("INSERT INTO agents (name, endpoint) VALUES ('anna', 'anna'), ('boris', 'boris')")
    found = rows(db, "SELECT name, id FROM queues UNION ALL SELECT name, id FROM agents")
    return {r["name"]: r["id"] for r in found}


@pytest.fixture
async def contacts(db_dsn: str) -> AsyncIterator[Contacts]:
    pool: AsyncConnectionPool = await open_pool(db_dsn, max_size=2)
    async with pool:
        yield Contacts(pool)


async def a_recorded_talk(db_dsn: str, contacts: Contacts, ids: dict[str, int]) -> int:
    """A 60 s segment with anna in support paused 15 s, and a start Asterisk refused; the case."""
    hop = await live_hop(contacts)
    async with await connect(db_dsn) as conn:
        await write_records(conn, [
            recording_started_record(RecordingRow("rec-a", hop.id, ids["anna"], ids["support"], "wav",
                                                  "/x/rec-a.wav", at(4))),
            recording_paused_record("rec-a", "cli", at(20)),
            recording_paused_record("rec-a", "cli", at(22)),  # paused already: nothing changes
            recording_resumed_record("rec-a", at(35)),
            recording_ended_record("rec-a", at=at(64)),
            recording_started_record(RecordingRow("rec-b", hop.id, ids["boris"], ids["support"], "wav",
                                                  "/x/rec-b.wav", at(70))),
            recording_ended_record("rec-b", "Asterisk refused: 500", at(70))])
        await conn.commit()
    return hop.case_id


async def test_a_recorded_segment_is_one_row_with_its_pause_and_the_duration_its_file_holds(
        contacts: Contacts, ids: dict[str, int], db_dsn: str, db: psycopg.Connection) -> None:
    case_id = await a_recorded_talk(db_dsn, contacts, ids)
    recs = rows(db, "SELECT name, case_id, agent_id, queue_id, state, duration_ms, detail FROM recordings"
                    " ORDER BY id")
    assert recs == [
        {"name": "rec-a", "case_id": case_id, "agent_id": ids["anna"], "queue_id": ids["support"],
         "state": "done", "duration_ms": 45_000, "detail": None},
        {"name": "rec-b", "case_id": case_id, "agent_id": ids["boris"], "queue_id": ids["support"],
         "state": "failed", "duration_ms": None, "detail": "Asterisk refused: 500"}]
    [pause] = rows(db, "SELECT paused_at, resumed_at, asked_by FROM recording_pauses")
    assert (pause["paused_at"], pause["resumed_at"], pause["asked_by"]) == (at(20), at(35), "cli")
    events = rows(db, "SELECT kind, agent, data->>'name' AS name, data->>'state' AS state"
                      " FROM contact_events WHERE starts_with(kind, 'recording') ORDER BY id")
    assert [(e["kind"], e["agent"], e["name"], e["state"]) for e in events] == [
        ("recording_started", "anna", "rec-a", None), ("recording_paused", "anna", "rec-a", None),
        ("recording_resumed", "anna", "rec-a", None), ("recording_stopped", "anna", "rec-a", "done"),
        ("recording_started", "boris", "rec-b", None), ("recording_stopped", "boris", "rec-b", "failed")]
    async with await connect(db_dsn) as conn:
        timeline = await case_timeline(conn, case_id)
    said = [m.what for m in timeline.moments() if "recording" in m.what]
    assert said == ["recording #1 started (anna)", "recording #1 paused by cli", "recording #1 resumed",
                    "recording #1 done: 45.0 s recorded", "recording #2 started (boris)",
                    "recording #2 failed"]


async def test_the_file_commands_find_export_and_purge_and_report_a_missing_file(
        contacts: Contacts, ids: dict[str, int], db_dsn: str, db: psycopg.Connection, tmp_path: Path) -> None:
    case_id = await a_recorded_talk(db_dsn, contacts, ids)
    files = tmp_path / "recording"
    files.mkdir()
    (files / "rec-a.wav").write_bytes(b"RIFF" + bytes(100))
    env = {"HOTLINE_DSN": db_dsn, "HOTLINE_RECORDING_DIR": str(files)}

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args), env=env)
        return result.exit_code, result.output.strip()

    async def run(*args: str) -> tuple[int, str]:  # the CLI runs its own event loop: in a thread
        return await asyncio.to_thread(invoke, *args)

    shown = (await run("case", "show", str(case_id)))[1]
    assert "#1 hop 1 agent anna queue support done 45.0 s: rec-a.wav" in shown
    assert "#2 hop 1 agent boris queue support failed (Asterisk refused: 500): rec-b.wav" in shown
    assert await run("recording", "path", "1") == (0, str(files / "rec-a.wav"))
    assert await run("recording", "path", "rec-a") == (0, str(files / "rec-a.wav"))
    code, said = await run("recording", "path", "2")
    assert code == 1 and "failed and has no file: Asterisk refused: 500" in said
    code, said = await run("recording", "path", "99")
    assert code == 1 and "no recording '99'" in said
    assert (await run("recording", "export", "1", str(tmp_path)))[0] == 0
    assert (tmp_path / "rec-a.wav").read_bytes() == (files / "rec-a.wav").read_bytes()

    code, said = await run("recording", "purge")
    assert code == 2 and "give --older-than DAYS, or set recording_retention" in said
    assert await run("recording", "purge", "--older-than", "1") == (
        0, "dry run: would purge 0 recording(s), 0 missing; run with --yes to delete them")
    db.execute("UPDATE recordings SET started_at = started_at - interval '40 days',"
               " ended_at = ended_at - interval '40 days'")
    env["HOTLINE_RECORDING_RETENTION"] = "30"
    code, said = await run("recording", "purge")  # the retention setting's 30 days
    assert code == 0 and f"would delete #1 {files / 'rec-a.wav'} (104 bytes" in said
    assert (files / "rec-a.wav").is_file()  # a dry run deletes nothing
    code, said = await run("recording", "purge", "--older-than", "30", "--yes")
    assert code == 0 and said.endswith("purged 1 recording(s), 0 missing")
    assert not (files / "rec-a.wav").exists()
    assert [r["state"] for r in rows(db, "SELECT state FROM recordings ORDER BY id")] == ["purged", "failed"]
    code, said = await run("recording", "export", "1", str(tmp_path))
    assert code == 1 and "was purged on" in said


async def test_a_moved_file_and_its_row_change_together_and_a_failed_move_changes_neither(
        contacts: Contacts, ids: dict[str, int], db_dsn: str, db: psycopg.Connection, tmp_path: Path) -> None:
    await a_recorded_talk(db_dsn, contacts, ids)
    spool, kept = tmp_path / "spool", tmp_path / "kept"
    spool.mkdir()
    (spool / "rec-a.wav").write_bytes(b"RIFF" + bytes(100))
    pool: AsyncConnectionPool = await open_pool(db_dsn, max_size=2)
    async with pool:
        mover = RecordingMover(pool, NoLiveRecordings(), str(spool), str(kept), row_patience_s=0.5)
        async with pool.connection() as conn:
            assert await recordings.ended_at_start(conn, "rec-b") is None  # failed: never moved
            began = await recordings.ended_at_start(conn, "rec-a")
        assert began is not None
        dest = destination(str(kept), began, "rec-a.wav")
        dest.parent.mkdir(parents=True)
        dest.write_bytes(b"someone else's")  # a move never overwrites: it fails, and changes nothing
        await mover._move("rec-a", "rec-a.wav")
        [row] = rows(db, "SELECT path, moved_at FROM recordings WHERE name = 'rec-a'")
        assert (row["path"], row["moved_at"]) == ("/x/rec-a.wav", None)
        assert (spool / "rec-a.wav").is_file()
        dest.unlink()
        await mover._move("rec-a", "rec-a.wav")
    [row] = rows(db, "SELECT path, moved_at FROM recordings WHERE name = 'rec-a'")
    assert row["path"] == str(dest) and row["moved_at"] is not None
    assert dest.read_bytes() == b"RIFF" + bytes(100) and not (spool / "rec-a.wav").exists()
    env = {"HOTLINE_DSN": db_dsn, "HOTLINE_RECORDING_DIR": str(spool)}
    said = await asyncio.to_thread(lambda: CliRunner().invoke(main, ["recording", "path", "rec-a"], env=env))
    assert (said.exit_code, said.output.strip()) == (0, str(dest))


async def test_a_row_the_commit_of_which_fails_puts_the_moved_file_back(
        contacts: Contacts, ids: dict[str, int], db_dsn: str, db: psycopg.Connection, tmp_path: Path) -> None:
    await a_recorded_talk(db_dsn, contacts, ids)
    source, dest = tmp_path / "rec-a.wav", tmp_path / "kept" / "rec-a.wav"
    source.write_bytes(b"RIFF")
    db.execute("ALTER TABLE recordings ADD CONSTRAINT no_moves CHECK (moved_at IS NULL)")
    async with await connect(db_dsn) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            await recordings.move_with_row(conn, "rec-a", dest,
                                           lambda: asyncio.to_thread(move_file, source, dest),
                                           lambda: asyncio.to_thread(move_file, dest, source))
    assert source.read_bytes() == b"RIFF" and not dest.exists()
    assert rows(db, "SELECT path, moved_at FROM recordings WHERE name = 'rec-a'") == [
        {"path": "/x/rec-a.wav", "moved_at": None}]


class NoLiveRecordings:
    """Asterisk with no live recording: every file is closed."""

    async def live_recording(self, name: str) -> None:
        return None


async def test_a_failed_recording_that_left_a_file_is_served_and_purged_with_the_rest(
        contacts: Contacts, ids: dict[str, int], db_dsn: str, db: psycopg.Connection, tmp_path: Path) -> None:
    """A recording cut short (its talk ended while no daemon ran) is failed yet has a file: the
    file commands serve it, saying it failed, and the retention deletes it like any other."""
    await a_recorded_talk(db_dsn, contacts, ids)
    files = tmp_path / "recording"
    files.mkdir()
    (files / "rec-a.wav").write_bytes(b"RIFF" + bytes(100))
    (files / "rec-b.wav").write_bytes(b"RIFF" + bytes(40))
    env = {"HOTLINE_DSN": db_dsn, "HOTLINE_RECORDING_DIR": str(files)}

    async def run(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)

    served = await run("recording", "path", "2")
    assert (served.exit_code, served.stdout.strip()) == (0, str(files / "rec-b.wav"))
    assert "recording #2 failed (Asterisk refused: 500); its file holds what was recorded" in served.stderr
    db.execute("UPDATE recordings SET started_at = started_at - interval '40 days',"
               " ended_at = ended_at - interval '40 days'")
    purged = await run("recording", "purge", "--older-than", "30", "--yes")
    assert purged.exit_code == 0 and purged.stdout.strip().endswith("purged 2 recording(s), 0 missing")
    assert list(files.iterdir()) == []
    assert [r["state"] for r in rows(db, "SELECT state FROM recordings ORDER BY id")] == ["purged", "purged"]
    assert rows(db, "SELECT detail FROM recordings WHERE id = 2") == [{"detail": "Asterisk refused: 500"}]
