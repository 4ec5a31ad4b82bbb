"""writable_dirs end to end: the site's own folders in each release (Craft's web/cpresources).

The real pyinfra CLI over the session's sshd's: a write into the live release's writable dir
is no drift (a rerun changes nothing), and a new release starts with the build's content of
that folder, not with what the site wrote into the previous one.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from support.client import host_entry, run_pyinfra, run_pyinfra_json, write_client
from support.proc import as_deploy
from support.site import SiteRepo
from support.sshd import SshHost

pytestmark = pytest.mark.e2e
WRITABLE = "htdocs/cpresources"


def _client(ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, tmp_path: Path, **options):
    hosts = ssh_hosts[:2]
    roots = {h.name: deploy_root(h.name) for h in hosts}
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path, ssh=hosts[0],
        hosts=[host_entry(h, roots[h.name]) for h in hosts],
        writable_dirs=[WRITABLE], writable_mode="2775", **options,
    )  # fmt: skip
    return inventory, roots


@pytest.mark.parametrize("copy_mode", ["copy", "hardlink"])
def test_writes_into_a_writable_dir_are_no_drift_and_a_new_release_starts_from_the_build(
    ssh_hosts, deploy_root, site_repo, tmp_path, copy_mode
):
    v1 = site_repo.commit({f"{WRITABLE}/built.css": "from the build\n"})[:12]
    inventory, roots = _client(ssh_hosts, deploy_root, site_repo, tmp_path, copy_mode=copy_mode)
    run_pyinfra(inventory, "-y", check=True)

    for name, root in roots.items():
        folder = root / "releases" / v1 / WRITABLE
        assert (folder / "built.css").read_text() == "from the build\n", name
        assert stat.S_IMODE(folder.stat().st_mode) == 0o2775, name
        # its own copy, even when the rest of the release is hard links to deploy-cache/
        cached = root / "deploy-cache" / WRITABLE / "built.css"
        assert (folder / "built.css").stat().st_ino != cached.stat().st_ino, name
        # The site writes there at run time, as the SSH user (the web server's group would too).
        as_deploy(f"echo generated > {root}/current/{WRITABLE}/asset-1.css")

    _proc, data = run_pyinfra_json(inventory, "-y", check=True)
    assert data["results"]["totals"]["success"] == 0  # a write there is not a hot-fix
    status = run_pyinfra(inventory, "--dry", deploy_file="status.py", check=True)
    assert f"writable dirs: {WRITABLE}" in status.stdout
    assert "drift: none" in status.stdout, status.stdout
    for root in roots.values():
        assert (root / "current" / WRITABLE / "asset-1.css").read_text() == "generated\n"

    v2 = site_repo.commit({"VERSION": "2\n"})[:12]
    run_pyinfra(inventory, "-y", check=True)
    for name, root in roots.items():
        assert os.readlink(root / "current") == f"releases/{v2}", name
        new = root / "releases" / v2 / WRITABLE
        assert sorted(p.name for p in new.iterdir()) == ["built.css"], name  # not shared
        assert not new.is_symlink() and stat.S_IMODE(new.stat().st_mode) == 0o2775
        # the old release keeps what the site wrote there
        assert (root / "releases" / v1 / WRITABLE / "asset-1.css").exists(), name


def test_a_writable_dir_removed_on_the_server_is_made_again(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    sha = site_repo.sha_short()  # the upload has nothing there: the folder starts empty
    inventory, roots = _client(ssh_hosts, deploy_root, site_repo, tmp_path)
    run_pyinfra(inventory, "-y", check=True)
    root = next(iter(roots.values()))
    folder = root / "releases" / sha / WRITABLE
    assert folder.is_dir() and not any(folder.iterdir())
    as_deploy(f"rmdir {folder}")

    status = run_pyinfra(inventory, "--dry", deploy_file="status.py", check=True)
    assert f"writable dir releases/{sha}/{WRITABLE} is missing" in status.stdout
    dry = run_pyinfra(inventory, "--dry", check=True)
    assert f"releases/{sha}/{WRITABLE}: create (writable dir)" in dry.stderr
    assert not folder.exists()  # --dry changed nothing
    run_pyinfra(inventory, "-y", check=True)
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o2775
    _proc, data = run_pyinfra_json(inventory, "-y", check=True)
    assert data["results"]["totals"]["success"] == 0
