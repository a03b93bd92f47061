"""The lab's PostgreSQL: a cluster of its own in the root, run as the root's postgres user on
127.0.0.1:55432, with the `hotline` role and database."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

from hotline.errors import LabError
from hotline.lab.host import STOP_TIMEOUT, check_ports_free, live_pid, wait_gone
from hotline.lab.ports import HOST, PG_PORT, PG_PORTS
from hotline.lab.shell import ROOT_ENV, Progress, read_text, run

DB_NAME = "hotline"
DB_USER = "hotline"
PG_DATA = "/var/lib/postgresql/hotline-lab"  # paths inside the root
PG_LOG = "/var/log/postgresql/hotline-lab.log"


def dsn(database: str, password: str) -> str:
    return f"postgresql://{DB_USER}:{quote(password, safe='')}@{HOST}:{PG_PORT}/{database}"


class LabPostgres:
    def __init__(self, root: Path, progress: Progress) -> None:
        self.root = root
        self._progress = progress

    @property
    def log(self) -> Path:
        return self.root / PG_LOG.lstrip("/")

    @property
    def data_dir(self) -> Path:
        return self.root / PG_DATA.lstrip("/")

    def pid(self, clear: bool = False) -> int | None:
        return live_pid(self.root / PG_DATA.lstrip("/") / "postmaster.pid", self.root, "postgres",
                        clear=clear)

    def ensure(self, password: str) -> None:
        """Running, with the `hotline` role (its password: `password`) and database."""
        # A postmaster.pid whose process is gone (or is now another program) is stale: cleared.
        if self.pid(clear=True) is None:
            # So is the socket's lock file. PostgreSQL would refuse to start while its pid is a
            # zombie not yet reaped (seen after a SIGKILL), as kill(pid, 0) still succeeds.
            live_pid(self.root / f"tmp/.s.PGSQL.{PG_PORT}.lock", self.root, "postgres", clear=True)
            check_ports_free(PG_PORTS)
            self._ensure_cluster()
            self._start()
        self._ensure_role_and_db(password)

    def stop(self) -> None:
        pid = self.pid(clear=True)
        if pid is None:
            return
        self._progress("lab: stopping PostgreSQL")
        self._as_postgres(f"{self._bindir()}/pg_ctl", "-D", PG_DATA, "-m", "fast", "-w",
                          "-t", "30", "stop", check=False, timeout=60)
        if not wait_gone(pid, STOP_TIMEOUT):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # what `-m immediate` amounts to anyway: a crash
            wait_gone(pid, STOP_TIMEOUT)

    def _bindir(self) -> str:
        found = [p.parent for p in self.root.glob("usr/lib/postgresql/*/bin/pg_ctl")]
        found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
        if not found:
            raise LabError(f"no PostgreSQL in {self.root}; delete {self.root} to rebuild the lab")
        return "/" + str(found[-1].relative_to(self.root))

    def _ids(self) -> str:
        """uid:gid of the root's postgres user (numeric: the host may have no such user)."""
        for line in read_text(self.root / "etc/passwd").splitlines():
            fields = line.split(":")
            if fields[0] == "postgres" and len(fields) > 3:
                return f"{fields[2]}:{fields[3]}"
        raise LabError(f"no postgres user in {self.root}; delete {self.root} to rebuild the lab")

    def _as_postgres(self, *argv: str, check: bool = True, input: str | None = None,
                     timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run(["chroot", f"--userspec={self._ids()}", str(self.root), *argv],
                   check=check, input=input, timeout=timeout,
                   env={**ROOT_ENV, "HOME": "/var/lib/postgresql"})

    def _ensure_cluster(self) -> None:
        data = self.root / PG_DATA.lstrip("/")
        if (data / "PG_VERSION").is_file():
            return
        if data.exists():
            shutil.rmtree(data)  # left by an interrupted initdb
        self._progress("lab: creating the PostgreSQL cluster")
        self._as_postgres(f"{self._bindir()}/initdb", "-D", PG_DATA, "-U", "postgres",
                          "--auth-local=peer", "--auth-host=scram-sha-256",
                          "--encoding=UTF8", "--locale=C.UTF-8")

    def _start(self) -> None:
        self._progress(f"lab: starting PostgreSQL on {HOST}:{PG_PORT}")
        options = f"-p {PG_PORT} -k /tmp -c listen_addresses={HOST}"
        result = self._as_postgres(f"{self._bindir()}/pg_ctl", "-D", PG_DATA, "-l", PG_LOG,
                                   "-w", "-t", "60", "-o", options, "start", check=False)
        if result.returncode != 0 or self.pid() is None:
            raise LabError(f"PostgreSQL did not start; see {self.log}")

    def _psql(self, sql: str, database: str = "postgres") -> str:
        result = self._as_postgres(f"{self._bindir()}/psql", "-X", "-q", "-tA",
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

    def ensure_kamailio_role(self, role_sql: str, password: str) -> None:
        """Kamailio's role in the lab's database, by the project's deploy/kamailio/role.sql
        (run after the migrations: it grants on the `kamailio` schema), the password given."""
        self._psql(role_sql.replace(":password", f"'{password}'"), database=DB_NAME)
