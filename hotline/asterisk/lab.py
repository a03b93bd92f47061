"""The lab: a real Asterisk 22 and PostgreSQL 18 from Debian sid, chrooted, on 127.0.0.1.

The root is built once with mmdebstrap into HOME/root and reused. `up` starts PostgreSQL, then
Asterisk, with the project's reference config (asterisk-conf/, dialplan/) and generated secrets;
`down` stops what the lab started. Everything the lab starts is recorded (pid files, the /proc
mount) so that it never touches a process or mount that is not its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from hotline.errors import LabError

LAB_HOME_DEFAULT = Path(os.environ.get("HOTLINE_LAB_HOME", "~/.cache/hotline/lab")).expanduser()
AMI_PORT = 5038
HTTP_PORT = 8088
SIP_PORT = 5060
PG_PORT = 55432

HOST = "127.0.0.1"
ARI_APP = "hotline"
DB_NAME = "hotline"
DB_USER = "hotline"
AMI_USER = "hotline"
ARI_USER = "hotline"

SUITE = "sid"  # Asterisk 22 is in Debian's sid only
PACKAGES = (
    "asterisk",
    "asterisk-moh-opsound-gsm",
    "asterisk-core-sounds-en-gsm",
    "asterisk-core-sounds-ru-gsm",
    "postgresql",
)
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
MARKER = ".hotline-lab-built"
# Debian's release names and aliases: how a Debian mirror is told apart from third-party repos.
DEBIAN_SUITES = frozenset({
    "sid", "unstable", "testing", "stable", "oldstable", "oldoldstable", "experimental",
    "jessie", "stretch", "buster", "bullseye", "bookworm", "trixie", "forky", "duke",
})

PG_DATA = "/var/lib/postgresql/hotline-lab"  # paths inside the root
PG_LOG = "/var/log/postgresql/hotline-lab.log"
ASTERISK_OWNED = ("/etc/asterisk", "/var/lib/asterisk", "/var/log/asterisk",
                  "/var/spool/asterisk", "/usr/share/asterisk")
# Changing these needs a restart: `core reload` loads no new module and keeps core options.
RESTART_ON_CHANGE = frozenset({"asterisk.conf", "modules.conf"})

# Commands in the root get a clean environment: the host's locale may not exist there.
ROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
}
PORTS = {"ami": AMI_PORT, "http": HTTP_PORT, "sip": SIP_PORT, "postgres": PG_PORT}
ASTERISK_PORTS = ((AMI_PORT, "tcp"), (HTTP_PORT, "tcp"), (SIP_PORT, "udp"), (SIP_PORT, "tcp"))
PG_PORTS = ((PG_PORT, "tcp"),)

BOOT_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
NETWORK_TROUBLE = ("Could not resolve", "Temporary failure resolving", "Failed to fetch",
                   "Could not connect", "Connection failed", "Network is unreachable",
                   "Unable to connect", "No route to host", "Connection timed out")


def print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Which Debian mirror: read from the machine's own apt configuration, never hard-coded.


@dataclass(frozen=True)
class AptSource:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    types: tuple[str, ...] = ("deb",)
    enabled: bool = True


def parse_deb822_sources(text: str) -> list[AptSource]:
    """The stanzas of a `.sources` file (deb822: blank lines between stanzas, '#' comments)."""
    sources = []
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields = _deb822_fields(stanza)
        if "uris" not in fields:
            continue
        sources.append(AptSource(
            uris=tuple(fields["uris"].split()),
            suites=tuple(fields.get("suites", "").split()),
            types=tuple(fields.get("types", "deb").split()),
            enabled=fields.get("enabled", "yes").strip().lower() not in {"no", "false", "0"},
        ))
    return sources


def _deb822_fields(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t" and key:  # a continuation line (Signed-By with an inline key)
            fields[key] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            fields[key] = value.strip()
    return fields


def parse_one_line_sources(text: str) -> list[AptSource]:
    """The `deb URI SUITE COMPONENT...` lines of a sources.list (options in [...] skipped)."""
    sources = []
    for raw in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", raw.split("#", 1)[0])
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("deb", "deb-src"):
            sources.append(AptSource(uris=(parts[1],), suites=(parts[2],), types=(parts[0],)))
    return sources


def is_debian_suite(suite: str) -> bool:
    """bookworm, bookworm-updates, sid... are Debian's; *-security lives on another archive."""
    if "security" in suite or "/" in suite:  # buster/updates was the old security suite
        return False
    return suite.split("-", 1)[0] in DEBIAN_SUITES


