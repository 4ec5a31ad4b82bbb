"""A throwaway MariaDB of the session: its own datadir, socket and port."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .proc import free_port, run, stop_process, tail

MARIADBD = "/usr/sbin/mariadbd"


FIRST_DB_PORT = 23306


DB_USER = "craft"


# Quotes, a backslash, '#', '$' and a space: all must survive the option file. The distinctive
# DB_PASSWORD_MARK is what the leak tests look for in output and `ps`.
DB_PASSWORD_MARK = "adPw7q9Zk"


DB_PASSWORD = f"{DB_PASSWORD_MARK}\"x\\ y#z$'w"


DB_PRIVILEGES = "SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT"  # no PROCESS, no global privs


@dataclass
class MariaDB:
    """A throwaway mariadbd (own datadir, socket, TCP port on 127.0.0.1) for the session.

    Root talks to it through the socket as the OS root (unix_socket auth). `DB_USER`, with
    `DB_PASSWORD`, may dump the databases granted by `create_database`.
    """

    port: int
    socket: Path
    workdir: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def client_argv(self, database: str | None = None) -> list[str]:
        argv = ["mariadb", "--no-defaults", f"--socket={self.socket}", "--user=root", "--batch"]
        return [*argv, *([database] if database else [])]

    def sql(self, statements: str, database: str | None = None, timeout: float = 120) -> str:
        """Run SQL as root; returns the tab-separated output (no column names)."""
        argv = [*self.client_argv(database), "--skip-column-names", "-e", statements]
        return run(argv, timeout=timeout).stdout

    def create_database(self, name: str, privileges: str = DB_PRIVILEGES) -> str:
        """A fresh, empty database `name` that DB_USER may dump with `privileges`."""
        self.sql(
            f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`;"
            f"GRANT {privileges} ON `{name}`.* TO '{DB_USER}'@'127.0.0.1', '{DB_USER}'@'localhost'"
        )
        return name

    def tables(self, database: str) -> dict[str, int]:
        """Table name -> exact row count."""
        names = self.sql(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            " AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            database,
        ).split()
        return {n: int(self.sql(f"SELECT COUNT(*) FROM `{n}`", database)) for n in names}

    def stop(self, timeout: float = 30) -> None:
        stop_process(self.proc, timeout)


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def start_mariadb(workdir: Path, timeout: float = 60) -> MariaDB:
    """mariadb-install-db + `mariadbd --user=mysql` on its own datadir, socket and port.

    Waits (bounded) until root can run a query, then creates DB_USER@127.0.0.1/localhost.
    """
    datadir, rundir = workdir / "data", workdir / "run"
    for d in (workdir, datadir, rundir):
        d.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    for d in (datadir, rundir):
        shutil.chown(d, "mysql", "mysql")
    rundir.chmod(0o755)  # deploy reaches the socket
    if not (datadir / "mysql").is_dir():
        run(
            ["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={datadir}",
             "--auth-root-authentication-method=socket", "--skip-test-db"],
            timeout=timeout,
        )  # fmt: skip
    port = free_port(FIRST_DB_PORT)
    socket_path, log = rundir / "mysqld.sock", rundir / "error.log"
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        [MARIADBD, "--no-defaults", "--user=mysql", f"--datadir={datadir}",
         f"--socket={socket_path}", f"--port={port}", "--bind-address=127.0.0.1",
         f"--pid-file={rundir / 'mysqld.pid'}", f"--log-error={log}", "--skip-name-resolve",
         "--skip-log-bin", "--innodb-buffer-pool-size=256M",
         "--innodb-flush-log-at-trx-commit=2"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = MariaDB(port=port, socket=socket_path, workdir=workdir, proc=proc)
    deadline = time.monotonic() + timeout
    while True:
        probe = subprocess.run(  # noqa: S603 - fixed argv
            [*server.client_argv(), "-e", "SELECT 1"], capture_output=True, timeout=10, check=False
        )
        if probe.returncode == 0:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            text = log.read_text(errors="replace") if log.exists() else ""
            raise AssertionError(f"mariadbd did not come up on port {port}:\n{tail(text)}")
        time.sleep(0.1)
    password = _sql_string(DB_PASSWORD)
    server.sql(
        f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY {password};"
        f"CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY {password}"
    )
    return server
