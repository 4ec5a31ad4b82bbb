"""A fresh database dump before the switch: real MariaDB, real sshd, the real pyinfra CLI.

The session's mariadbd (conftest `mariadb`) holds `craft`, a big InnoDB table; tests that only
need a few rows make their own small database. The least-privilege user has no PROCESS.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.client import host_entry, run_pyinfra, run_pyinfra_json, write_client
from support.mariadb import DB_PASSWORD, DB_PASSWORD_MARK, DB_PRIVILEGES, DB_USER, MariaDB
from support.proc import DEPLOY_USER, REPO_ROOT, as_deploy, free_port, run
from support.site import SiteRepo
from support.snapshot import tree_snapshot
from support.sshd import SshHost

pytestmark = pytest.mark.e2e

PW_ENV = "ATOMIC_TEST_DB_PASSWORD"


@dataclass
class DumpClient:
    """One host (web1) with a database section, its inventory, root and site repo."""

    inventory: Path
    root: Path
    site: SiteRepo
    db: str
    env: dict[str, str]

    def deploy(self, *args: str, check: bool = True, env: dict[str, str] | None = None):
        return run_pyinfra(self.inventory, "-y", *args, check=check, env=env or self.env)

    def deploy_json(self, *args: str, check: bool = True) -> dict:
        return run_pyinfra_json(self.inventory, "-y", *args, check=check, env=self.env)[1]

    def dry(self):
        return run_pyinfra(self.inventory, "--dry", check=True, env=self.env)

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    def dumps(self) -> list[Path]:
        """Complete dumps, oldest first (by name: the UTC time is in it)."""
        return sorted(self.backups.glob(f"{self.db}-*.sql.gz"))

    def leftovers(self) -> list[str]:
        found = [p.name for p in self.backups.iterdir() if p.name.startswith(".tmp-")]
        meta = self.root / ".atomic-deploy"
        return found + [p.name for p in meta.glob("*.cnf")] if meta.is_dir() else found


@pytest.fixture
def dump_client(ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, tmp_path: Path):
    def make(
        db: str, *, database: dict | None = None, credentials: dict | None = None, **options
    ) -> DumpClient:
        root = deploy_root("web1")
        if credentials is None:
            credentials = {"user": DB_USER, "password_env": PW_ENV}
        section = {"name": db, **credentials, **(database or {})}
        inventory = write_client(
            tmp_path / "inv",
            source=site_repo.path,
            hosts=[host_entry(ssh_hosts[0], root)],
            ssh=ssh_hosts[0],
            database=section,
            **options,
        )
        return DumpClient(inventory, root, site_repo, db, {PW_ENV: DB_PASSWORD})

    return make


def _tcp(mariadb: MariaDB) -> dict:
    return {"host": "127.0.0.1", "port": mariadb.port}


def _small_database(mariadb: MariaDB, name: str, privileges: str = DB_PRIVILEGES) -> str:
    mariadb.create_database(name, privileges)
    mariadb.sql(
        "CREATE TABLE entries (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(64)) ENGINE=InnoDB;"
        "INSERT INTO entries (title) SELECT CONCAT('entry ', seq) FROM seq_1_to_300;"
        "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(64)) ENGINE=InnoDB;"
        "INSERT INTO users SELECT seq, CONCAT('u', seq, '@example.com') FROM seq_1_to_7;"
        "CREATE VIEW recent AS SELECT id, title FROM entries WHERE id > 290",
        name,
    )
    return name


def _changed(results: dict) -> set[str]:
    return {op["name"] for op in results["results"]["operations"] if op["success"]}


def _log_events(root: Path) -> list[list[str]]:
    return [line.split("\t") for line in (root / ".atomic-deploy" / "log").read_text().splitlines()]


def test_dump_is_made_before_the_switch_private_and_restorable(dump_client, mariadb):
    db = _small_database(mariadb, "t_restore")
    c = dump_client(db, database=_tcp(mariadb))
    sha = c.site.sha_short()

    dry = c.dry()
    assert f"[web1] dump {db}: before switching web1 to releases/{sha} -> new dump" in dry.stderr
    assert not c.root.exists()  # a dry run leaves no trace, not even a temp file

    proc = c.deploy()
    assert os.readlink(c.root / "current") == f"releases/{sha}"
    [dump] = c.dumps()
    assert dump.name.startswith(f"{db}-") and dump.name.endswith(f"-{sha}.sql.gz")
    assert f"dump {db}: wrote backups/{dump.name} (" in proc.stderr
    assert c.leftovers() == []
    for path, mode in ((c.backups, 0o700), (dump, 0o600)):
        assert path.stat().st_mode & 0o777 == mode, path
        assert path.owner() == DEPLOY_USER
    assert gzip.decompress(dump.read_bytes()).rstrip().splitlines()[-1].startswith(
        b"-- Dump completed"
    )
    events = [e[1] for e in _log_events(c.root)]
    assert events.index("dump") < events.index("switch")  # dumped before the switch

    # docs/database.md's restore-by-hand recipe, into a fresh database
    copy = mariadb.create_database("t_restore_copy")
    run(["sh", "-c", f"gunzip -c {dump} | {' '.join(mariadb.client_argv(copy))}"])
    assert mariadb.tables(copy) == mariadb.tables(db) == {"entries": 300, "users": 7}
    assert mariadb.sql("SELECT COUNT(*) FROM recent", copy).strip() == "10"


def test_fresh_dump_is_kept_then_renewed_and_pruned_to_keep(dump_client, mariadb):
    db = _small_database(mariadb, "t_fresh")
    # credentials from an option file on the host, over the server's unix socket
    cnf = as_deploy("mktemp").stdout.strip()
    password = DB_PASSWORD.replace("\\", "\\\\").replace('"', '\\"')
    Path(cnf).write_text(f'[client]\nuser={DB_USER}\npassword="{password}"\n')
    c = dump_client(
        db,
        credentials={"defaults_file": cnf},
        database={"socket": str(mariadb.socket), "keep": 2, "max_age": "1h"},  # the old rule
    )
    try:
        c.deploy()
        [first] = c.dumps()
        before = tree_snapshot(c.backups)

        results = c.deploy_json()  # inside the window: nothing to do
        assert f"fresh dump of {db}" not in _changed(results)
        assert tree_snapshot(c.backups) == before
        assert [e[1] for e in _log_events(c.root)].count("dump") == 1

        # still fresh, but a leftover of an interrupted dump and a loosened folder are repaired
        stale = c.backups / f".tmp-{db}-20200101T000000Z-abcdef1.sql.gz"
        as_deploy(f"echo partial > {stale} && chmod 755 {c.backups}")
        results = c.deploy_json()
        assert f"fresh dump of {db}" in _changed(results)
        assert not stale.exists() and c.backups.stat().st_mode & 0o777 == 0o700
        assert c.dumps() == [first]

        # age the dump past the window, add an older one, a leftover and a file of the user's
        as_deploy(f"touch -d '26 hours ago' {first}")
        older = c.backups / f"{db}-20200101T000000Z-{c.site.sha_short()}.sql.gz"
        as_deploy(f"cp -p {first} {older} && touch -d '3 days ago' {older}")
        leftover = c.backups / f".tmp-{db}-20200101T000000Z-abcdef1.sql.gz"
        as_deploy(f"echo partial > {leftover} && echo mine > {c.backups}/notes.txt")
        before = tree_snapshot(c.root)
        dry = c.dry()
        assert f"[web1] dump {db}: newest is 26 h old (fresh is < 1 h) -> new dump" in dry.stderr
        assert f"remove {older.name} (keep 2)" in dry.stderr
        assert tree_snapshot(c.root) == before  # a dry run changes nothing at all

        results = c.deploy_json()
        assert f"fresh dump of {db}" in _changed(results)
        dumps = c.dumps()
        assert len(dumps) == 2 and dumps[0] == first and not older.exists()
        assert not leftover.exists() and (c.backups / "notes.txt").read_text() == "mine\n"
    finally:
        os.unlink(cnf)


def test_a_cut_short_newest_dump_is_not_fresh_and_is_replaced(dump_client, mariadb):
    """Drift: the newest dump was truncated after it was made (disk trouble, a careless cp).

    With max_age set (the rule that lets a rerun without a switch dump)."""
    db = _small_database(mariadb, "t_damaged")
    c = dump_client(db, database={**_tcp(mariadb), "keep": 3, "max_age": "1h"})
    c.deploy()
    [first] = c.dumps()
    as_deploy(f"truncate -s 40 {first}")
    dry = c.dry()
    assert f"{first.name}: damaged or cut short since it was made, not counted) -> new dump" in (
        dry.stderr
    )
    results = c.deploy_json()
    assert f"fresh dump of {db}" in _changed(results)
    [replacement] = c.dumps()  # the damaged one goes once a verified newer one exists
    assert replacement != first
    run(["gzip", "-t", str(replacement)])
    assert f"fresh dump of {db}" not in _changed(c.deploy_json())  # converged


def test_wrong_password_or_stopped_server_fails_before_the_switch(
    dump_client, mariadb, ssh_hosts
):
    db = _small_database(mariadb, "t_fail")
    c = dump_client(db, database=_tcp(mariadb))
    old = c.site.sha_short()
    c.deploy()  # release 1 live, with one dump
    [dump] = c.dumps()
    new = c.site.commit({"VERSION": "2\n"})[:12]  # another release: a dump before its switch

    connections = ssh_hosts[0].connections()
    proc = c.deploy(check=False, env={PW_ENV: ""})
    assert proc.returncode == 2  # refused while loading the inventory: no host contacted
    assert f"database.password_env: the environment variable {PW_ENV} is empty" in proc.stderr
    assert ssh_hosts[0].connections() == connections

    proc = c.deploy(check=False, env={PW_ENV: "wrong"})
    assert proc.returncode != 0
    assert "Access denied for user 'craft'@'127.0.0.1'" in proc.stderr
    assert f"atomic-deploy: dump {db}: cannot connect to the database" in proc.stderr
    assert os.readlink(c.root / "current") == f"releases/{old}"
    assert c.dumps() == [dump] and c.leftovers() == []

    nobody = free_port(mariadb.port + 100)
    yml = c.inventory.with_suffix(".yml")
    yml.write_text(yml.read_text().replace(f"port: {mariadb.port}", f"port: {nobody}"))
    proc = c.deploy(check=False)
    assert proc.returncode != 0
    assert "Can't connect to server on '127.0.0.1'" in proc.stderr
    assert os.readlink(c.root / "current") == f"releases/{old}"
    assert c.dumps() == [dump] and c.leftovers() == []
    assert (c.root / "releases" / new).is_dir()  # populated, never switched to


def test_non_innodb_table_warns_and_missing_event_privilege_is_retried(dump_client, mariadb):
    db = _small_database(mariadb, "t_engines", "SELECT, SHOW VIEW, TRIGGER, LOCK TABLES")
    mariadb.sql("CREATE TABLE legacy_log (line TEXT) ENGINE=MyISAM", db)
    c = dump_client(db, database=_tcp(mariadb))
    proc = c.deploy()
    assert "warning: --single-transaction is consistent for InnoDB only: legacy_log (MyISAM)" in (
        proc.stderr
    )
    assert "the user may not dump events: dumping again without --events" in proc.stderr
    assert len(c.dumps()) == 1


class _Sampler(threading.Thread):
    """Samples `ps -eo args` (full width) until stopped; records when a dump process ran."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.lines: set[str] = set()
        self.dump_seen: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            out = subprocess.run(
                ["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=False
            ).stdout
            now = time.time()
            for line in out.splitlines():
                self.lines.add(line)
                dumper = "mysqldump" in line or "mariadb-dump" in line
                if dumper and "--single-transaction" in line:
                    self.dump_seen.append(now)
            time.sleep(0.02)


def test_writers_keep_going_during_a_dump_and_the_password_never_shows(dump_client, mariadb):
    mariadb.sql(
        "DROP TABLE IF EXISTS writes;"
        "CREATE TABLE writes (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6)) ENGINE=InnoDB",
        "craft",
    )
    c = dump_client("craft", database=_tcp(mariadb))
    writer = subprocess.Popen(
        mariadb.client_argv("craft"), stdin=subprocess.PIPE, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    stop_writing = threading.Event()

    def write() -> None:
        while not stop_writing.is_set():
            writer.stdin.write("INSERT INTO entries (title, body) VALUES ('new', 'during dump');")
            writer.stdin.write("INSERT INTO writes (at) VALUES (NOW(6));\n")
            writer.stdin.flush()
            time.sleep(0.01)

    sampler, writing = _Sampler(), threading.Thread(target=write, daemon=True)
    sampler.start()
    writing.start()
    try:
        proc = c.deploy("-vvv")
    finally:
        stop_writing.set()
        writing.join(10)
        sampler.stop.set()
        sampler.join(10)
        writer.stdin.close()
        writer.wait(30)
    assert writer.returncode == 0, writer.stderr.read()

    # the password: not in the CLI output at -vvv, not in any process's argv, not on the host
    assert DB_PASSWORD_MARK not in proc.stdout + proc.stderr
    assert sampler.dump_seen, "the sampler never saw the dump running"
    assert not [line for line in sampler.lines if DB_PASSWORD_MARK in line]
    dump_lines = [line for line in sampler.lines if "--single-transaction" in line]
    assert all("--defaults-file=" in line for line in dump_lines), dump_lines
    assert c.leftovers() == []
    grep = subprocess.run(["grep", "-rl", DB_PASSWORD_MARK, str(c.root)], capture_output=True)
    assert grep.returncode == 1, grep.stdout
    argv = [sys.executable, "-m", "pyinfra", str(c.inventory), "debug-inventory"]
    inventory = run(argv, cwd=REPO_ROOT, env={**os.environ, **c.env})
    assert "password_env" in inventory.stdout + inventory.stderr  # host data is shown...
    assert DB_PASSWORD_MARK not in inventory.stdout + inventory.stderr  # ...but no password

    # the writer was never blocked: its inserts kept coming all through the dump
    start, end = min(sampler.dump_seen), max(sampler.dump_seen)
    assert end - start > 1.5, f"the dump took {end - start:.1f}s; make `craft` bigger"
    stamps = [
        float(x)
        for x in mariadb.sql(
            f"SELECT UNIX_TIMESTAMP(at) FROM writes WHERE at BETWEEN FROM_UNIXTIME({start})"
            f" AND FROM_UNIXTIME({end}) ORDER BY id",
            "craft",
        ).split()
    ]
    gaps = [b - a for a, b in zip([start, *stamps], [*stamps, end], strict=True)]
    assert len(stamps) > (end - start) / 0.05, (len(stamps), end - start)
    # a table lock would stall the writer for about the whole dump; allow for a busy machine
    assert max(gaps) < min(2.0, (end - start) / 3), (
        f"inserts stalled {max(gaps):.2f}s during a {end - start:.1f}s dump"
    )
    [dump] = c.dumps()
    assert dump.stat().st_size > 1_000_000
