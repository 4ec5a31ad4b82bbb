"""Rollback you can count on (issue 14): short shas, after_rollback hooks, refusals that read as
errors, status naming every drift, and the commits going live in the dry run and the webhook.

The real pyinfra CLI over the session's three sshd's; the webhook is a local HTTP server
(127.0.0.1 only) that, like Slack's, refuses a body without `text`.
"""

from __future__ import annotations

import http.server
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.client import CHECKS_OFF, host_entry, run_pyinfra, write_client
from support.proc import as_deploy
from support.site import SiteRepo
from support.snapshot import tree_snapshot
from support.sshd import SshHost
from support.webhook import local_server

pytestmark = pytest.mark.e2e
MARKER = ".atomic-deploy-release"


@dataclass
class Client:
    inventory: Path
    roots: dict[str, Path]
    site: SiteRepo

    def run(self, deploy_file: str, *args: str, check: bool = True):
        return run_pyinfra(self.inventory, *args, check=check, deploy_file=deploy_file)

    def live(self, name: str) -> str:
        return os.readlink(self.roots[name] / "current")

    def lives(self) -> set[str]:
        return {self.live(name) for name in self.roots}

    def snapshots(self) -> dict:
        return {name: tree_snapshot(root) for name, root in self.roots.items()}


@pytest.fixture
def client(ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, tmp_path: Path):
    roots: dict[str, Path] = {}

    def make(n_hosts: int = 3, **options) -> Client:
        for h in ssh_hosts[:n_hosts]:
            roots.setdefault(h.name, deploy_root(h.name))
        hosts = [host_entry(h, roots[h.name]) for h in ssh_hosts[:n_hosts]]
        inventory = write_client(
            tmp_path / "inv", source=site_repo.path, hosts=hosts, ssh=ssh_hosts[0], **options
        )
        return Client(inventory, {h.name: roots[h.name] for h in ssh_hosts[:n_hosts]}, site_repo)

    return make


def _without_lock_dir(snaps: dict) -> dict:
    # -y takes and gives back the deploy lock: only .atomic-deploy's own mtime may move
    return {
        name: {k: v for k, v in snap.items() if k != ".atomic-deploy"}
        for name, snap in snaps.items()
    }


# --------------------------------------------------------------------------- rollback


AFTER_ROLLBACK = (
    'echo "$ATOMIC_HOST $ATOMIC_RELEASE $ATOMIC_PREVIOUS_RELEASE $(readlink '
    '"$ATOMIC_DEPLOY_ROOT/current") $(pwd)" >> "$ATOMIC_DEPLOY_ROOT/after-rollback.txt"'
)


def test_short_sha_rollback_runs_after_rollback_hooks_on_every_host(client):
    c = client(hooks={"after_rollback": [AFTER_ROLLBACK]})
    v1 = c.site.sha_short()
    c.run("deploy.py", "-y")
    v2 = c.site.commit({"VERSION": "2\n"})[:12]
    c.run("deploy.py", "-y")
    for root in c.roots.values():  # deploys run no rollback hooks
        assert not (root / "after-rollback.txt").exists()

    dry = c.run("rollback.py", "--dry", "--data", f'release="{v1[:7]}"')
    assert dry.stderr.count(f"current: releases/{v2} -> releases/{v1}") >= 3
    assert "after_rollback hooks" in dry.stderr
    assert c.lives() == {f"releases/{v2}"}

    c.run("rollback.py", "-y", "--data", f'release="{v1[:7]}"')  # 7 digits, as the docs promise
    assert c.lives() == {f"releases/{v1}"}
    for name, root in c.roots.items():
        # once, after this host's current moved back, in the release rolled back to
        line = f"{name} {v1} {v2} releases/{v1} {root}/releases/{v1}\n"
        assert (root / "after-rollback.txt").read_text() == line, name

    c.run("rollback.py", "-y", "--data", f'release="{v1[:7]}"')  # already there: no hook
    for root in c.roots.values():
        assert len((root / "after-rollback.txt").read_text().splitlines()) == 1


