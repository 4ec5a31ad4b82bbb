"""Running a live site end to end: rollback, hooks, health check, status, history, webhook.

The real pyinfra CLI over the session's three sshd's; the health check asks a real nginx on
127.0.0.1 that serves each host's `htdocs/health.txt` (500 when the release ships `BROKEN`).
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.client import host_entry, run_pyinfra, write_client
from support.mariadb import DB_PASSWORD, DB_USER
from support.proc import as_deploy, free_port, tail
from support.site import SiteRepo
from support.snapshot import tree_snapshot
from support.sshd import SshHost, _die_with_parent
from support.webhook import local_server
from webstack import WEB_USER

pytestmark = pytest.mark.e2e
PW_ENV = "ATOMIC_TEST_DB_PASSWORD"
DB_ENV = {PW_ENV: DB_PASSWORD}


@dataclass
class Client:
    """A client with one deploy root per host, its inventory and its site repo."""

    inventory: Path
    roots: dict[str, Path]
    site: SiteRepo

    def run(self, deploy_file: str, *args: str, check: bool = True):
        return run_pyinfra(
            self.inventory, "-y", *args, check=check, deploy_file=deploy_file, env=DB_ENV
        )

    def deploy(self, *args: str, check: bool = True):
        return self.run("deploy.py", *args, check=check)

    def rollback(self, *args: str, check: bool = True):
        return self.run("rollback.py", *args, check=check)

    def live(self, name: str) -> str:
        return os.readlink(self.roots[name] / "current")

    def lives(self) -> set[str]:
        return {self.live(name) for name in self.roots}

    def log(self, name: str) -> list[list[str]]:
        text = (self.roots[name] / ".atomic-deploy/log").read_text()
        return [line.split("\t") for line in text.splitlines()]

    def snapshots(self) -> dict:
        return {name: tree_snapshot(root) for name, root in self.roots.items()}


@pytest.fixture
def client(ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, tmp_path: Path):
    roots: dict[str, Path] = {}

    def make(n_hosts: int = 3, **options) -> Client:
        for h in ssh_hosts[:n_hosts]:
            roots.setdefault(h.name, deploy_root(h.name))  # the same roots when rewritten
        hosts = [host_entry(h, roots[h.name]) for h in ssh_hosts[:n_hosts]]
        inventory = write_client(
            tmp_path / "inv", source=site_repo.path, hosts=hosts, ssh=ssh_hosts[0], **options
        )
        return Client(inventory, {h.name: roots[h.name] for h in ssh_hosts[:n_hosts]}, site_repo)

    return make


# --------------------------------------------------------------------------- rollback


def test_rollback_and_roll_forward_across_three_hosts(client):
    c = client()
    v1 = c.site.sha_short()
    c.deploy()
    v2 = c.site.commit({"VERSION": "2\n"})[:12]
    c.deploy()
    assert c.lives() == {f"releases/{v2}"}

    before = c.snapshots()
    dry = run_pyinfra(c.inventory, "--dry", deploy_file="rollback.py", check=True)
    assert f"current: releases/{v2} -> releases/{v1}" in dry.stderr
    assert c.snapshots() == before  # --dry changed nothing anywhere

    c.rollback()
    assert c.lives() == {f"releases/{v1}"}
    for name, root in c.roots.items():
        assert (root / "htdocs" / "../VERSION").resolve().read_text() == "1\n"
        assert (root / "releases" / v2).is_dir(), name  # kept for a roll forward
        event = c.log(name)[-1]
        assert event[1:3] == ["rollback", v1] and event[4] == f"from {v2}"
        assert not (root / ".atomic-deploy/lock").exists()

    # A second plain rollback goes further back, not forward: there is nothing before v1.
    again = c.rollback(check=False)
    assert again.returncode != 0
    assert "names no earlier release" in again.stderr
    assert c.lives() == {f"releases/{v1}"}

    # Roll forward: one command naming the newer release.
    c.rollback("--data", f'release="{v2}"')
    assert c.lives() == {f"releases/{v2}"}
    # ... after which v1 is the rollback target again, and a new deploy works normally.
    v3 = c.site.commit({"VERSION": "3\n"})[:12]
    c.deploy()
    assert c.lives() == {f"releases/{v3}"}
    c.rollback()
    assert c.lives() == {f"releases/{v2}"}


def test_rollback_refused_when_one_host_lacks_the_target(client):
    c = client()
    v1 = c.site.sha_short()
    c.deploy()
    v2 = c.site.commit({"VERSION": "2\n"})[:12]
    c.deploy()
    as_deploy(f"rm -rf {c.roots['web2']}/releases/{v1}")
    before = c.snapshots()

    for args in (["--dry"], ["-y"], ["-y", "--data", f'release="{v1}"']):
        proc = run_pyinfra(c.inventory, *args, deploy_file="rollback.py")
        assert proc.returncode != 0, args
        assert "web2" in proc.stderr and "cannot roll back" in proc.stderr, proc.stderr
        assert c.lives() == {f"releases/{v2}"}
        after = c.snapshots()
        # only the lock folder's parent mtime may move (-y takes and gives back the lock)
        for name in after:
            after[name].pop(".atomic-deploy", None), before[name].pop(".atomic-deploy", None)
        assert after == before, args  # nothing switched, no lock left, no log line
    # a named release that does not exist anywhere is refused the same way
    proc = c.rollback("--data", 'release="abcdef123456"', check=False)
    assert proc.returncode != 0 and "releases/abcdef123456 is not a complete release" in proc.stderr


# --------------------------------------------------------------------------- hooks


HOOKS = {
    "before_switch": [
        'echo "migrating to $ATOMIC_RELEASE from $ATOMIC_PREVIOUS_RELEASE in $(pwd)"',
        'case "$ATOMIC_DEPLOY_ROOT" in */web2) echo "migration broke on purpose" >&2; exit 3;; '
        "esac",
    ],
    "on_failure": ['echo "$ATOMIC_RELEASE" > "$ATOMIC_DEPLOY_ROOT/on-failure.txt"'],
}


def test_failing_before_switch_hook_leaves_every_host_on_the_old_release(client):
    c = client()
    v1 = c.site.sha_short()
    c.deploy()
    c = client(hooks=HOOKS)
    v2 = c.site.commit({"VERSION": "2\n"})[:12]
    proc = c.deploy(check=False)
    assert proc.returncode != 0
    assert c.lives() == {f"releases/{v1}"}  # nobody switched
    assert "[web2]" in proc.stderr and "migration broke on purpose" in proc.stderr
    # a successful hook's output is shown too, prefixed by its host
    root1 = c.roots["web1"]
    assert f"[web1]   migrating to {v2} from {v1} in {root1}/releases/{v2}" in proc.stderr
    assert ["hook-failed", v2] == c.log("web2")[-1][1:3]
    assert c.log("web2")[-1][4].startswith("before_switch: case")
    for root in c.roots.values():  # on_failure ran on every host that had the release
        assert (root / "on-failure.txt").read_text() == f"{v2}\n"
        assert not (root / ".atomic-deploy/lock").exists()


def test_after_switch_hooks_run_once_per_switch_with_the_release_env(client):
    c = client(
        n_hosts=2,
        hooks={
            "before_switch": ['echo "$ATOMIC_RELEASE" >> "$ATOMIC_DEPLOY_ROOT/before.txt"'],
            "after_switch": [
                'printf "%s %s %s\\n" "$(pwd)" "$ATOMIC_RELEASE_PATH" "$ATOMIC_PREVIOUS_RELEASE" '
                '>> "$ATOMIC_DEPLOY_ROOT/after.txt"'
            ],
        },
    )
    v1 = c.site.sha_short()
    c.deploy()
    v2 = c.site.commit({"VERSION": "2\n"})[:12]
    c.deploy()
    c.deploy()  # converged: no hook runs
    for root in c.roots.values():
        assert (root / "before.txt").read_text() == f"{v1}\n{v2}\n"
        path1, path2 = root / "releases" / v1, root / "releases" / v2
        assert (root / "after.txt").read_text() == f"{path1} {path1} \n{path2} {path2} {v1}\n"


# --------------------------------------------------------------------------- health check


@pytest.fixture
def health_server(test_run_dir: Path) -> Iterator:
    """Factory: nginx on 127.0.0.1 serving GET /<host>/health from <base>/<host>/htdocs:
    health.txt with 200, or 500 when the live release ships htdocs/BROKEN."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(base: Path) -> int:
        workdir = test_run_dir / f"health-nginx-{len(procs)}-{os.getpid()}"
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port(29080)
        conf = workdir / "nginx.conf"
        conf.write_text(
            f"daemon off; worker_processes 1; user {WEB_USER};\n"
            f"pid {workdir}/nginx.pid; error_log {workdir}/error.log;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"  access_log off; client_body_temp_path {workdir}/body;\n"
            f"  proxy_temp_path {workdir}/proxy; fastcgi_temp_path {workdir}/fastcgi;\n"
            f"  uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;\n"
            f"  server {{\n    listen 127.0.0.1:{port};\n    root {base};\n"
            "    location ~ ^/(?<site>[A-Za-z0-9_-]+)/health$ {\n"
            "      default_type text/plain;\n"
            "      if (-f $document_root/$site/htdocs/BROKEN) { return 500; }\n"
            "      try_files /$site/htdocs/health.txt =404;\n"
            "    }\n  }\n}\n"
        )
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            ["/usr/sbin/nginx", "-c", str(conf), "-p", str(workdir)],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        procs.append(proc)
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return port
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.poll() is not None else ""
                raise AssertionError(
                    f"nginx did not start: {err}\n{tail((workdir / 'error.log').read_text())}"
                )
            time.sleep(0.05)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_release_failing_its_health_check_is_rolled_back_on_every_host(client, health_server):
    c = client()
    port = health_server(next(iter(c.roots.values())).parent)
    c = client(
        health={"url": f"http://127.0.0.1:{port}/{{host}}/health", "contains": "ok",
                "retries": 1, "delay": 0.2, "timeout": 2},
        hooks={"on_failure": ['echo "$ATOMIC_RELEASE" > "$ATOMIC_DEPLOY_ROOT/on-failure.txt"']},
    )  # fmt: skip
    v1 = c.site.commit({"htdocs/health.txt": "ok 1\n"})[:12]
    proc = c.deploy()
    assert proc.stderr.count("health check ok") == 3
    v2 = c.site.commit({"VERSION": "2\n", "htdocs/BROKEN": "yes\n"})[:12]
    dry = run_pyinfra(c.inventory, "--dry", check=True)
    assert f"[web1] health check after the switch: GET http://127.0.0.1:{port}/web1/health" in (
        dry.stderr
    )
    proc = c.deploy(check=False)
    assert proc.returncode != 0
    assert c.lives() == {f"releases/{v1}"}  # every host is back on the healthy release
    assert "status 500, expected 200" in proc.stderr
    assert f"rolled back to releases/{v1}" in proc.stderr
    for name, root in c.roots.items():
        events = [e[1:3] for e in c.log(name)[-3:]]
        assert events == [["switch", v2], ["health-failed", v2], ["rollback", v1]], name
        assert (root / "on-failure.txt").read_text() == f"{v2}\n"
        assert not (root / ".atomic-deploy/lock").exists()
    # The failed release is no rollback target; fixing it and deploying again works.
    v3 = c.site.commit({"VERSION": "3\n", "htdocs/BROKEN": None})[:12]
    c.deploy()
    assert c.lives() == {f"releases/{v3}"}