def pick_debian_mirror(sources: list[AptSource]) -> str | None:
    """The first enabled http(s) `deb` entry whose suites are Debian's, without a trailing /."""
    for source in sources:
        if not source.enabled or "deb" not in source.types:
            continue
        if not any(is_debian_suite(suite) for suite in source.suites):
            continue
        for uri in source.uris:
            if uri.startswith(("http://", "https://")) and "security" not in uri:
                return uri.rstrip("/")
    return None


def read_debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses; LabError if it has none."""
    sources: list[AptSource] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        sources += parse_deb822_sources(_read_text(path))
    for path in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]:
        sources += parse_one_line_sources(_read_text(path))
    mirror = pick_debian_mirror(sources)
    if mirror is None:
        raise LabError(f"no Debian mirror found in {apt_dir} (sources.list, sources.list.d); "
                       "set HOTLINE_LAB_MIRROR to one, e.g. http://<mirror>/debian")
    return mirror


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# Processes, pid files, ports and mounts: the lab only ever touches what is provably its own.


def process_alive(pid: int) -> bool:
    """True while any thread of pid runs. A zombie (exited, not yet reaped) counts as gone, but
    a leader that shows Z while its other threads still tear down (and hold sockets) does not."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any(_task_state(pid, tid) not in (None, "Z", "X") for tid in tasks)


def _task_state(pid: int, tid: str) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[0] if fields else None


def process_argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def process_root(pid: int) -> str | None:
    """Where pid is chrooted; None when that cannot be read (gone, or we are not root)."""
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return None


def runs_in_root(pid: int, root: Path, program: str) -> bool:
    """pid is a live `program` chrooted into root, not a pid since reused by another program."""
    if pid <= 0 or not process_alive(pid):
        return False
    argv = process_argv(pid)
    if not argv or Path(argv[0]).name != program:
        return False
    where = process_root(pid)
    return where is None or where == str(root)


def read_pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def live_pid(pid_file: Path, root: Path, program: str, clear: bool = False) -> int | None:
    """The pid recorded in pid_file if it is still our program; with clear, a stale file goes."""
    pid = read_pid_file(pid_file)
    if pid is not None and runs_in_root(pid, root, program):
        return pid
    if clear:
        with contextlib.suppress(OSError):
            pid_file.unlink()
    return None


def describe_process(pid: int) -> str:
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        name = "?"
    where = process_root(pid)
    chrooted = f", chrooted into {where}" if where not in (None, "/") else ""
    return f"pid {pid} ({name}{chrooted})"


def port_is_free(port: int, proto: str = "tcp", host: str = HOST) -> bool:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        if proto == "tcp":  # a TIME_WAIT left by our own last run does not make the port taken
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def socket_inodes(table: str, port: int, listening_only: bool) -> set[int]:
    """Inodes of the sockets bound to port in a /proc/net/{tcp,udp}[6] table."""
    inodes = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or ":" not in fields[1]:
            continue
        if int(fields[1].rsplit(":", 1)[1], 16) != port:
            continue
        if listening_only and fields[3] != "0A":  # 0A = TCP_LISTEN
            continue
        if fields[9] != "0":
            inodes.add(int(fields[9]))
    return inodes


def port_holder(port: int, proto: str) -> str | None:
    """Which process holds port (e.g. 'pid 42 (sipp)'), or None if it cannot be found."""
    inodes: set[int] = set()
    for suffix in ("", "6"):
        inodes |= socket_inodes(_read_text(Path(f"/proc/net/{proto}{suffix}")), port,
                                listening_only=proto == "tcp")
    targets = {f"socket:[{inode}]" for inode in inodes}
    for pid in _all_pids() if targets else []:
        if targets & _socket_links(pid):
            return describe_process(pid)
    return None


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _socket_links(pid: int) -> set[str]:
    links: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return links
    for fd in fds:
        with contextlib.suppress(OSError):
            links.add(os.readlink(fd))
    return links