def test_a_switch_that_fails_on_one_host_still_gives_every_lock_back_once(client, ssh_hosts):
    """With nothing to run after it, the rollback's switch gives the lock back in the same
    command; a host whose switch fails gives it back on its own (once, as on every host)."""
    c = client()
    v1 = c.site.sha_short()
    c.run("deploy.py", "-y")
    v2 = c.site.commit({"VERSION": "2\n"})[:12]
    c.run("deploy.py", "-y")
    broken = ssh_hosts[-1].name
    c.roots[broken].chmod(0o555)  # no new link beside current: its switch fails
    try:
        before = [h.sessions() for h in ssh_hosts]
        proc = run_pyinfra(
            c.inventory, "-y", check=False, deploy_file="rollback.py", env=CHECKS_OFF
        )
        counts = [h.sessions() - b for h, b in zip(ssh_hosts, before, strict=True)]
    finally:
        c.roots[broken].chmod(0o755)
    assert proc.returncode != 0, proc.stderr[-3000:]
    for name, root in c.roots.items():
        assert not (root / ".atomic-deploy/lock").exists(), (name, proc.stderr[-3000:])
        assert c.live(name) == f"releases/{v2 if name == broken else v1}", name
    # the others: the read at load (+ lock), the switch (+ give-back), and nothing more
    # although the run failed; the broken host (its read-only root takes no lock with a read):
    # reads at load and in execute, takes the lock, fails to switch, gives the lock back
    assert counts == [2, 2, 5], proc.stderr[-3000:]


def test_ambiguous_or_unknown_short_sha_is_refused_with_a_plain_error_per_host(client):
    c = client()
    v1 = c.site.sha_short()
    c.run("deploy.py", "-y")
    v2 = c.site.commit({"VERSION": "2\n"})[:12]
    c.run("deploy.py", "-y")
    twin = v1[:7] + ("00000" if v1[7:] != "00000" else "11111")  # same 7 digits, another release
    for root in c.roots.values():
        as_deploy(f"cd {root}/releases && cp -a {v1} {twin} && sed -i 1c{twin} {twin}/{MARKER}")
    before = _without_lock_dir(c.snapshots())

    for args in (["--dry"], ["-y"]):
        proc = c.run("rollback.py", *args, "--data", f'release="{v1[:7]}"', check=False)
        assert proc.returncode != 0, args
        assert "Operation error" not in proc.stderr and "Traceback" not in proc.stderr, args
        for name in c.roots:
            lines = [
                line
                for line in proc.stderr.splitlines()
                if line.strip().startswith(f"[{name}] cannot roll back:")
            ]
            assert lines, (args, name, proc.stderr)
            assert f"{v1[:7]} matches 2 releases on this host ({v1}, {twin})" in lines[0] or (
                f"{v1[:7]} matches 2 releases on this host ({twin}, {v1})" in lines[0]
            )
        assert c.lives() == {f"releases/{v2}"}  # nothing switched
        assert _without_lock_dir(c.snapshots()) == before, args

    proc = c.run("rollback.py", "--dry", "--data", 'release="fedcba9"', check=False)
    assert proc.returncode != 0 and "Operation error" not in proc.stderr
    refusals = [
        line
        for line in proc.stderr.splitlines()
        if "cannot roll back: releases/fedcba9 is not a complete release on this host" in line
        and line.lstrip().startswith("[web")
    ]
    assert len(refusals) == 3, proc.stderr  # one line per host (the summary repeats them)
    assert proc.stderr.count("would stop: web") == 3  # the dry run's closing summary
    assert all(v1 in line and v2 in line for line in refusals)  # the releases it has
    near = v2[:6] + ("0" if v2[6] != "0" else "1")  # one digit off: "did you mean"
    proc = c.run("rollback.py", "--dry", "--data", f'release="{near}"', check=False)
    assert proc.returncode != 0 and f"did you mean {v2}" in proc.stderr, proc.stderr
    assert c.lives() == {f"releases/{v2}"}


# --------------------------------------------------------------------------- status