# --------------------------------------------------------------------------- status


def _status(c: Client, *args: str) -> str:
    return run_pyinfra(c.inventory, *args, deploy_file="status.py", check=True).stdout


def test_status_of_a_converged_and_a_drifted_host(client):
    c = client(n_hosts=2)
    v1 = c.site.sha_short()
    c.deploy()
    v2 = c.site.commit({"VERSION": "2\n"})[:12]
    c.deploy()
    web2 = c.roots["web2"]
    as_deploy(f"echo hotfix >> {web2}/current/config/general.php")
    as_deploy(f"ln -sfn /tmp {web2}/htdocs && rm {web2}/releases/{v2}/content")
    as_deploy(
        f"mkdir {web2}/.atomic-deploy/lock && printf 'token=x\\nuser=alice\\nhost=laptop\\n"
        f"started_at=2026-01-01T00:00:00Z\\n' > {web2}/.atomic-deploy/lock/owner"
    )
    before = c.snapshots()

    text = _status(c, "-y")
    assert c.snapshots() == before
    block1, block2 = (
        text.split(f"{name}: ", 1)[1].split("\nweb", 1)[0] for name in ("web1", "web2")
    )
    assert f"live: releases/{v2} (switch " in block1
    assert f"releases, last live first: {v2} (live), {v1} (previous)" in block1
    assert "drift: none" in block1 and "lock: free" in block1
    assert f"switch  {v2}" in block1  # history
    assert "htdocs is link /tmp" in block2
    assert f"releases/{v2} was changed on the server (edited: config/general.php)" in block2
    assert f"releases/{v2}/content is missing (should be a link -> shared/content)" in block2
    assert "lock: held by alice@laptop" in block2

    json_out = _status(c, "--dry", "--data", "status_json=true", "--data", "status_lines=2")
    assert c.snapshots() == before
    reports = {r["host"]: r for r in map(json.loads, json_out.splitlines())}
    assert reports["web1"]["live"] == v2 and reports["web1"]["previous"] == v1
    assert reports["web1"]["drift"] == [] and reports["web1"]["lock"] is None
    assert [r["release"] for r in reports["web1"]["releases"]] == [v2, v1]
    assert len(reports["web1"]["history"]) == 2
    assert reports["web1"]["history"][-1]["event"] == "switch"
    assert len(reports["web2"]["drift"]) == 3 and reports["web2"]["lock"].startswith("alice@")


