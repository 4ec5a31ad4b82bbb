"""The reconcile core end to end: the real pyinfra CLI over three real sshd's on 127.0.0.1.

Each test gets its own deploy roots and site repo; the sshd's are shared by the session.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.client import CHECKS_OFF, host_entry, run_pyinfra, run_pyinfra_json, write_client
from support.proc import DEPLOY_USER, as_deploy
from support.site import SiteRepo
from support.snapshot import tree_snapshot
from support.sshd import SshHost

pytestmark = pytest.mark.e2e


@dataclass
class Client:
    """A client with one deploy root per host, its inventory and its site repo."""

    inventory: Path
    roots: dict[str, Path]
    site: SiteRepo

    def deploy(self, *args: str, check: bool = True, env: dict[str, str] | None = None):
        return run_pyinfra(self.inventory, "-y", *args, check=check, env=env)

    def deploy_json(self, *args: str, check: bool = True) -> dict:
        return run_pyinfra_json(self.inventory, "-y", *args, check=check)[1]

    def live(self, name: str) -> str:
        return os.readlink(self.roots[name] / "current")


@pytest.fixture
def client(ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, tmp_path: Path):
    def make(n_hosts: int = 3, **options) -> Client:
        roots = {h.name: deploy_root(h.name) for h in ssh_hosts[:n_hosts]}
        hosts = [host_entry(h, roots[h.name]) for h in ssh_hosts[:n_hosts]]
        inventory = write_client(
            tmp_path / "inv", source=site_repo.path, hosts=hosts, ssh=ssh_hosts[0], **options
        )
        return Client(inventory, roots, site_repo)

    return make


def _changed(results: dict) -> dict[str, list[str]]:
    """Operation name -> hosts where it changed something, from `-y --json` results."""
    return {op["name"]: op["success"] for op in results["results"]["operations"] if op["success"]}


def _release_text(root: Path) -> str:
    return (root / "htdocs" / "../VERSION").resolve().read_text()


def test_first_deploy_builds_the_layout_on_every_host(client):
    c = client()
    sha = c.site.sha_short()
    c.deploy()
    for name, root in c.roots.items():
        assert os.readlink(root / "current") == f"releases/{sha}", name
        assert os.readlink(root / "htdocs") == "current/htdocs"
        release = root / "releases" / sha
        # the marker: the release name, then the digest of the upload set it holds
        marker = (release / ".atomic-deploy-release").read_text().splitlines()
        assert marker[0] == sha and re.fullmatch(r"[0-9a-f]{64}", marker[1])
        assert (root / "htdocs" / "index.php").is_file()  # served through both links
        assert not (release / ".git").exists()
        for shared in ("cache", "content", "storage"):
            assert os.readlink(release / shared) == f"../../shared/{shared}"
            assert (root / "shared" / shared).is_dir()
        # shared paths live on the host: what the site ships there never reaches shared/
        assert list((root / "shared" / "content").iterdir()) == []
        assert (root / "deploy-cache" / "htdocs" / "index.php").is_file()
        assert root.stat().st_uid == (root / "releases").stat().st_uid != 0  # made as deploy
        log = (root / ".atomic-deploy" / "log").read_text()
        assert f"\tpopulated\t{sha}\t" in log and f"\tswitch\t{sha}\t" in log


def _site_snapshot(root: Path) -> dict:
    """tree_snapshot without the tool's own folder (taking the deploy lock touches it)."""
    snap = tree_snapshot(root)
    return {k: v for k, v in snap.items() if k.split("/")[0] != ".atomic-deploy"}


def test_rerun_of_the_same_release_changes_nothing(client):
    c = client()
    c.deploy()
    before = {n: _site_snapshot(r) for n, r in c.roots.items()}
    results = c.deploy_json()
    assert _changed(results) == {}
    assert results["results"]["totals"]["success"] == 0
    assert {n: _site_snapshot(r) for n, r in c.roots.items()} == before
    for root in c.roots.values():
        assert not (root / ".atomic-deploy" / "lock").exists()  # given back


def test_redeploy_of_a_new_sha_switches_and_keeps_the_old_release(client):
    c = client()
    old = c.site.sha_short()
    c.deploy()
    new = c.site.commit({"VERSION": "2\n"})[:12]
    results = c.deploy_json()
    # the release is built with its shared links; only populate and the switch change
    assert set(_changed(results)) == {f"release {new} populated", f"current -> releases/{new}"}
    for root in c.roots.values():
        assert os.readlink(root / "current") == f"releases/{new}"
        assert _release_text(root) == "2\n"
        assert (root / "releases" / old / ".atomic-deploy-release").is_file()


