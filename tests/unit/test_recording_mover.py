"""Moving a finished recording's file (engine.recording_mover): where it goes (a directory per
day), a rename on one filesystem, a copy then a rename across two, and never over a file that is
there already. The lab test (tests/e2e/test_recording_move_calls.py) moves Asterisk's real file."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotline.engine import recording_mover
from hotline.engine.recording_mover import destination, move_file


def test_a_recording_goes_into_the_directory_of_the_day_its_talk_began() -> None:
    began = datetime(2026, 12, 3, 23, 59, 30, tzinfo=UTC)
    assert destination("/srv/rec", began, "case7-x.wav") == Path("/srv/rec/2026/12/03/case7-x.wav")


def test_a_move_on_one_filesystem_renames_the_file_into_a_new_day_directory(tmp_path: Path) -> None:
    source = tmp_path / "spool" / "a.wav"
    source.parent.mkdir()
    source.write_bytes(b"RIFF" + bytes(60))
    dest = tmp_path / "kept" / "2026" / "12" / "03" / "a.wav"
    move_file(source, dest)
    assert dest.read_bytes() == b"RIFF" + bytes(60) and not source.exists()


def test_a_move_across_filesystems_copies_then_renames_and_removes_the_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, dest = tmp_path / "a.wav", tmp_path / "kept" / "a.wav"
    source.write_bytes(b"RIFF" + bytes(60))
    real_rename = os.rename

    def other_filesystem(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        if Path(src) == source:  # what the kernel says of a rename across two filesystems
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(src, dst)
    monkeypatch.setattr(recording_mover.os, "rename", other_filesystem)
    move_file(source, dest)
    assert dest.read_bytes() == b"RIFF" + bytes(60) and not source.exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.wav"]  # no .part left


def test_a_move_never_overwrites_a_file_and_keeps_the_source(tmp_path: Path) -> None:
    source, dest = tmp_path / "a.wav", tmp_path / "kept" / "a.wav"
    source.write_bytes(b"new")
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        move_file(source, dest)
    assert (source.read_bytes(), dest.read_bytes()) == (b"new", b"old")