# --------------------------------------------------------------------------- webhook


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", 0))
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    with local_server(_Hook) as served:
        yield served


def test_webhook_told_once_per_run_and_a_dead_webhook_only_warns(client, webhook):
    url, received = webhook
    c = client(n_hosts=2, notify={"webhook": url})
    sha = c.site.sha_short()
    c.deploy()
    assert len(received) == 1
    message = received[0]
    assert message["action"] == "deploy" and message["outcome"] == "success"
    assert message["release"] == sha and message["hosts"] == ["web1", "web2"]
    assert message["failed_hosts"] == [] and message["duration_seconds"] > 0

    c = client(n_hosts=2, notify={"webhook": url}, hooks={"before_switch": ["exit 1"]})
    c.site.commit({"VERSION": "2\n"})
    assert c.deploy(check=False).returncode != 0
    assert len(received) == 2 and received[1]["outcome"] == "failure"

    c = client(n_hosts=2, notify={"webhook": url})
    c.rollback(check=False)  # nothing to roll back to on a first release: refused, reported
    c.site.commit({"VERSION": "3\n"})
    c.deploy()
    c.rollback()
    assert [m["action"] for m in received[2:]] == ["rollback", "deploy", "rollback"]
    assert received[-1]["release"] == sha and received[-1]["outcome"] == "success"

    dead = f"http://127.0.0.1:{free_port(29500)}/hook"
    c = client(n_hosts=2, notify={"webhook": dead})
    c.site.commit({"VERSION": "4\n"})
    proc = c.deploy()  # rc 0 despite the webhook
    assert f"the webhook {dead} failed" in proc.stderr