def test_dry_run_changes_nothing_and_names_each_pending_change(client):
    c = client()
    old = c.site.sha_short()
    c.deploy()
    new = c.site.commit({"VERSION": "2\n", "htdocs/new.php": "<?php echo 'new';\n"})[:12]
    before = {n: tree_snapshot(r) for n, r in c.roots.items()}
    proc = run_pyinfra(c.inventory, "--dry", check=True)
    assert {n: tree_snapshot(r) for n, r in c.roots.items()} == before
    for name in c.roots:
        assert f"[{name}] releases/{new}: create (" in proc.stderr
        assert f"[{name}] current: releases/{old} -> releases/{new}" in proc.stderr
    # the estimate is a real delta: two changed files, not the whole site
    assert "releases/" + new + ": create (2 files" in proc.stderr


def test_dry_run_of_a_first_deploy_changes_nothing(client):
    c = client(n_hosts=1)
    proc = run_pyinfra(c.inventory, "--dry", check=True)
    root = c.roots["web1"]
    assert not root.exists()
    assert "[web1] create deploy root" in proc.stderr
    assert "[web1] current: (none) -> releases/" in proc.stderr


def test_keep_releases_prunes_the_oldest_but_never_current_or_previous(client):
    c = client(n_hosts=1, keep_releases=2)
    shas = [c.site.sha_short()]
    c.deploy()
    for i in range(2, 6):
        shas.append(c.site.commit({"VERSION": f"{i}\n"})[:12])
        c.deploy()
    root = c.roots["web1"]
    releases = sorted(p.name for p in (root / "releases").iterdir())
    assert releases == sorted(shas[-2:])  # live + previous
    assert c.live("web1") == f"releases/{shas[-1]}"
    assert f"\tprune\t{shas[0]}\t" in (root / ".atomic-deploy/log").read_text()


def test_prune_keeps_the_previous_release_after_going_back(client):
    """Going back to an old sha makes the release it replaced the rollback target."""
    c = client(n_hosts=1, keep_releases=2)
    first = c.site.head()
    c.deploy()
    second = c.site.commit({"VERSION": "2\n"})
    c.deploy()
    c.site.git("checkout", "-q", first)
    c.deploy()
    root = c.roots["web1"]
    assert c.live("web1") == f"releases/{first[:12]}"
    assert sorted(p.name for p in (root / "releases").iterdir()) == sorted(
        [first[:12], second[:12]]
    )


def test_foreign_directories_in_releases_are_reported_never_deleted(client):
    c = client(n_hosts=1, keep_releases=1)
    c.deploy()
    root = c.roots["web1"]
    as_deploy(f"mkdir {root}/releases/my-backup && echo keep > {root}/releases/my-backup/f")
    c.site.commit({"VERSION": "2\n"})
    proc = c.deploy()
    assert (root / "releases" / "my-backup" / "f").read_text() == "keep\n"
    assert "releases/my-backup: not made by atomic-deploy, left alone" in proc.stderr


def test_shared_content_survives_ten_deploys(client):
    c = client(n_hosts=1, keep_releases=3)
    c.deploy()
    root = c.roots["web1"]
    as_deploy(f"echo upload > {root}/current/content/upload.jpg")
    as_deploy(f"echo cache > {root}/current/storage/runtime.log")
    for i in range(10):
        c.site.commit({"VERSION": f"v{i}\n", "content/seed.txt": f"new seed {i}\n"})
        c.deploy()
    assert (root / "current" / "content" / "upload.jpg").read_text() == "upload\n"
    assert (root / "shared" / "storage" / "runtime.log").read_text() == "cache\n"
    # what a release ships at a shared path never reaches shared/
    assert not (root / "shared" / "content" / "seed.txt").exists()
    assert _release_text(root) == "v9\n"


def test_a_failed_populate_on_one_host_leaves_every_host_on_the_old_release(client):
    c = client()
    old = c.site.sha_short()
    c.deploy()
    new = c.site.commit({"VERSION": "2\n"})[:12]
    # web2's upload target becomes unwritable for the deploy user: its rsync fails.
    broken = c.roots["web2"] / "deploy-cache"
    os.chown(broken, 0, 0)
    broken.chmod(0o755)
    proc = c.deploy(check=False)
    assert proc.returncode != 0
    assert "[web2]" in proc.stderr and "rsync" in proc.stderr
    for root in c.roots.values():
        assert os.readlink(root / "current") == f"releases/{old}"
    # a rerun after fixing the host converges
    os.chown(broken, *_deploy_ids())
    c.deploy()
    assert {c.live(n) for n in c.roots} == {f"releases/{new}"}


def _deploy_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(DEPLOY_USER)
    return entry.pw_uid, entry.pw_gid


def test_an_invalid_config_fails_before_any_connection(client, ssh_hosts):
    c = client(keep_relases=3)
    before = [h.connections() for h in ssh_hosts]
    proc = run_pyinfra(c.inventory, "-y")
    assert proc.returncode == 2
    assert f"{c.inventory.with_suffix('.yml')}" in proc.stderr
    assert "unknown key 'keep_relases' (did you mean 'keep_releases'?)" in proc.stderr
    assert [h.connections() for h in ssh_hosts] == before
    assert not any(r.exists() for r in c.roots.values())


