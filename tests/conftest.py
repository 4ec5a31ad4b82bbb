"""Session-wide test fixtures: three sshd's, fresh deploy roots, an example site repo.

Needs root and the machine set up by scripts/test-env.sh (packages, `deploy` user).
State of a session lives in /srv/atomic-deploy-tests/run-<pid>/ and is kept after the run
for debugging; the next session removes it (see support.proc.remove_stale_runs).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.mariadb import MariaDB, start_mariadb
from support.proc import DEPLOY_USER, TEST_ROOT, chown_deploy, remove_stale_runs, slug
from support.site import SiteRepo
from support.sshd import SshHost, SshServer, make_ssh_keys, start_sshd
from webstack import WebStack, check_machine, start_webstack

HOST_NAMES = ("web1", "web2", "web3")


def _require_machine() -> None:
    # Fail loudly rather than skip: a silently skipped e2e suite looks like a green one.
    if os.geteuid() != 0:
        pytest.fail("these fixtures need root (they start sshd's and chown to deploy)")
    try:
        pwd.getpwnam(DEPLOY_USER)
    except KeyError:
        pytest.fail(f"user {DEPLOY_USER!r} missing: run `bash scripts/test-env.sh` first")


@pytest.fixture(scope="session")
def test_run_dir() -> Path:
    """/srv/atomic-deploy-tests/run-<pid>: this session's state, after removing dead sessions'."""
    _require_machine()
    remove_stale_runs(TEST_ROOT)
    run_dir = TEST_ROOT / f"run-{os.getpid()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    for d in (TEST_ROOT, run_dir):
        d.chmod(0o755)  # deploy must traverse down to its deploy roots
    return run_dir


@pytest.fixture(scope="session")
def ssh_hosts(test_run_dir: Path) -> Iterator[list[SshHost]]:
    """Three sshd's (web1..web3) on 127.0.0.1 letting `deploy` in with a throwaway key."""
    workdir = test_run_dir / "ssh"
    client_key, host_key = make_ssh_keys(workdir)
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text("")
    servers: list[SshServer] = []
    try:
        for name in HOST_NAMES:
            servers.append(
                start_sshd(
                    workdir,
                    name,
                    client_key=client_key,
                    host_key=host_key,
                    known_hosts=known_hosts,
                    skip_ports={s.host.port for s in servers},
                )
            )
        yield [s.host for s in servers]
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def mariadb(test_run_dir: Path) -> Iterator[MariaDB]:
    """A mariadbd of the session with database `craft`: `entries`, InnoDB, 400 000 rows (a dump
    takes a few seconds), dumpable by the least-privilege user support.mariadb.DB_USER (no PROCESS).
    """
    server = start_mariadb(test_run_dir / "mariadb")
    try:
        server.create_database("craft")
        server.sql(
            "CREATE TABLE entries (id INT AUTO_INCREMENT PRIMARY KEY, title CHAR(32) NOT NULL,"
            " body VARCHAR(255) NOT NULL) ENGINE=InnoDB;"
            # one statement from the built-in sequence engine: no client round trip per row
            "INSERT INTO entries (title, body) SELECT MD5(seq),"
            " CONCAT(SHA2(seq, 256), SHA2(seq + 1, 256), SHA2(seq + 2, 256))"
            " FROM seq_1_to_400000",
            "craft",
        )
        yield server
    finally:
        server.stop()


@pytest.fixture
def deploy_root(test_run_dir: Path, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Factory: `deploy_root("web1")` -> absolute path that does not exist yet.

    Its parent (one dir per test) exists and belongs to deploy, so the tool can create the
    root over ssh. Asking for the same name twice gives a new path (`web1-2`, ...), which
    keeps each call "fresh", e.g. across hypothesis examples.
    """
    test_dir = test_run_dir / slug(request.node.nodeid)
    used: set[str] = set()

    def make(name: str) -> Path:
        if not test_dir.exists():
            test_dir.mkdir()
            chown_deploy(test_dir)
        candidate, n = name, 1
        while candidate in used or (test_dir / candidate).exists():
            n += 1
            candidate = f"{name}-{n}"
        used.add(candidate)
        return test_dir / candidate

    return make


@pytest.fixture
def site_repo(tmp_path: Path) -> SiteRepo:
    """A git repo (one commit, branch main) of the example PHP site, in tmp_path/site."""
    return SiteRepo.create(tmp_path / "site")


@pytest.fixture(scope="session")
def web_stack(test_run_dir: Path) -> Iterator[Callable[..., WebStack]]:
    """Factory: `web_stack(root, validate_timestamps=True, docroot="htdocs", extra="")` starts
    nginx + PHP-FPM (OPcache on) on 127.0.0.1 serving `<root>/<docroot>`, `extra` in its server
    block; every stack started is stopped at session end.
    """
    check_machine()
    started: list[WebStack] = []

    def start(
        root: Path, *, validate_timestamps: bool = True, docroot: str = "htdocs", extra: str = ""
    ) -> WebStack:
        workdir = test_run_dir / f"web-{len(started) + 1}"
        stack = start_webstack(
            workdir, root / docroot, validate_timestamps=validate_timestamps, extra=extra
        )
        started.append(stack)
        return stack

    try:
        yield start
    finally:
        for stack in started:
            stack.stop()