def check_ports_free(ports: tuple[tuple[int, str], ...], patience: float = 3.0) -> None:
    """LabError naming the first port (and its holder) that something else uses. A process that
    has just exited may hold its sockets a moment longer: wait up to `patience` seconds."""
    deadline = time.monotonic() + patience
    for port, proto in ports:
        while not port_is_free(port, proto):
            if time.monotonic() >= deadline:
                holder = port_holder(port, proto) or "another program"
                raise LabError(f"port {HOST}:{port}/{proto} is taken by {holder}; stop it and "
                               "run `hotline lab up` again")
            time.sleep(0.1)


def mount_points(mountinfo: str) -> list[str]:
    """Mount points listed in a /proc/self/mountinfo text (octal escapes such as \\040 undone)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path, deepest first (the order to unmount them in)."""
    prefix = str(path)
    found = [point for point in mount_points(_read_text(Path("/proc/self/mountinfo")))
             if point == prefix or point.startswith(prefix + "/")]
    return sorted(set(found), key=len, reverse=True)


def _run(argv: list[str], *, timeout: float = 120, check: bool = True, input: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run argv, capture its output; with check, a failure is a LabError quoting its stderr."""
    try:
        result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout,
                                input=input, env=env or ROOT_ENV,
                                stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{' '.join(argv[:4])} ...` did not finish within {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]} is not installed") from exc
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LabError(f"`{' '.join(argv[:4])} ...` failed: {detail[0]}")
    return result


def _write_if_changed(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write data to path atomically unless it already holds exactly that; True if written."""
    with contextlib.suppress(OSError):
        if path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
            return False
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # umask must not widen or narrow it
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabStatus:
    built: bool
    asterisk_pid: int | None
    postgres_pid: int | None
    ports: dict[str, int]

    def running(self) -> bool:
        return self.asterisk_pid is not None and self.postgres_pid is not None

    def describe(self) -> str:
        ports = self.ports
        if not self.built:
            return "lab: not built yet (the first `hotline lab up` builds it, about a minute)"
        asterisk = (f"running, pid {self.asterisk_pid}: AMI {HOST}:{ports['ami']}, "
                    f"HTTP/ARI {HOST}:{ports['http']}, SIP udp+tcp {HOST}:{ports['sip']}, "
                    f"WebSocket SIP ws://{HOST}:{ports['http']}/ws"
                    if self.asterisk_pid else "stopped")
        postgres = (f"running, pid {self.postgres_pid}: {HOST}:{ports['postgres']}"
                    if self.postgres_pid else "stopped")
        return f"Asterisk:   {asterisk}\nPostgreSQL: {postgres}"


class Lab:
    """A real Asterisk + PostgreSQL for trying hotline, for the demo and for the tests."""

    def __init__(self, project_dir: Path, home: Path = LAB_HOME_DEFAULT,
                 progress: Callable[[str], None] = print_to_stderr) -> None:
        self.project_dir = Path(project_dir).expanduser().resolve()
        # Resolved, because /proc/PID/root (how we recognise our processes) is canonical.
        self.home = Path(home).expanduser().resolve()
        self.root = self.home / "root"
        self.partial = self.home / "root.partial"
        self.state_dir = self.home / "state"
        self._progress = progress

    # -- public interface ---------------------------------------------------------------------

    @property
    def conf_dir(self) -> Path:
        return self.root / "etc" / "asterisk"

    def up(self) -> LabStatus:
        """Build if needed, then start PostgreSQL and Asterisk; reuses whatever already runs."""
        _require_root()
        with self._locked():
            self._check_ports_of_stopped_daemons()  # fail before building or starting anything
            self._ensure_built()
            self._ensure_proc_mounted()
            self._write_hosts(self.root)
            changed = self._sync_config()
            self._ensure_postgres()
            self._ensure_asterisk(changed)
        return self.status()

    def _check_ports_of_stopped_daemons(self) -> None:
        if self._postgres_pid() is None:
            check_ports_free(PG_PORTS)
        if self._asterisk_pid() is None:
            check_ports_free(ASTERISK_PORTS)

    def down(self) -> None:
        """Stop Asterisk and PostgreSQL (only the lab's own) and unmount the root's /proc."""
        _require_root()
        with self._locked():
            self._stop_asterisk()
            self._stop_postgres()
            self._unmount_all(self.root)

    def status(self) -> LabStatus:
        try:
            return LabStatus(built=self._marker(self.root).is_file(),
                             asterisk_pid=self._asterisk_pid(),
                             postgres_pid=self._postgres_pid(),
                             ports=dict(PORTS))
        except PermissionError as exc:
            raise LabError(f"cannot look into the lab at {self.home}: {exc.strerror}; "
                           "run as root") from exc

    def env(self) -> dict[str, str]:
        s = self._secrets()
        return {
            "HOTLINE_DSN": self._dsn(DB_NAME, s["db_password"]),
            "HOTLINE_AMI_URL": f"ami://{AMI_USER}:{quote(s['ami_secret'], safe='')}"
                               f"@{HOST}:{AMI_PORT}",
            "HOTLINE_ARI_URL": f"http://{ARI_USER}:{quote(s['ari_password'], safe='')}"
                               f"@{HOST}:{HTTP_PORT}",
            "HOTLINE_ARI_APP": ARI_APP,
            "HOTLINE_ASTERISK_CONF_DIR": str(self.conf_dir),
        }

    def admin_dsn(self) -> str:
        """The `hotline` role (it has CREATEDB) on the `postgres` database, so that creating or
        dropping test databases never holds a session on the `hotline` database."""
        return self._dsn("postgres", self._secrets()["db_password"])

    def restart_asterisk(self) -> None:
        _require_root()
        with self._locked():
            self._stop_asterisk()
            self._ensure_proc_mounted()
            self._start_asterisk()

    def asterisk_cli(self, command: str) -> str:
        """Output of `asterisk -rx COMMAND` in the lab's root."""
        _require_root()
        result = self._rx(command, timeout=30)
        if result.returncode != 0 or "Unable to connect to remote asterisk" in result.stdout:
            raise LabError("Asterisk is not running in the lab; run `hotline lab up`")
        return result.stdout

    def log_paths(self) -> dict[str, Path]:
        """'asterisk' is Asterisk's own log (messages); 'asterisk_console' its stdout/stderr,
        which alone holds what went wrong when it fails before its logger starts."""
        return {
            "asterisk": self.root / "var/log/asterisk/messages",
            "asterisk_console": self.state_dir / "asterisk-console.log",
            "postgres": self.root / PG_LOG.lstrip("/"),
        }

    # -- build ----------------------------------------------------------------------------------

    @staticmethod
    def _marker(root: Path) -> Path:
        return root / MARKER

    def _ensure_built(self) -> None:
        if self._marker(self.root).is_file():
            return
        if not shutil.which("mmdebstrap"):
            raise LabError("mmdebstrap is not installed; run `make setup`")
        self._discard(self.root)  # half-built (no marker): start again
        self._discard(self.partial)
        self.home.mkdir(parents=True, exist_ok=True)
        mirror = self._mirror()
        started = time.monotonic()
        self._progress(f"lab: building the root once (Debian {SUITE}: Asterisk 22, PostgreSQL 18)"
                       f" from {mirror}; log: {self.home / 'build.log'}")
        self._mmdebstrap(mirror)
        self._progress("lab: fixing up the root (owners, /etc/hosts, stock config removed)")
        self._fix_root(self.partial)
        marker = {"built": datetime.now(UTC).isoformat(timespec="seconds"),
                  "mirror": mirror, "suite": SUITE, "packages": list(PACKAGES)}
        self._marker(self.partial).write_text(json.dumps(marker, indent=2) + "\n")
        os.rename(self.partial, self.root)
        self._progress(f"lab: root built in {time.monotonic() - started:.0f} s")

    def _mirror(self) -> str:
        override = os.environ.get("HOTLINE_LAB_MIRROR", "").strip()
        return override.rstrip("/") if override else read_debian_mirror()

    def _mmdebstrap(self, mirror: str) -> None:
        signed_by = f"[signed-by={KEYRING}] " if KEYRING.is_file() else ""
        argv = ["mmdebstrap", "--variant=apt",
                '--aptopt=Acquire::Check-Valid-Until "false"',  # sid's Release is past it
                f"--include={','.join(PACKAGES)}", SUITE, str(self.partial),
                f"deb {signed_by}{mirror} {SUITE} main"]
        log_path = self.home / "build.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True, errors="replace")
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if line.startswith("I: "):  # mmdebstrap's own step lines make good progress
                    self._progress(f"  {line[3:].strip()}")
            code = proc.wait()
        if code != 0:
            self._build_failed(code, mirror, log_path)

    def _build_failed(self, code: int, mirror: str, log_path: Path) -> None:
        with contextlib.suppress(LabError):
            self._discard(self.partial)
        text = _read_text(log_path)
        if any(sign in text for sign in NETWORK_TROUBLE):
            raise LabError(f"cannot reach the Debian mirror {mirror} (the first `lab up` "
                           f"downloads Asterisk and PostgreSQL); check the network; see {log_path}")
        raise LabError(f"building the lab root failed (mmdebstrap exit {code}); see {log_path}")

    def _fix_root(self, root: Path) -> None:
        # The packages' files belong to the root's asterisk uid; Asterisk runs as root here.
        _run(["chroot", str(root), "chown", "-R", "root:root", *ASTERISK_OWNED])
        _run(["chroot", str(root), "mkdir", "-p", "/var/run/asterisk"])
        self._write_hosts(root)
        for stock in (root / "etc/asterisk").glob("*.conf"):  # only the project's config loads
            stock.unlink()
        sounds = root / "usr/share/asterisk/sounds"
        ru = sounds / "ru"
        if not ru.exists() and not ru.is_symlink() and (sounds / "ru_RU_f_IvrvoiceRU").is_dir():
            ru.symlink_to("ru_RU_f_IvrvoiceRU")  # so that a channel with language=ru finds them

    def _write_hosts(self, root: Path) -> None:
        """Without /etc/hosts Asterisk resolves its own name over DNS, stalling 5 s a call."""
        hosts = root / "etc/hosts"
        if hosts.is_symlink():  # never write through a link out of the root
            hosts.unlink()
        name = socket.gethostname()
        text = (f"127.0.0.1\tlocalhost {name}\n"
                "::1\tlocalhost ip6-localhost ip6-loopback\n")
        _write_if_changed(hosts, text.encode())

    def _discard(self, path: Path) -> None:
        """Remove a root left half-built, after unmounting whatever is still mounted in it."""
        if not path.exists():
            return
        if self._pids_in_root(path):
            raise LabError(f"processes still run inside {path}; stop them before the lab rebuilds")
        self._unmount_all(path)
        self._progress(f"lab: removing the unfinished root {path}")
        shutil.rmtree(path)

    def _pids_in_root(self, root: Path) -> list[int]:
        return [pid for pid in _all_pids() if process_root(pid) == str(root)]

    # -- mounts ---------------------------------------------------------------------------------

    def _ensure_proc_mounted(self) -> None:
        target = self.root / "proc"
        if str(target) in mounts_under(target):  # ours from an earlier `up` (or a crash): reuse
            return
        _run(["mount", "--bind", "/proc", str(target)])
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "mounts").write_text(f"{target}\n")

    def _unmount_all(self, root: Path) -> None:
        for _ in range(10):  # a point mounted twice (two crashed `up`s) needs two passes
            points = mounts_under(root)
            for point in points:
                if _run(["umount", point], check=False).returncode != 0:
                    _run(["umount", "--lazy", point], check=False)  # busy: detach it now
            if not points:
                break
        left = mounts_under(root)
        if left:
            raise LabError(f"{left[0]} is still mounted; unmount it by hand")
        with contextlib.suppress(OSError):
            (self.state_dir / "mounts").unlink()

    # -- config and secrets -----------------------------------------------------------------------

    def _secrets(self) -> dict[str, str]:
        """Generated on first use, kept in HOME/state/secrets.json (0600); never defaults."""
        path = self.state_dir / "secrets.json"
        try:
            loaded = json.loads(path.read_text())
        except FileNotFoundError:
            loaded = {}
        except PermissionError as exc:
            raise LabError(f"cannot read {path}: {exc.strerror}; run as root") from exc
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read {path} ({exc}); delete it for new secrets") from exc
        if not isinstance(loaded, dict):
            raise LabError(f"{path} is not a JSON object; delete it for new secrets")
        data = {str(key): str(value) for key, value in loaded.items() if value}
        makers: dict[str, Callable[[], str]] = {
            "db_password": lambda: secrets.token_urlsafe(24),
            "ami_secret": lambda: secrets.token_hex(16),
            "ari_password": lambda: secrets.token_urlsafe(24),
        }
        missing = {key: make() for key, make in makers.items() if key not in data}
        if missing:
            data.update(missing)
            try:
                self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                _write_if_changed(path, (json.dumps(data, indent=2) + "\n").encode(), 0o600)
            except OSError as exc:
                raise LabError(f"cannot write the lab's secrets to {path}: {exc}") from exc
        return data

    def _dsn(self, database: str, password: str) -> str:
        return f"postgresql://{DB_USER}:{quote(password, safe='')}@{HOST}:{PG_PORT}/{database}"

    def _project_conf_files(self) -> list[Path]:
        files = sorted((self.project_dir / "asterisk-conf").glob("*.conf"))
        if not files:
            raise LabError(f"no Asterisk config in {self.project_dir / 'asterisk-conf'}; "
                           "run the lab from a hotline checkout")
        return files + sorted((self.project_dir / "dialplan").glob("*.conf"))

    def _sync_config(self) -> set[str]:
        """Copy the project's config and the secrets includes into the root; names changed."""
        conf = self.conf_dir
        if conf.is_symlink() or not conf.resolve().is_relative_to(self.root):
            raise LabError(f"{conf} points out of the lab root; rebuild the lab")
        s = self._secrets()
        wanted = {src.name: (src.read_bytes(), 0o644) for src in self._project_conf_files()}
        wanted["manager_users.conf"] = (render_manager_users(s["ami_secret"]).encode(), 0o600)
        wanted["ari_users.conf"] = (render_ari_users(s["ari_password"]).encode(), 0o600)
        return {name for name, (data, mode) in wanted.items()
                if _write_if_changed(conf / name, data, mode)}

    # -- PostgreSQL -----------------------------------------------------------------------------

    def _pg_pid_file(self) -> Path:
        return self.root / PG_DATA.lstrip("/") / "postmaster.pid"

    def _postgres_pid(self, clear: bool = False) -> int | None:
        return live_pid(self._pg_pid_file(), self.root, "postgres", clear=clear)

    def _pg_bindir(self) -> str:
        found = [p.parent for p in self.root.glob("usr/lib/postgresql/*/bin/pg_ctl")]
        found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
        if not found:
            raise LabError(f"no PostgreSQL in {self.root}; delete {self.root} to rebuild the lab")
        return "/" + str(found[-1].relative_to(self.root))

    def _postgres_ids(self) -> str:
        """uid:gid of the root's postgres user (numeric: the host may have no such user)."""
        for line in _read_text(self.root / "etc/passwd").splitlines():
            fields = line.split(":")
            if fields[0] == "postgres" and len(fields) > 3:
                return f"{fields[2]}:{fields[3]}"
        raise LabError(f"no postgres user in {self.root}; delete {self.root} to rebuild the lab")

    def _as_postgres(self, *argv: str, check: bool = True, input: str | None = None,
                     timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return _run(["chroot", f"--userspec={self._postgres_ids()}", str(self.root), *argv],
                    check=check, input=input, timeout=timeout,
                    env={**ROOT_ENV, "HOME": "/var/lib/postgresql"})

    def _ensure_postgres(self) -> None:
        # A postmaster.pid whose process is gone (or is now another program) is stale: cleared.
        if self._postgres_pid(clear=True) is None:
            # So is the socket's lock file. PostgreSQL would refuse to start while its pid is a
            # zombie not yet reaped (seen after a SIGKILL), as kill(pid, 0) still succeeds.
            live_pid(self.root / f"tmp/.s.PGSQL.{PG_PORT}.lock", self.root, "postgres", clear=True)
            check_ports_free(PG_PORTS)
            self._ensure_pg_cluster()
            self._start_postgres()
        self._ensure_role_and_db(self._secrets()["db_password"])

    def _ensure_pg_cluster(self) -> None:
        data = self.root / PG_DATA.lstrip("/")
        if (data / "PG_VERSION").is_file():
            return
        if data.exists():
            shutil.rmtree(data)  # left by an interrupted initdb
        self._progress("lab: creating the PostgreSQL cluster")
        self._as_postgres(f"{self._pg_bindir()}/initdb", "-D", PG_DATA, "-U", "postgres",
                          "--auth-local=peer", "--auth-host=scram-sha-256",
                          "--encoding=UTF8", "--locale=C.UTF-8")

    def _start_postgres(self) -> None:
        self._progress(f"lab: starting PostgreSQL on {HOST}:{PG_PORT}")
        options = f"-p {PG_PORT} -k /tmp -c listen_addresses={HOST}"
        result = self._as_postgres(f"{self._pg_bindir()}/pg_ctl", "-D", PG_DATA, "-l", PG_LOG,
                                   "-w", "-t", "60", "-o", options, "start", check=False)
        if result.returncode != 0 or self._postgres_pid() is None:
            raise LabError(f"PostgreSQL did not start; see {self.log_paths()['postgres']}")

    def _psql(self, sql: str, database: str = "postgres") -> str:
        result = self._as_postgres(f"{self._pg_bindir()}/psql", "-X", "-q", "-tA",
                                   "-v", "ON_ERROR_STOP=1", "-h", "/tmp", "-p", str(PG_PORT),
                                   "-U", "postgres", "-d", database, "-f", "-",
                                   input=sql, check=False, timeout=60)
        if result.returncode != 0:
            raise LabError(f"PostgreSQL refused the lab's setup: {result.stderr.strip()}")
        return result.stdout

    def _ensure_role_and_db(self, password: str) -> None:
        # Passwords are URL-safe base64 ([A-Za-z0-9_-]): safe inside a SQL literal. Sent on
        # stdin, not argv, so that `ps` never shows them. ALTER keeps it equal to secrets.json.
        self._psql(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DB_USER}') "
            f"THEN CREATE ROLE {DB_USER}; END IF; END $$;\n"
            f"ALTER ROLE {DB_USER} WITH LOGIN CREATEDB PASSWORD '{password}';\n"
            # Tests drop their databases WITH (FORCE); PostgreSQL 18 lets a plain role end an
            # autovacuum worker on its database only with this grant.
            f"GRANT pg_signal_autovacuum_worker TO {DB_USER};\n")
        if not self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';").strip():
            self._psql(f"CREATE DATABASE {DB_NAME} OWNER {DB_USER};")

    def _stop_postgres(self) -> None:
        pid = self._postgres_pid(clear=True)
        if pid is None:
            return
        self._progress("lab: stopping PostgreSQL")
        self._as_postgres(f"{self._pg_bindir()}/pg_ctl", "-D", PG_DATA, "-m", "fast", "-w",
                          "-t", "30", "stop", check=False, timeout=60)
        if not _wait_gone(pid, STOP_TIMEOUT):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # what `-m immediate` amounts to anyway: a crash
            _wait_gone(pid, STOP_TIMEOUT)

    # -- Asterisk -------------------------------------------------------------------------------

    @property
    def _asterisk_pid_file(self) -> Path:
        return self.state_dir / "asterisk.pid"

    def _asterisk_pid(self, clear: bool = False) -> int | None:
        """Our Asterisk daemon, from the pid file, or found running in our root (adopted)."""
        pid = live_pid(self._asterisk_pid_file, self.root, "asterisk", clear=clear)
        if pid is not None:
            return pid
        for candidate in _all_pids():
            argv = process_argv(candidate)
            daemon = "-f" in argv and not any(a.startswith(("-r", "-R")) for a in argv[1:])
            if daemon and runs_in_root(candidate, self.root, "asterisk") \
                    and process_root(candidate) is not None:
                if clear:  # we hold the lock: record it, so that `down` stops it later
                    self._asterisk_pid_file.write_text(f"{candidate}\n")
                return candidate
        return None

    def _rx(self, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return _run(["chroot", str(self.root), "asterisk", "-rx", command],
                    check=False, timeout=timeout)

    def _ensure_asterisk(self, changed: set[str]) -> None:
        pid = self._asterisk_pid(clear=True)
        if pid is None:
            self._start_asterisk()
        elif changed & RESTART_ON_CHANGE:
            self._progress(f"lab: {', '.join(sorted(changed & RESTART_ON_CHANGE))} changed: "
                           "restarting Asterisk")
            self._stop_asterisk()
            self._start_asterisk()
        else:
            self._wait_booted(pid, time.monotonic())
            if changed:
                self._progress(f"lab: config changed ({', '.join(sorted(changed))}): core reload")
                self._rx("core reload", timeout=30)

    def _start_asterisk(self) -> None:
        check_ports_free(ASTERISK_PORTS)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        console = self.log_paths()["asterisk_console"]
        if console.exists():  # keep the previous run's console (a crash's last words)
            os.replace(console, console.with_suffix(".log.1"))
        self._progress(f"lab: starting Asterisk (AMI {AMI_PORT}, HTTP/ARI {HTTP_PORT}, "
                       f"SIP {SIP_PORT})")
        started = time.monotonic()
        pid = self._spawn_asterisk(console)
        self._asterisk_pid_file.write_text(f"{pid}\n")
        self._wait_booted(pid, started)
        self._progress(f"lab: Asterisk fully booted in {time.monotonic() - started:.1f} s")

    def _spawn_asterisk(self, console: Path) -> int:
        """Start `asterisk -f` in its own session through a shell that exits at once, so the
        daemon is not our child: it outlives us and never lingers as our unreaped zombie."""
        script = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
        result = subprocess.run(
            ["sh", "-c", script, "sh", str(console),
             "chroot", str(self.root), "asterisk", "-f", "-n", "-U", "root"],
            check=False, capture_output=True, text=True, env=ROOT_ENV, start_new_session=True,
            timeout=30)
        try:
            return int(result.stdout.strip())
        except ValueError:
            raise LabError(f"could not start Asterisk: {result.stderr.strip()}") from None

    def _wait_booted(self, pid: int, started: float) -> None:
        deadline = started + BOOT_TIMEOUT
        console = self.log_paths()["asterisk_console"]
        while True:
            if not process_alive(pid):
                raise LabError(f"Asterisk exited while starting; see {console}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"Asterisk did not finish booting within {BOOT_TIMEOUT:.0f} s; "
                               f"see {self.log_paths()['asterisk']}")
            with contextlib.suppress(LabError):  # LabError here = the wait itself timed out
                if "fully booted" in self._rx("core waitfullybooted", timeout=left).stdout:
                    return
            time.sleep(0.1)

    def _stop_asterisk(self) -> None:
        pid = self._asterisk_pid(clear=True)
        if pid is None:
            return
        self._progress("lab: stopping Asterisk")
        with contextlib.suppress(LabError):
            self._rx("core stop now", timeout=STOP_TIMEOUT)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if _wait_gone(pid, STOP_TIMEOUT):
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        _wait_gone(pid, STOP_TIMEOUT)
        with contextlib.suppress(OSError):
            self._asterisk_pid_file.unlink()

    # -- locking --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One `up`/`down` at a time per lab home (parallel test workers all call `up`)."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.state_dir / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def render_manager_users(secret: str) -> str:
    return ("; written by `hotline lab`: the daemon's AMI user (secret in the lab's secrets.json)\n"
            f"[{AMI_USER}]\nsecret = {secret}\n"
            "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
            "read = all\nwrite = all\n")


def render_ari_users(password: str) -> str:
    return ("; written by `hotline lab`: the daemon's ARI user (password in the lab's "
            "secrets.json)\n"
            f"[{ARI_USER}]\ntype = user\nread_only = no\n"
            f"password = {password}\npassword_format = plain\n")


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (it uses chroot and mount); run it as root")