# --------------------------------------------------------------------------- restore


def test_restore_dump_loads_the_dump_taken_before_the_rolled_back_release(client, mariadb):
    db = mariadb.create_database("t_live_restore", "ALL PRIVILEGES")
    mariadb.sql("CREATE TABLE entries (id INT PRIMARY KEY, title VARCHAR(20));"
                "INSERT INTO entries VALUES (1, 'before')", db)  # fmt: skip
    section = {"name": db, "user": DB_USER, "password_env": PW_ENV, "host": "127.0.0.1",
               "port": mariadb.port, "max_age": "1s"}  # fmt: skip
    c = client(n_hosts=1, database=section)
    c.deploy()
    time.sleep(1.1)  # the first dump is no longer fresh: the next deploy dumps again
    v2 = c.site.commit({"VERSION": "2\n"})[:12]
    c.deploy()
    dump = [e[4] for e in c.log("web1") if e[1] == "dump"][-1]
    mariadb.sql("UPDATE entries SET title = 'migrated'", db)  # v2's migration
    c.rollback()
    dry = run_pyinfra(c.inventory, "--dry", deploy_file="restore_dump.py", env=DB_ENV, check=True)
    assert f"load {dump} (" in dry.stderr
    assert f"taken before releases/{v2}) into database {db}" in dry.stderr
    assert mariadb.sql("SELECT title FROM entries", db).strip() == "migrated"
    c.run("restore_dump.py")
    assert mariadb.sql("SELECT title FROM entries", db).strip() == "before"
    assert c.log("web1")[-1][1:3] == ["restore", v2]
