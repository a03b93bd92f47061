"""What the recording lab tests look at: the hop an agent answered, the recordings rows once ended,
and a WAV file once Asterisk closed it (its header counts every frame it holds)."""

from __future__ import annotations

import wave
from pathlib import Path

import psycopg

from hotline.lab import Lab

from support import sipp
from support.checks import rows, wait_until


def answered_hop(db: psycopg.Connection) -> dict[str, object]:
    return wait_until(lambda: next(iter(rows(db, "SELECT * FROM hops WHERE answered_at IS NOT NULL")), None),
                      what="the call answered by an agent")


def hang_up_and_wait(lab: Lab, db: psycopg.Connection, hop: dict[str, object], caller: object) -> None:
    lab.asterisk_cli(f"channel request hangup {hop['channel_id']}")
    assert sipp.finish(caller).ok  # type: ignore[arg-type]
    wait_until(lambda: rows(db, "SELECT id FROM hops WHERE ended_at IS NOT NULL"), what="the hop closed")


def file_of(daemon_env: dict[str, str], recording: dict[str, object]) -> Path:
    return Path(daemon_env["HOTLINE_RECORDING_DIR"]) / f"{recording['name']}.wav"


def finished_recordings(db: psycopg.Connection, count: int) -> list[dict[str, object]]:
    def ended() -> list[dict[str, object]] | None:
        found = rows(db, "SELECT g.*, a.name AS agent, q.name AS queue FROM recordings g"
                         " LEFT JOIN agents a ON a.id = g.agent_id LEFT JOIN queues q ON q.id = g.queue_id"
                         " ORDER BY g.started_at")
        return found if len(found) == count and all(r["ended_at"] is not None for r in found) else None
    return wait_until(ended, what=f"{count} recording(s) ended")


def closed_wav(path: Path) -> wave.Wave_read:
    """The file once Asterisk closed it: its header counts every frame the file holds."""
    def complete() -> bool:
        if not path.is_file() or path.stat().st_size <= 44:
            return False
        with wave.open(str(path)) as w:
            return 44 + w.getnframes() * w.getsampwidth() * w.getnchannels() == path.stat().st_size
    wait_until(complete, what=f"{path.name} closed by Asterisk")
    return wave.open(str(path))


def seconds_of(path: Path) -> float:
    with closed_wav(path) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        return w.getnframes() / w.getframerate()