def test_status_names_every_drift_and_orders_releases_by_when_they_were_live(client):
    c = client(n_hosts=1)
    v1 = c.site.sha_short()
    c.run("deploy.py", "-y")
    v2 = c.site.commit({"VERSION": "2\n"})[:12]
    c.run("deploy.py", "-y")
    v3 = c.site.commit({"VERSION": "3\n"})[:12]
    c.run("deploy.py", "-y")
    c.run("rollback.py", "-y", "--data", f'release="{v1}"')  # roll "forward" to the oldest
    # live order: v1 (live), v3 (left by the named rollback: the rollback target), v2
    c = client(n_hosts=1, keep_releases=2)
    root = c.roots["web1"]
    converged = json.loads(c.run("status.py", "-y", "--data", "status_json=true").stdout)
    assert [r["release"] for r in converged["releases"]] == [v1, v3, v2]
    assert converged["previous"] == v3
    assert converged["drift"] == [
        f"more releases than keep_releases (2): the next deploy prunes {v2}"
    ]

    as_deploy(
        f"cd {root} && rm current && ln -sfn /tmp htdocs && "
        f"echo hotfix >> releases/{v1}/config/general.php && rm -rf shared/cache"
    )
    before = c.snapshots()
    text = c.run("status.py", "--dry").stdout
    assert c.snapshots() == before  # status changes nothing
    assert f"live: none (last live: releases/{v1})" in text
    assert f"releases, last live first: {v1}, {v3} (previous), {v2}" in text
    for item in (
        f"current is missing (last live: {v1})",
        "htdocs is link /tmp (should be a link -> current/htdocs)",
        f"releases/{v1} was changed on the server (edited: config/general.php)",
        "shared dir shared/cache is missing",
        f"more releases than keep_releases (2): the next deploy prunes {v2}",
    ):
        assert f"    - {item}" in text, (item, text)

    data = json.loads(c.run("status.py", "-y", "--data", "status_json=true").stdout)
    assert data["live"] is None and data["last_live"] == v1 and data["previous"] == v3
    assert [r["release"] for r in data["releases"]] == [v1, v3, v2]
    assert all(r["last_live"] for r in data["releases"])
    assert len(data["drift"]) == 5


# --------------------------------------------------------------------------- pending changes


class _SlackLike(http.server.BaseHTTPRequestHandler):
    """Accepts a JSON body only with a non-empty `text` string (400 otherwise), as Slack,
    Mattermost and Teams incoming webhooks do."""

    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        length = min(int(self.headers.get("Content-Length", 0)), 1 << 20)
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b"missing_text")
            return
        self.received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def slack_like() -> Iterator[tuple[str, list[dict]]]:
    with local_server(_SlackLike) as served:
        yield served


def test_dry_run_and_webhook_name_the_commits_going_live(client, slack_like):
    url, received = slack_like
    request = urllib.request.Request(url, data=b'{"action": "deploy"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:  # the server does refuse no text
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 - our own local server
    assert refused.value.code == 400

    c = client(n_hosts=2, notify={"webhook": url})
    v1 = c.site.sha_short()
    c.run("deploy.py", "-y")
    assert len(received) == 1 and "first release" in received[0]["text"].lower()
    c.site.commit({"NEW.txt": "new\n"}, "Add a new file")
    v3 = c.site.commit({"VERSION": "3\n", "htdocs/assets/app.css": None}, "Bump the version")[:12]
    short = c.site.git("log", "--format=%h", "-2").split()

    dry = c.run("deploy.py", "--dry", "--data", "show_paths=true")
    for name in c.roots:
        assert (
            f"[{name}] 2 commits since releases/{v1}: {short[0]} Bump the version; "
            f"{short[1]} Add a new file" in dry.stderr
        ), dry.stderr
        assert f"[{name}] files: 1 added, 1 changed, 1 removed (git diff {v1}..{v3}" in dry.stderr
    assert "+ NEW.txt" in dry.stderr and "~ VERSION" in dry.stderr
    assert "- htdocs/assets/app.css" in dry.stderr
    plain = c.run("deploy.py", "--dry")
    assert "2 commits since" in plain.stderr and "+ NEW.txt" not in plain.stderr
    assert len(received) == 1  # a dry run tells nobody

    c.run("deploy.py", "-y")
    assert len(received) == 2  # accepted: it has `text`
    message = received[-1]
    for key in ("action", "release", "hosts", "failed_hosts", "outcome", "duration_seconds",
                "by", "client"):  # fmt: skip
        assert key in message, key  # the JSON fields stay
    assert message["release"] == v3 and message["hosts"] == ["web1", "web2"]
    text = message["text"]
    assert text.startswith(f"Deploy of client to releases/{v3} on web1, web2 by ")
    assert ": succeeded in " in text and "\n" not in text
    assert f"2 commits since releases/{v1}: {short[0]} Bump the version" in text
    assert message["changes"]["web1"]["commits"] == [
        f"{short[0]} Bump the version",
        f"{short[1]} Add a new file",
    ]
    assert message["changes"]["web1"]["files"] == {"added": 1, "changed": 1, "removed": 1}

    c.run("rollback.py", "-y")
    assert received[-1]["action"] == "rollback" and received[-1]["release"] == v1
    assert received[-1]["text"].startswith(f"Rollback of client to releases/{v1} on web1, web2")
    assert f"2 commits undone (back from releases/{v3})" in received[-1]["text"]