def test_a_float_release_on_the_command_line_is_explained_before_connecting(client, ssh_hosts):
    c = client(n_hosts=1)
    before = ssh_hosts[0].connections()
    proc = run_pyinfra(c.inventory, "-y", "--data", "release=1234e56")
    assert proc.returncode == 2
    assert "arrived as float" in proc.stderr and "--data 'release=" in proc.stderr
    assert ssh_hosts[0].connections() == before


def test_a_real_current_directory_is_refused_with_migration_help(client):
    c = client(n_hosts=1)
    root = c.roots["web1"]
    as_deploy(f"mkdir -p {root}/current && echo old site > {root}/current/index.html")
    before = tree_snapshot(root)
    proc = run_pyinfra(c.inventory, "-y")
    assert proc.returncode != 0
    assert "current is a real directory" in proc.stderr and "To migrate" in proc.stderr
    assert tree_snapshot(root) == before


def test_root_defaults_to_the_ssh_users_home(ssh_hosts, site_repo, tmp_path):
    home = Path(os.path.expanduser(f"~{DEPLOY_USER}"))
    marker = "atomic-deploy-home-test"
    entry = host_entry(ssh_hosts[0], "/unused")
    del entry["root"]
    inventory = write_client(
        tmp_path, source=site_repo.path, hosts=[entry], ssh=ssh_hosts[0], shared_dirs=[marker]
    )
    try:
        run_pyinfra(inventory, "-y", check=True)
        assert os.readlink(home / "current") == f"releases/{site_repo.sha_short()}"
        assert (home / "shared" / marker).is_dir()
    finally:
        as_deploy(f"cd {home} && rm -rf current htdocs releases shared deploy-cache .atomic-deploy")


def test_a_converged_host_costs_one_remote_command_per_phase(client, ssh_hosts):
    """The whole deploy root is read once and reused until something changes."""
    c = client()
    c.deploy()
    before = [h.sessions() for h in ssh_hosts]
    c.deploy(env=CHECKS_OFF)
    # one read that also takes the deploy lock, and giving it back: under -y the first host
    # (where concurrent deploys race) is read and locked while deploy.py loads, so every
    # other host's first read may take its lock too
    assert [h.sessions() - b for h, b in zip(ssh_hosts, before, strict=True)] == [2, 2, 2]
    before = [h.sessions() for h in ssh_hosts]
    run_pyinfra(c.inventory, "--dry", check=True, env=CHECKS_OFF)
    assert [h.sessions() - b for h, b in zip(ssh_hosts, before, strict=True)] == [1, 1, 1]


def test_a_redeploy_and_a_rollback_read_each_host_once(client, ssh_hosts):
    """Operations that know what their change left behind spare the next one a re-read."""
    c = client()
    first = c.site.sha_short()
    c.deploy()
    c.site.commit({"VERSION": "2\n"})
    before = [h.sessions() for h in ssh_hosts]
    c.deploy(env=CHECKS_OFF)
    # read + lock, rsync, build, switch, give the lock back
    assert [h.sessions() - b for h, b in zip(ssh_hosts, before, strict=True)] == [5, 5, 5]
    before = [h.sessions() for h in ssh_hosts]
    run_pyinfra(c.inventory, "-y", deploy_file="rollback.py", check=True, env=CHECKS_OFF)
    # the read that names the target while rollback.py loads, taking the lock too (the first
    # host's first), then the switch, which gives the lock back (nothing runs after it here)
    assert [h.sessions() - b for h, b in zip(ssh_hosts, before, strict=True)] == [2, 2, 2]
    for root in c.roots.values():
        assert os.readlink(root / "current") == f"releases/{first}"


def test_a_rollback_costs_the_same_whatever_order_the_hosts_load_in(client, ssh_hosts):
    """--parallel 1 loads rollback.py host after host (in no set order): the first host's read
    is still made first, and no host reads twice."""
    c = client()
    first = c.site.sha_short()
    c.deploy()
    c.site.commit({"VERSION": "2\n"})
    c.deploy()
    before = [h.sessions() for h in ssh_hosts]
    run_pyinfra(c.inventory, "-y", "--parallel", "1", deploy_file="rollback.py", check=True,
                env=CHECKS_OFF)  # fmt: skip
    assert [h.sessions() - b for h, b in zip(ssh_hosts, before, strict=True)] == [2, 2, 2]
    for root in c.roots.values():
        assert os.readlink(root / "current") == f"releases/{first}"
        assert not (root / ".atomic-deploy/lock").exists()


def test_the_switch_guard_holds_even_when_fail_percent_is_overridden(client):
    """--fail-percent 100 lets the other hosts go on; the barrier still stops their switch."""
    c = client()
    old = c.site.sha_short()
    c.deploy()
    c.site.commit({"VERSION": "2\n"})
    broken = c.roots["web3"] / "deploy-cache"
    os.chown(broken, 0, 0)
    proc = c.deploy("--fail-percent", "100", check=False)
    assert proc.returncode != 0
    for root in c.roots.values():
        assert os.readlink(root / "current") == f"releases/{old}"
    os.chown(broken, *_deploy_ids())
