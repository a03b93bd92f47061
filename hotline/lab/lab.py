"""The lab as one thing: `up` builds the root once and starts PostgreSQL, then Asterisk, with the
project's reference config and generated secrets; `down` stops what the lab started; `status`
and `env` say where it listens. Everything it starts is recorded (pid files, the /proc mount) so
that it never touches a process or mount that is not its own."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg

from hotline.errors import LabError
from hotline.lab.asterisk import LabAsterisk
from hotline.lab.asterisk_conf import AMI_USER, ARI_USER, sync_config
from hotline.lab.credentials import load_secrets
from hotline.lab.host import check_ports_free
from hotline.lab.instances import ensure_netns, enter_netns, instance_from_env, lab_home, netns_name
from hotline.lab.kamailio import DB_ROLE, KAMAILIO_PORTS, WS_PORT, LabKamailio
from hotline.lab.nodes import node_address, node_names, write_node_config
from hotline.lab.ports import AMI_PORT, ASTERISK_PORTS, HOST, HTTP_PORT, PG_PORT, PG_PORTS, PORTS
from hotline.lab.postgres import DB_NAME, LabPostgres, dsn
from hotline.lab.root import DebianRoot, write_hosts
from hotline.lab.shell import Progress, print_to_stderr, require_root
from hotline.store.migrations import migrate

ARI_APP = "hotline"


@dataclass(frozen=True)
class LabStatus:
    built: bool
    asterisk_pid: int | None
    postgres_pid: int | None
    ports: dict[str, int]
    nodes: dict[str, int | None] = field(default_factory=dict)  # node -> its Asterisk's pid
    kamailio_pid: int | None = None

    def running(self) -> bool:
        if self.nodes:
            return (None not in self.nodes.values() and self.kamailio_pid is not None
                    and self.postgres_pid is not None)
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
        if self.nodes:
            return "\n".join([*self._describe_nodes(), f"PostgreSQL: {postgres}"])
        return f"Asterisk:   {asterisk}\nPostgreSQL: {postgres}"

    def _describe_nodes(self) -> list[str]:
        lines = [f"Node {name}:     " + (f"running, pid {pid}: {node_address(name)} (AMI "
                                        f"{self.ports['ami']}, HTTP/ARI {self.ports['http']}, "
                                        f"SIP {self.ports['sip']})" if pid else "stopped")
                 for name, pid in self.nodes.items()]
        kamailio = (f"running, pid {self.kamailio_pid}: SIP udp+tcp {HOST}:{self.ports['sip']}, "
                    f"WebSocket SIP ws://{HOST}:{WS_PORT}" if self.kamailio_pid else "stopped")
        return [*lines, f"Kamailio:   {kamailio}"]


class Lab:
    """A real Asterisk + PostgreSQL for trying hotline, for the demo and for the tests."""

    def __init__(self, project_dir: Path, home: Path | None = None,
                 progress: Progress = print_to_stderr, instance: int | None = None) -> None:
        """Lab `instance` (default $HOTLINE_LAB_INSTANCE, else 1; see hotline.lab.instances), in
        `home` (default: that instance's home)."""
        self.project_dir = Path(project_dir).expanduser().resolve()
        self.instance = instance_from_env() if instance is None else instance
        self.netns = netns_name(self.instance)
        # Resolved, because /proc/PID/root (how we recognise our processes) is canonical.
        self.home = Path(home if home is not None else lab_home(self.instance)).expanduser().resolve()
        self._progress = progress
        self.debian_root = DebianRoot(self.home, progress)
        self.root = self.debian_root.path
        self.state_dir = self.debian_root.state_dir
        self.postgres = LabPostgres(self.root, progress)
        self.asterisk = LabAsterisk(self.root, self.state_dir, progress)
        self.kamailio = LabKamailio(self.project_dir, self.state_dir, progress)

    def node_count(self) -> int:
        """How many nodes the lab runs (0: its one Asterisk), as the last `up` chose."""
        try:
            return int((self.state_dir / "nodes").read_text())
        except (OSError, ValueError):
            return 0

    def nodes(self) -> dict[str, LabAsterisk]:
        """The lab's Asterisk nodes by name (empty: the lab runs its one Asterisk)."""
        count = self.node_count()
        names = node_names(count) if count else []
        return {n: LabAsterisk(self.root, self.state_dir, self._progress, node=n) for n in names}

    @property
    def conf_dir(self) -> Path:
        return self.asterisk.conf_dir

    def up(self, nodes: int | None = None) -> LabStatus:
        """Build if needed, then start PostgreSQL and Asterisk; reuses whatever already runs.
        `nodes` N >= 1: N Asterisk nodes and Kamailio instead of the one Asterisk (0: back to
        the one Asterisk; None: as the last `up` chose)."""
        require_root()
        if nodes:
            node_names(nodes)  # LabError before anything starts
        if self.netns is not None:
            self._ensure_root_copied()  # before entering: building lab 1 needs the network
            ensure_netns(self.netns, self.instance)
            enter_netns(self.netns)
        with self._locked():
            if nodes is not None and nodes != self.node_count():
                self._switch_to(nodes)
            self._check_ports_of_stopped_daemons()  # fail before building or starting anything
            self.debian_root.ensure_built()
            self.debian_root.ensure_proc_mounted()
            write_hosts(self.root)
            secrets = load_secrets(self.state_dir)
            changed = sync_config(self.project_dir, self.root, self.conf_dir, secrets)
            self.postgres.ensure(secrets.db_password)
            if self.node_count():
                self._nodes_up(secrets.db_password)
            else:
                self.asterisk.ensure(changed)
        return self.status()

    def _switch_to(self, count: int) -> None:
        """Stop what the other shape runs (the one Asterisk, or the nodes and Kamailio)."""
        self.kamailio.stop()
        for node in self.nodes().values():
            node.stop()
        self.asterisk.stop()
        (self.state_dir / "nodes").write_text(f"{count}\n")

    def _nodes_up(self, db_password: str) -> None:
        """Each node from the lab's config, Kamailio's schema (the migrations) and role in the
        lab's database, then Kamailio."""
        for name, node in self.nodes().items():
            changed = write_node_config(self.conf_dir, node.conf_dir, name)
            for sub in ("var/run", "var/spool", "var/log", "var/lib"):
                (self.root / f"{sub}/asterisk-{name}").mkdir(parents=True, exist_ok=True)
            node.ensure(changed)
        asyncio.run(_migrate(dsn(DB_NAME, db_password)))
        role_sql = (self.project_dir / "deploy" / "kamailio" / "role.sql").read_text()
        self.postgres.ensure_kamailio_role(role_sql, db_password)
        # the lab's Kamailio role shares the lab's database password (role.sql sets it)
        self.kamailio.ensure(f"postgres://{DB_ROLE}:{db_password}@{HOST}:{PG_PORT}/{DB_NAME}")

    def _ensure_root_copied(self) -> None:
        """Lab N's root is a copy of lab 1's (built first when it is not), without lab 1's
        database cluster: lab N creates its own."""
        if self.debian_root.built:
            return
        first = Lab(self.project_dir, progress=self._progress, instance=1)
        with first._locked(), self._locked():  # lab 1's root is never copied half-built
            first.debian_root.ensure_built()
            self.debian_root.copy_from(first.debian_root, leave_out=(self.postgres.data_dir,))

    def _check_ports_of_stopped_daemons(self) -> None:
        if self.postgres.pid() is None:
            check_ports_free(PG_PORTS)
        if self.node_count():
            if self.kamailio.pid() is None:
                check_ports_free(KAMAILIO_PORTS)
        elif self.asterisk.pid() is None:
            check_ports_free(ASTERISK_PORTS)

    def down(self) -> None:
        """Stop Asterisk and PostgreSQL (only the lab's own) and unmount the root's /proc."""
        require_root()
        with self._locked():
            self.kamailio.stop()
            for node in self.nodes().values():
                node.stop()
            self.asterisk.stop()
            self.postgres.stop()
            self.debian_root.unmount_all(self.root)

    def describe(self) -> str:
        """Which lab this is: its number, home and network namespace."""
        where = f"network namespace {self.netns}" if self.netns else "the machine's network"
        return f"lab {self.instance} ({self.home}, {where})"

    def status(self) -> LabStatus:
        try:
            return LabStatus(built=self.debian_root.built, asterisk_pid=self.asterisk.pid(),
                             postgres_pid=self.postgres.pid(), ports=dict(PORTS),
                             nodes={n: a.pid() for n, a in self.nodes().items()},
                             kamailio_pid=self.kamailio.pid())
        except PermissionError as exc:
            raise LabError(f"cannot look into the lab at {self.home}: {exc.strerror}; "
                           "run as root") from exc

    def env(self, node: str | None = None) -> dict[str, str]:
        """The settings for the lab. With nodes: node a's (or `node`'s) ARI, AMI and config
        (every node has the same ARI and AMI users, so the URLs' credentials log in to each;
        `hotline apply` with `node`'s settings renders and reloads that node), and Kamailio as
        `sip_proxy`."""
        s = load_secrets(self.state_dir)
        nodes = self.nodes()
        if node is not None and node not in nodes:
            raise LabError(f"the lab has no node {node!r} (nodes: {', '.join(nodes) or 'none'})")
        first = (node, nodes[node]) if node else next(iter(nodes.items()), None)
        host = node_address(first[0]) if first else HOST
        asterisk = first[1] if first else self.asterisk
        env = {
            "HOTLINE_DSN": dsn(DB_NAME, s.db_password),
            "HOTLINE_AMI_URL": f"ami://{AMI_USER}:{quote(s.ami_secret, safe='')}"
                               f"@{host}:{AMI_PORT}",
            "HOTLINE_ARI_URL": f"http://{ARI_USER}:{quote(s.ari_password, safe='')}"
                               f"@{host}:{HTTP_PORT}",
            "HOTLINE_ARI_APP": ARI_APP,
            "HOTLINE_ASTERISK_CONF_DIR": str(asterisk.conf_dir),
            "HOTLINE_RECORDING_DIR": str(asterisk.recording_dir),
            "HOTLINE_ASTERISK_ROOT": str(self.asterisk.root),
        }
        if first:
            env |= {"HOTLINE_NODE": first[0], "HOTLINE_SIP_PROXY": HOST}
        return env

    def admin_dsn(self) -> str:
        """The `hotline` role (it has CREATEDB) on the `postgres` database, so that creating or
        dropping test databases never holds a session on the `hotline` database."""
        return dsn("postgres", load_secrets(self.state_dir).db_password)

    @contextlib.contextmanager
    def database_cut_off(self, database: str, *applications: str) -> Iterator[None]:
        """One database of the lab's PostgreSQL away, as a failover makes it, without stopping the
        server others share: no new connection, and the sessions of `applications` (LIKE patterns
        of their application_name) ended; back as it was on leaving."""
        with psycopg.connect(self.admin_dsn(), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" CONNECTION LIMIT 0')
            try:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                              " WHERE datname = %s AND application_name LIKE ANY(%s)",
                              (database, list(applications)))
                yield
            finally:
                admin.execute(f'ALTER DATABASE "{database}" CONNECTION LIMIT -1')

    def restart_asterisk(self) -> None:
        require_root()
        with self._locked():
            self.asterisk.stop()
            self.debian_root.ensure_proc_mounted()
            self.asterisk.start()

    def asterisk_cli(self, command: str) -> str:
        """Output of `asterisk -rx COMMAND` in the lab's root."""
        require_root()
        result = self.asterisk.rx(command, timeout=30)
        if result.returncode != 0 or "Unable to connect to remote asterisk" in result.stdout:
            raise LabError("Asterisk is not running in the lab; run `hotline lab up`")
        return result.stdout

    def log_paths(self) -> dict[str, Path]:
        """'asterisk' is Asterisk's own log (messages); 'asterisk_console' its stdout/stderr,
        which alone holds what went wrong when it fails before its logger starts."""
        return {"asterisk": self.asterisk.log, "asterisk_console": self.asterisk.console_log,
                "postgres": self.postgres.log, "kamailio": self.kamailio.console_log,
                **{f"node-{name}": node.log for name, node in self.nodes().items()}}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One `up`/`down` at a time per lab home (parallel test workers all call `up`)."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.state_dir / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


async def _migrate(url: str) -> None:
    """The lab's database at the newest schema: Kamailio reads its views and tables."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await migrate(conn)
