"""The test fixtures themselves work: sshd's, pyinfra over ssh, deploy roots, repo, snapshots."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support.client import CLIENT_PY, host_entry, write_client
from support.proc import DEPLOY_USER, as_deploy, run
from support.site import SiteRepo
from support.snapshot import tree_snapshot
from support.sshd import SshHost


@pytest.mark.e2e
def test_each_sshd_accepts_the_client_key_with_strict_host_keys(ssh_hosts: list[SshHost]) -> None:
    assert [h.name for h in ssh_hosts] == ["web1", "web2", "web3"]
    assert len({h.port for h in ssh_hosts}) == 3
    for host in ssh_hosts:
        before = host.connections()
        assert host.ssh("id -un").stdout.strip() == DEPLOY_USER
        assert host.connections() == before + 1


@pytest.mark.e2e
def test_pyinfra_runs_a_command_on_all_three_hosts(
    ssh_hosts: list[SshHost], tmp_path: Path
) -> None:
    hosts = [(h.name, h.pyinfra_data()) for h in ssh_hosts]
    (tmp_path / "inv.py").write_text(f"hosts = {hosts!r}\n")
    before = [h.connections() for h in ssh_hosts]
    proc = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "pyinfra", "-y", "inv.py", "exec", "--", "true"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # pyinfra keeps one ssh connection per host for the whole run
    assert [h.connections() for h in ssh_hosts] == [b + 1 for b in before]


def test_deploy_root_is_fresh_and_creatable_by_deploy(
    deploy_root: Callable[[str], Path],
) -> None:
    root = deploy_root("web1")
    assert root.is_absolute() and not root.exists()
    assert root.parent.owner() == DEPLOY_USER
    assert deploy_root("web1") != root  # each call is fresh
    as_deploy(f"mkdir -p {root}/releases")
    assert (root / "releases").owner() == DEPLOY_USER


def test_site_repo_commits(site_repo: SiteRepo) -> None:
    first = site_repo.head()
    assert len(first) == 40 and site_repo.sha_short() == first[:12]
    assert "VERSION" in site_repo.git("ls-files").split()
    second = site_repo.commit({"VERSION": "2\n", "content/seed.txt": None}, "release 2")
    assert second != first and second == site_repo.head()
    assert not (site_repo.path / "content/seed.txt").exists()
    assert site_repo.git("status", "--porcelain") == ""


def test_write_client_files(tmp_path: Path, ssh_hosts: list[SshHost]) -> None:
    inventory = write_client(
        tmp_path / "c",
        source=tmp_path / "site",
        hosts=[host_entry(ssh_hosts[0], tmp_path / "root")],
        keep_releases=3,
        ssh=ssh_hosts[0],
    )
    assert inventory.read_text() == CLIENT_PY
    data = yaml.safe_load((tmp_path / "c" / "client.yml").read_text())
    assert list(data) == ["source", "keep_releases", "ssh", "hosts"]
    assert data["ssh"] == {
        "user": "deploy",
        "key": str(ssh_hosts[0].key),
        "known_hosts": str(ssh_hosts[0].known_hosts),
    }
    assert data["hosts"] == [
        {"name": "web1", "hostname": "127.0.0.1", "port": ssh_hosts[0].port,
         "root": str(tmp_path / "root")},
    ]  # fmt: skip


def test_tree_snapshot_sees_content_mode_mtime_and_links(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    (tmp_path / "link").symlink_to("d")
    snap = tree_snapshot(tmp_path)
    assert snap == tree_snapshot(tmp_path)
    assert snap["link"].type == "link" and snap["link"].content == "d"
    assert "link/f" not in snap  # symlinks are not followed

    st = (tmp_path / "d" / "f").stat()
    os.utime(tmp_path / "d" / "f", ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # a bare touch
    assert tree_snapshot(tmp_path) != snap
    run(["chmod", "600", str(tmp_path / "d" / "f")])
    assert tree_snapshot(tmp_path)["d/f"].mode == 0o600
