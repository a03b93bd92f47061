"""The lab's host checks: which ports are taken and by whom, which pids are stale, what is mounted."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hotline.errors import LabError
from hotline.lab import host

# -- ports ---------------------------------------------------------------------------------------


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_listening_tcp_port_is_reported_with_the_process_holding_it() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert not host.port_is_free(port, "tcp")
        with pytest.raises(LabError) as caught:
            host.check_ports_free(((port, "tcp"),), patience=0)
    message = str(caught.value)
    assert f"127.0.0.1:{port}/tcp" in message
    assert f"pid {os.getpid()}" in message
    assert "\n" not in message


def test_a_bound_udp_port_is_taken_and_names_its_holder() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        assert not host.port_is_free(port, "udp")
        assert host.port_holder(port, "udp") is not None
        assert f"pid {os.getpid()}" in (host.port_holder(port, "udp") or "")


def test_a_free_port_passes_the_check() -> None:
    port = free_port(socket.SOCK_STREAM)
    assert host.port_is_free(port, "tcp")
    host.check_ports_free(((port, "tcp"),), patience=0)


def test_socket_inodes_reads_listening_sockets_from_a_proc_net_table() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:13BE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
        "       0 4242 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0100007F:13BE 0100007F:BA40 06 00000000:00000000 03:000009AE 00000000     0 "
        "       0 0 3 0000000000000000\n"
        "   2: 0100007F:1F98 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
        "       0 777 1 0000000000000000 100 0 0 10 0\n"
    )
    assert host.socket_inodes(table, 5054, listening_only=True) == {4242}
    assert host.socket_inodes(table, 8088, listening_only=True) == {777}
    assert host.socket_inodes(table, 5060, listening_only=False) == set()


# -- pids ----------------------------------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_pid_file_of_a_dead_process_is_stale_and_cleared(tmp_path: Path) -> None:
    pid_file = tmp_path / "asterisk.pid"
    pid_file.write_text(f"{dead_pid()}\n")
    assert host.live_pid(pid_file, tmp_path, "asterisk", clear=True) is None
    assert not pid_file.exists()


def test_a_pid_reused_by_another_program_is_not_taken_for_ours(tmp_path: Path) -> None:
    pid_file = tmp_path / "asterisk.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # alive, but python, and not in tmp_path's root
    assert host.live_pid(pid_file, tmp_path, "asterisk", clear=True) is None
    assert not pid_file.exists()


def test_a_stale_pid_file_is_left_alone_unless_asked_to_clear(tmp_path: Path) -> None:
    pid_file = tmp_path / "asterisk.pid"
    pid_file.write_text(f"{dead_pid()}\n")
    assert host.live_pid(pid_file, tmp_path, "asterisk") is None
    assert pid_file.exists()


def test_a_garbled_pid_file_counts_as_no_pid(tmp_path: Path) -> None:
    pid_file = tmp_path / "asterisk.pid"
    pid_file.write_text("not a pid\n")
    assert host.read_pid_file(pid_file) is None
    assert host.read_pid_file(tmp_path / "missing.pid") is None


def test_a_live_process_is_ours_only_in_the_root_it_runs_in(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while host.process_argv(child.pid)[:1] != ["sleep"] and time.monotonic() < deadline:
            time.sleep(0.01)  # between fork and exec the child is still python
        assert host.runs_in_root(child.pid, Path("/"), "sleep")
        assert not host.runs_in_root(child.pid, tmp_path, "sleep")
        assert not host.runs_in_root(child.pid, Path("/"), "asterisk")
    finally:
        child.kill()
        child.wait()


def test_an_unreaped_zombie_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        stat = Path(f"/proc/{child.pid}/stat")
        while time.monotonic() < deadline and " Z " not in stat.read_text():
            time.sleep(0.01)  # it exits within milliseconds; it is reaped only at the end
        assert not host.process_alive(child.pid)
    finally:
        child.wait()


# -- mounts --------------------------------------------------------------------------------------


def test_mount_points_are_read_from_mountinfo_with_escapes_undone() -> None:
    mountinfo = (
        "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "101 22 0:5 / /root/.cache/hotline/lab/root/proc rw,nosuid shared:12 - proc proc rw\n"
        "102 22 0:5 / /tmp/with\\040space/proc rw shared:12 - proc proc rw\n"
    )
    assert host.mount_points(mountinfo) == [
        "/", "/root/.cache/hotline/lab/root/proc", "/tmp/with space/proc"]
