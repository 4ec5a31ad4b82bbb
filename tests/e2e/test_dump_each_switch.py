"""A dump made by every run before it switches, and a verified copy off the server.

Real MariaDB (conftest `mariadb`), real sshd, the real pyinfra CLI. Each test makes its own
small database so row counts can be compared after a restore.
"""

from __future__ import annotations

import calendar
import gzip
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.client import host_entry, run_pyinfra, run_pyinfra_json, write_client
from support.mariadb import DB_PASSWORD, DB_USER, MariaDB
from support.proc import run
from support.site import SiteRepo
from support.sshd import SshHost

pytestmark = pytest.mark.e2e

PW_ENV = "ATOMIC_TEST_DB_PASSWORD"


@dataclass
class Client:
    inventory: Path
    root: Path
    site: SiteRepo
    db: str

    @property
    def env(self) -> dict[str, str]:
        return {PW_ENV: DB_PASSWORD}

    def deploy(self, *args: str, check: bool = True):
        return run_pyinfra(self.inventory, "-y", *args, check=check, env=self.env)

    def deploy_json(self) -> dict:
        return run_pyinfra_json(self.inventory, "-y", check=True, env=self.env)[1]

    def dry(self):
        return run_pyinfra(self.inventory, "--dry", check=True, env=self.env)

    def dumps(self) -> list[Path]:
        """Complete dumps on the host, oldest first (the UTC time is in the name)."""
        return sorted((self.root / "backups").glob(f"{self.db}-*.sql.gz"))

    def events(self) -> list[list[str]]:
        log = (self.root / ".atomic-deploy" / "log").read_text()
        return [line.split("\t") for line in log.splitlines()]


@pytest.fixture
def client(ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, tmp_path: Path, mariadb):
    def make(db: str, **database) -> Client:
        _small_database(mariadb, db)
        root = deploy_root("web1")
        section = {"name": db, "user": DB_USER, "password_env": PW_ENV,
                   "host": "127.0.0.1", "port": mariadb.port, **database}  # fmt: skip
        inventory = write_client(
            tmp_path / "inv",
            source=site_repo.path,
            hosts=[host_entry(ssh_hosts[0], root)],
            ssh=ssh_hosts[0],
            database=section,
        )
        return Client(inventory, root, site_repo, db)

    return make


def _small_database(mariadb: MariaDB, name: str) -> None:
    mariadb.create_database(name)
    mariadb.sql(
        "CREATE TABLE entries (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(64)) ENGINE=InnoDB;"
        "INSERT INTO entries (title) SELECT CONCAT('entry ', seq) FROM seq_1_to_250;"
        "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(64)) ENGINE=InnoDB;"
        "INSERT INTO users SELECT seq, CONCAT('u', seq, '@example.com') FROM seq_1_to_9",
        name,
    )


def _utc(stamp: str, fmt: str) -> int:
    return calendar.timegm(time.strptime(stamp, fmt))


def _dump_before_switch(c: Client, release: str, started: float) -> Path:
    """The dump this run made before switching to `release`, checked against the deploy log:
    between the previous switch and this one, for this release, written during this run."""
    events = c.events()
    switch = max(i for i, e in enumerate(events) if e[1] == "switch" and e[2] == release)
    previous = max([i for i, e in enumerate(events[:switch]) if e[1] == "switch"], default=-1)
    dumps = [e for e in events[previous + 1 : switch] if e[1] == "dump"]
    assert dumps, f"no dump between the previous switch and the switch to {release}: {events}"
    event = dumps[-1]
    assert event[2] == release
    path = c.root / event[4]
    assert path.is_file(), path
    # its name's UTC time: not before this run started, not after its switch
    stamp = _utc(path.name[len(c.db) + 1 :][:16], "%Y%m%dT%H%M%SZ")
    switched = _utc(events[switch][0], "%Y-%m-%dT%H:%M:%SZ")
    assert int(started) <= stamp <= switched, (started, stamp, switched)
    assert _utc(event[0], "%Y-%m-%dT%H:%M:%SZ") <= switched
    return path


