"""Rollback you can count on: pruning keeps releases that went live; a folder left under the
release's name is moved aside, not in the way.

The real pyinfra CLI over the session's sshd's (see test_deploy.py for the client pattern).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.client import host_entry, run_pyinfra, run_pyinfra_json, write_client
from support.proc import as_deploy
from support.site import SiteRepo
from support.snapshot import tree_snapshot
from support.sshd import SshHost

pytestmark = pytest.mark.e2e


@dataclass
class Client:
    """One host's client: its inventory, deploy root and site repo."""

    inventory: Path
    root: Path
    site: SiteRepo

    def deploy(self, *args: str, check: bool = True):
        return run_pyinfra(self.inventory, "-y", *args, check=check)

    def dry(self) -> str:
        """Run --dry; assert it changed nothing on the host; return what it said."""
        before = tree_snapshot(self.root)
        proc = run_pyinfra(self.inventory, "--dry", check=True)
        assert tree_snapshot(self.root) == before, "--dry changed the host"
        return proc.stderr

    def rollback(self, check: bool = True):
        return run_pyinfra(self.inventory, "-y", check=check, deploy_file="rollback.py")

    def release(self, version: int) -> str:
        """Commit a new VERSION; return its release name."""
        return self.site.commit({"VERSION": f"{version}\n"})[:12]

    def live(self) -> str:
        return os.readlink(self.root / "current")

    def releases(self) -> set[str]:
        return {p.name for p in (self.root / "releases").iterdir()}

    def log(self) -> list[list[str]]:
        text = (self.root / ".atomic-deploy/log").read_text()
        return [line.split("\t") for line in text.splitlines()]


@pytest.fixture
def client(ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, tmp_path: Path):
    root = deploy_root("web1")

    def make(**options) -> Client:
        """The client file with `options`; calling again rewrites it for the same host."""
        inventory = write_client(
            tmp_path / "inv", source=site_repo.path, hosts=[host_entry(ssh_hosts[0], root)],
            ssh=ssh_hosts[0], **options,
        )  # fmt: skip
        return Client(inventory, root, site_repo)

    return make


def test_two_failed_deploys_leave_two_rollback_targets_with_keep_3(client):
    c = client(keep_releases=3)
    shas = [c.site.sha_short()]
    c.deploy()
    for version in (2, 3):
        shas.append(c.release(version))
        c.deploy()
    a, b, live = shas
    # two deploys fail their before_switch hook: they never go live
    c = client(keep_releases=3, hooks={"before_switch": ["exit 1"]})
    failed = []
    for version in (4, 5):
        failed.append(c.release(version))
        assert c.deploy(check=False).returncode != 0
        assert c.live() == f"releases/{live}"
    assert c.releases() >= {a, b, live, *failed}

    c = client(keep_releases=3)  # fixed: the next deploy goes through
    new = c.release(6)
    said = c.dry()
    for sha in failed:
        assert (
            f"remove releases/{sha} (never went live: its before_switch hook failed; keep 3)"
            in said
        )
    assert f"remove releases/{a} (old; keep 3)" in said
    assert f"remove releases/{b}" not in said
    c.deploy()
    assert c.releases() == {new, live, b}

    # two rollback targets: rolling back twice works
    c.rollback()
    assert c.live() == f"releases/{live}"
    c.rollback()
    assert c.live() == f"releases/{b}"
    assert (c.root / "htdocs/../VERSION").resolve().read_text() == "2\n"


def test_an_aside_copy_is_named_as_such_and_goes_before_any_once_live_release(client):
    c = client(keep_releases=3)
    old = c.site.sha_short()
    c.deploy()
    live = c.release(2)
    c.deploy()
    # a hot-fix on the server: the next run puts the edited copy aside and keeps it (this run)
    as_deploy(f"echo '// hot-fix' >> '{c.root}/releases/{live}/htdocs/index.php'")
    c.deploy()
    [aside] = [name for name in c.releases() if name.startswith(f".aside-{live}-")]
    assert c.releases() == {old, live, aside}

    new = c.release(3)
    said = c.dry()
    pattern = (
        rf"remove releases/{re.escape(aside)} \(copy put aside on \d{{4}}-\d\d-\d\d \d\d:\d\d UTC "
        r"because it was edited on the server; keep 3\)"
    )
    assert re.search(pattern, said), said[-3000:]
    assert "leftover of an interrupted run" not in said
    assert f"remove releases/{old}" not in said  # once live: it outranks the aside copy
    c.deploy()
    assert c.releases() == {new, live, old}


def test_an_unmarked_folder_under_the_release_name_is_moved_aside_and_the_deploy_converges(
    client,
):
    c = client()  # keep_releases: 5
    first = c.site.sha_short()
    c.deploy()
    sha = c.release(2)
    # a person (or another tool) left a folder where the release goes
    as_deploy(
        f"mkdir -p '{c.root}/releases/{sha}/notes' "
        f"&& echo 'mine, keep it' > '{c.root}/releases/{sha}/notes/todo.txt'"
    )
    said = c.dry()
    assert (
        f"releases/{sha} exists but was not made by atomic-deploy (no completion marker, "
        f"not in the deploy log): moved aside as releases/.aside-{sha}-"
    ) in said

    proc = c.deploy()
    assert c.live() == f"releases/{sha}"
    assert (c.root / "htdocs/../VERSION").resolve().read_text() == "2\n"
    assert (c.root / "releases" / sha / ".atomic-deploy-release").is_file()
    [aside] = [name for name in c.releases() if name.startswith(f".aside-{sha}-")]
    assert (c.root / "releases" / aside / "notes/todo.txt").read_text() == "mine, keep it\n"
    assert f"moved aside as releases/{aside} (kept)" in proc.stderr
    moved = [e for e in c.log() if e[1] == "aside"]
    assert [(e[2], e[4]) for e in moved] == [(sha, f"{aside} (not made by atomic-deploy)")]

    _, again = run_pyinfra_json(c.inventory, "-y", check=True)
    changed = [op["name"] for op in again["results"]["operations"] if op["success"]]
    assert changed == []
    assert c.releases() == {first, sha, aside}

    # someone else's folder: moved aside, then never deleted (only reported), whatever
    # keep_releases says; once-live releases are pruned around it
    c = client(keep_releases=2)
    new = c.release(3)
    said = c.dry()
    assert f"releases/{aside}: not made by atomic-deploy, left alone" in said
    assert f"remove releases/{aside}" not in said and f"remove releases/{first}" in said
    c.deploy()
    assert c.releases() == {new, sha, aside}


@pytest.mark.parametrize(
    ("make", "what"),
    [("echo x > {path}", "a file"), ("ln -s /etc {path}", "a symbolic link")],
)
def test_a_file_or_link_under_the_release_name_is_refused_and_left_alone(client, make, what):
    c = client()
    c.deploy()
    sha = c.release(2)
    path = c.root / "releases" / sha
    as_deploy(make.format(path=f"'{path}'"))
    before = tree_snapshot(c.root)
    proc = c.deploy(check=False)
    assert proc.returncode != 0
    assert (
        f"{path} is {what}, not a release folder: atomic-deploy builds the release under that "
        "name. Move it out of releases/ and deploy again"
    ) in proc.stderr
    assert tree_snapshot(c.root) == before
