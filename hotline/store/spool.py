"""The write-behind's overflow on disk: records the database could not take in time, kept in
their order as numbered batches, one segment file per spill, until they are written.

A segment holds batches as JSON lines `{"writer", "batch", "records"}`: each keeps the writer and
number it would have been written under, so a batch applied just before a crash or a lost reply
is recognised when its segment is read again (record_writers, migration 010) and not applied
twice. A segment is written to a `.part` file, fsynced and renamed, so a crash never leaves half
a segment to read; it is deleted once every batch in it is written.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from hotline.store.records import Record

SEGMENT_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class SpooledBatch:
    writer: uuid.UUID
    batch_no: int
    records: list[Record]


class Spool:
    """The segments of one database's records on one node (the directory names both)."""

    def __init__(self, directory: Path, writer: uuid.UUID) -> None:
        self.directory = directory
        self.writer = writer
        self._started_ns = time.time_ns()
        self._seq = 0

    def open(self) -> list[Path]:
        """Create the directory; the segments earlier runs left, oldest first."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in self.directory.glob("*.part"):  # a spill cut short: nothing of it was promised
            stale.unlink(missing_ok=True)
        return sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}"))

    def write_segment(self, batches: list[tuple[int, list[Record]]]) -> Path:
        """One spill, durable before this returns; named to sort after every earlier segment."""
        self._seq += 1
        path = self.directory / f"{self._started_ns:020d}-{self._seq:08d}-{self.writer}{SEGMENT_SUFFIX}"
        part = path.with_suffix(".part")
        with part.open("w", encoding="utf-8") as out:
            for batch_no, records in batches:
                out.write(json.dumps({"writer": str(self.writer), "batch": batch_no, "records": records},
                                     separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())
        part.rename(path)
        return path


def read_segment(path: Path) -> list[SpooledBatch]:
    with path.open(encoding="utf-8") as lines:
        return [_batch(json.loads(line)) for line in lines if line.strip()]


def spool_directory(root: Path, database: str, node: str) -> Path:
    """Where one database's records from one node are spooled: never replayed into another."""
    return root / _safe(f"{node}@{database}")


def _batch(raw: dict[str, object]) -> SpooledBatch:
    records = raw["records"]
    if not isinstance(records, list):
        raise ValueError("a spooled batch without a list of records")
    return SpooledBatch(uuid.UUID(str(raw["writer"])), int(str(raw["batch"])), records)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]", "_", name)
