"""copy_mode: copy (default), hardlink (cp -al) and reflink (falls back to copy, with a notice).

Each mode deploys twice (one file changed) and serves the right content; hardlink releases share
inodes with deploy-cache/ and each other (less disk), and a hot-fix written in place into a
hard-linked live release is still found by the manifest and replaced by a clean copy.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from support.client import host_entry, run_pyinfra, write_client
from support.proc import as_deploy

pytestmark = pytest.mark.e2e

BIG = "htdocs/assets/big.bin"


def _deploy_twice(mode, ssh_hosts, deploy_root, site_repo, tmp_path):
    h = ssh_hosts[0]
    root = deploy_root(f"{h.name}-{mode}")
    inventory = write_client(
        tmp_path / mode, source=site_repo.path, hosts=[host_entry(h, root)], ssh=h,
        copy_mode=mode,
    )  # fmt: skip
    site_repo.commit({BIG: "x" * 400_000, "VERSION": f"1 {mode}\n"})
    first = site_repo.sha_short()
    proc1 = run_pyinfra(inventory, "-y", check=True)
    site_repo.commit({"VERSION": f"2 {mode}\n"})
    second = site_repo.sha_short()
    proc2 = run_pyinfra(inventory, "-y", check=True)
    assert os.readlink(root / "current") == f"releases/{second}"
    assert (root / "current" / "VERSION").read_text() == f"2 {mode}\n"
    assert (root / "releases" / first / "VERSION").read_text() == f"1 {mode}\n"
    assert (root / "current" / BIG).read_text() == "x" * 400_000
    return root, first, second, inventory, proc1.stderr + proc2.stderr


def _du_kb(*paths):
    out = subprocess.run(["du", "-sk", *map(str, paths)], capture_output=True, text=True)
    return [int(line.split()[0]) for line in out.stdout.splitlines()]


def test_copy_and_hardlink_both_deploy_and_hardlink_saves_disk(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    root_c, _, second_c, _, _ = _deploy_twice("copy", ssh_hosts, deploy_root, site_repo, tmp_path)
    root_h, first, second, _, _ = _deploy_twice(
        "hardlink", ssh_hosts, deploy_root, site_repo, tmp_path
    )
    big_c = (root_c / "releases" / second_c / BIG).stat()
    assert big_c.st_nlink == 1  # copy: independent
    big = (root_h / "releases" / second / BIG).stat()
    assert big.st_ino == (root_h / "deploy-cache" / BIG).stat().st_ino
    assert big.st_ino == (root_h / "releases" / first / BIG).stat().st_ino
    # the second release's own disk use, counted after the cache and the first release
    extra_c = _du_kb(root_c / "deploy-cache", *sorted((root_c / "releases").iterdir()))[-1]
    extra_h = _du_kb(root_h / "deploy-cache", *sorted((root_h / "releases").iterdir()))
    assert max(extra_h[1:]) < 100 < extra_c


def test_a_hot_fix_in_a_hardlinked_live_release_is_detected_and_replaced(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    root, first, second, inventory, _ = _deploy_twice(
        "hardlink", ssh_hosts, deploy_root, site_repo, tmp_path
    )
    # In place (same inode): changes the live release, deploy-cache/ and the old release alike.
    as_deploy(f"printf 'hot-fix' >> '{root}/current/{BIG}'")
    assert (root / "releases" / first / BIG).read_text().endswith("hot-fix")  # the hazard
    dry = run_pyinfra(inventory, "--dry", check=True)
    assert f"edited: {BIG}" in dry.stderr
    run_pyinfra(inventory, "-y", check=True)
    live = root / "current" / BIG
    assert live.read_text() == "x" * 400_000
    assert os.readlink(root / "current") == f"releases/{second}"
    edited = list((root / "releases").glob(f".aside-{second}-*"))
    assert len(edited) == 1 and (edited[0] / BIG).read_text().endswith("hot-fix")


def test_reflink_falls_back_to_copy_with_a_notice(ssh_hosts, deploy_root, site_repo, tmp_path):
    # The test roots live on ext4 or tmpfs, which can't clone: the fallback is what runs here.
    probe = tmp_path / "probe"
    probe.write_text("x")
    can_clone = subprocess.run(
        ["cp", "--reflink=always", str(probe), str(tmp_path / "clone")], capture_output=True
    ).returncode == 0  # fmt: skip
    root, _, second, _, output = _deploy_twice(
        "reflink", ssh_hosts, deploy_root, site_repo, tmp_path
    )
    assert (root / "releases" / second / BIG).stat().st_nlink == 1
    if not can_clone:
        assert "copy_mode reflink" in output and "copied instead" in output