def test_every_switch_has_its_own_dump_and_a_rerun_takes_none(client):
    c = client("t_each")
    first = c.site.sha_short()
    started = time.time()
    c.deploy()
    dump_a = _dump_before_switch(c, first, started)

    second = c.site.commit({"VERSION": "2\n"})[:12]
    dry = c.dry()  # seconds after the first dump: the old 1 h rule would have called it fresh
    assert f"[web1] dump {c.db}: before switching web1 to releases/{second} -> new dump" in (
        dry.stderr
    )
    started = time.time()
    c.deploy()
    assert time.time() - dump_a.stat().st_mtime < 60  # both deploys within a minute
    dump_b = _dump_before_switch(c, second, started)
    assert dump_b != dump_a and c.dumps() == [dump_a, dump_b]
    assert os.readlink(c.root / "current") == f"releases/{second}"

    # the same release again: nothing switches, nothing is dumped
    dry = c.dry()
    assert f"[web1] dump {c.db}: releases/{second} is already live on web1: no dump" in dry.stderr
    results = c.deploy_json()
    changed = {op["name"] for op in results["results"]["operations"] if op["success"]}
    assert f"fresh dump of {c.db}" not in changed
    assert c.dumps() == [dump_a, dump_b]
    assert [e[1] for e in c.events()].count("dump") == 2


def test_max_age_set_keeps_the_old_rule(client):
    c = client("t_window", max_age="1h")
    c.deploy()
    [only] = c.dumps()
    second = c.site.commit({"VERSION": "2\n"})[:12]
    dry = c.dry()
    assert f"[web1] dump {c.db}: fresh (" in dry.stderr  # younger than 1 h: it counts
    c.deploy()
    assert os.readlink(c.root / "current") == f"releases/{second}"
    assert c.dumps() == [only]  # no new dump before that switch
    assert [e[1] for e in c.events()].count("dump") == 1


def _restores(mariadb: MariaDB, dump: Path, original: str) -> None:
    """Load `dump` into a fresh database with the mariadb client; same tables, same rows."""
    copy = mariadb.create_database(f"{original}_copy")
    run(["sh", "-c", f"gunzip -c '{dump}' | {' '.join(mariadb.client_argv(copy))}"])
    assert mariadb.tables(copy) == mariadb.tables(original) == {"entries": 250, "users": 9}


def test_the_new_dump_is_downloaded_verified_private_and_kept_to_n(client, mariadb, tmp_path):
    c = client("t_download", download={"dir": "../local-backups", "keep": 2})
    local = (tmp_path / "local-backups").resolve()  # relative to the client file's folder

    dry = c.dry()
    assert f"[web1] dump {c.db}: download the new dump to {local}/" in dry.stderr
    assert not local.exists()  # a dry run creates nothing here either

    c.deploy()
    [dump] = c.dumps()
    copy = local / f"web1--{dump.name}"
    assert sorted(p.name for p in local.iterdir()) == [copy.name]  # no temp file left
    assert local.stat().st_mode & 0o777 == 0o700
    assert copy.stat().st_mode & 0o777 == 0o600
    assert copy.read_bytes() == dump.read_bytes()  # complete
    lines = gzip.decompress(copy.read_bytes()).rstrip().splitlines()
    assert lines[-1].startswith(b"-- Dump completed")
    _restores(mariadb, copy, c.db)

    # retention: the newest 2 copies of this host and database; nothing else is touched
    (local / "notes.txt").write_text("mine\n")
    other_host = local / f"web2--{dump.name}"
    other_host.write_bytes(b"web2's copy")
    for n in (2, 3):
        c.site.commit({"VERSION": f"{n}\n"})
        c.deploy()
    dumps = c.dumps()
    assert len(dumps) == 3  # the host keeps its own 5
    mine = sorted(p.name for p in local.glob("web1--*"))
    assert mine == [f"web1--{d.name}" for d in dumps[-2:]]
    assert (local / "notes.txt").read_text() == "mine\n" and other_host.exists()
    assert all((local / n).stat().st_mode & 0o777 == 0o600 for n in mine)

    # a lost local copy is fetched again by a rerun, which makes no new dump
    (local / mine[-1]).unlink()
    dry = c.dry()
    assert f"download backups/{dumps[-1].name} (no local copy yet) to {local}/" in dry.stderr
    c.deploy()
    assert c.dumps() == dumps
    assert (local / mine[-1]).read_bytes() == dumps[-1].read_bytes()


def test_a_download_folder_that_cannot_be_made_stops_before_any_host(client, ssh_hosts, tmp_path):
    (tmp_path / "a-file").write_text("not a folder\n")
    c = client("t_nofolder", download={"dir": "../a-file/backups"})
    connections = ssh_hosts[0].connections()
    proc = c.deploy(check=False)
    assert proc.returncode == 2
    assert "database.download.dir:" in proc.stderr
    assert f"{tmp_path / 'a-file'} is not a folder" in proc.stderr
    assert ssh_hosts[0].connections() == connections  # no host contacted
    assert not c.root.exists()
