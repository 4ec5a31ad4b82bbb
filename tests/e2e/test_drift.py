"""Drift: someone changed a converged host by hand; a rerun names it, fixes it, loses nothing.

Each test: converge, make the drift as the deploy user, check that `--dry` names it and
changes nothing, that a real run corrects it, and that a third run reports no change.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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
class Host:
    """One converged host: its inventory, deploy root, site repo and live release."""

    inventory: Path
    root: Path
    site: SiteRepo
    sha: str

    @property
    def release(self) -> Path:
        return self.root / "releases" / self.sha

    def sh(self, command: str) -> None:
        """Make drift by hand, as the deploy user, from the deploy root."""
        as_deploy(f"cd '{self.root}' && {command}")

    def dry(self) -> str:
        """Run --dry; assert it changed nothing; return what it said."""
        before = tree_snapshot(self.root)
        proc = run_pyinfra(self.inventory, "--dry", check=True)
        assert tree_snapshot(self.root) == before, "--dry changed the host"
        return proc.stderr

    def fix(self) -> str:
        """A real run (must succeed), then a third run that must change nothing."""
        proc = run_pyinfra(self.inventory, "-y", check=True)
        _, again = run_pyinfra_json(self.inventory, "-y", check=True)
        changed = [op["name"] for op in again["results"]["operations"] if op["success"]]
        assert changed == [], f"third run still changed {changed}"
        return proc.stderr


@pytest.fixture
def converged(ssh_hosts: list[SshHost], deploy_root, site_repo, tmp_path) -> Callable[..., Host]:
    def make(before: str = "", **options) -> Host:
        """`before`: a shell command run as deploy in the new root before the first deploy."""
        root = deploy_root("web1")
        if before:
            as_deploy(f"mkdir -p '{root}' && cd '{root}' && {before}")
        inventory = write_client(
            tmp_path / "inv", source=site_repo.path, hosts=[host_entry(ssh_hosts[0], root)],
            ssh=ssh_hosts[0], **options,
        )  # fmt: skip
        run_pyinfra(inventory, "-y", check=True)
        return Host(inventory, root, site_repo, site_repo.sha_short())

    return make


def _two_releases(converged) -> tuple[Host, str]:
    h = converged()
    old = h.sha
    h.sha = h.site.commit({"VERSION": "2\n"})[:12]
    run_pyinfra(h.inventory, "-y", check=True)
    return h, old


# 1. current points at another release, at a missing path, or is missing


@pytest.mark.parametrize(
    ("drift", "was"),
    [
        ("ln -sfn releases/{old} current", "releases/{old}"),
        ("ln -sfn releases/nowhere current", "releases/nowhere"),
        ("rm current", "(none)"),
    ],
)
def test_current_pointing_elsewhere_is_switched_back(converged, drift, was):
    h, old = _two_releases(converged)
    h.sh(drift.format(old=old))
    assert f"current: {was.format(old=old)} -> releases/{h.sha}" in h.dry()
    h.fix()
    assert os.readlink(h.root / "current") == f"releases/{h.sha}"


# 2. htdocs is missing, points elsewhere, or is a real directory


@pytest.mark.parametrize("drift", ["rm htdocs", "ln -sfn current/config htdocs"])
def test_docroot_link_is_restored(converged, drift):
    h = converged()
    h.sh(drift)
    assert "htdocs: " in h.dry() and "-> current/htdocs" in h.dry()
    h.fix()
    assert os.readlink(h.root / "htdocs") == "current/htdocs"


def test_docroot_as_a_real_directory_is_refused_with_migration_help(converged):
    h = converged()
    h.sh("rm htdocs && mkdir htdocs && echo old > htdocs/index.html")
    before = tree_snapshot(h.root)
    proc = run_pyinfra(h.inventory, "-y")
    assert proc.returncode != 0
    assert "htdocs is a real directory" in proc.stderr and "To migrate" in proc.stderr
    assert tree_snapshot(h.root) == before


# 3. a shared link inside the live release was removed or replaced by real content


def test_removed_shared_link_is_restored(converged):
    h = converged()
    h.sh(f"rm releases/{h.sha}/storage")
    assert f"releases/{h.sha}/storage -> ../../shared/storage (was missing)" in h.dry()
    h.fix()
    assert os.readlink(h.release / "storage") == "../../shared/storage"


def test_content_in_place_of_a_shared_link_is_merged_into_shared(converged):
    h = converged()
    h.sh(f"rm releases/{h.sha}/storage && mkdir -p releases/{h.sha}/storage/logs "
         f"&& echo site wrote this > releases/{h.sha}/storage/logs/app.log")  # fmt: skip
    assert "held content: merged into shared/storage" in h.dry()
    h.fix()
    assert (h.root / "shared/storage/logs/app.log").read_text() == "site wrote this\n"
    assert os.readlink(h.release / "storage") == "../../shared/storage"


def test_content_that_would_overwrite_shared_is_moved_to_a_dated_folder(converged):
    h = converged()
    h.sh("echo original > shared/content/seed.txt")
    h.sh(f"rm releases/{h.sha}/content && mkdir releases/{h.sha}/content "
         f"&& echo newer > releases/{h.sha}/content/seed.txt")  # fmt: skip
    said = h.dry()
    assert "would overwrite shared/content: moved to shared-preserved/" in said
    h.fix()
    assert (h.root / "shared/content/seed.txt").read_text() == "original\n"
    [kept] = (h.root / "shared-preserved").glob(f"*-{h.sha}/content/seed.txt")
    assert kept.read_text() == "newer\n"


def test_a_shared_file_replaced_by_a_real_file_is_moved_into_shared(converged):
    # shared files must exist, not empty, before a deploy: this host's admin made one; later
    # someone emptied it and put a real file in the release instead of the link
    h = converged(before="mkdir shared && echo APP=1 > shared/.env", shared_files=[".env"])
    h.sh(f": > shared/.env && rm releases/{h.sha}/.env")
    h.sh(f"echo DB_PASSWORD=x > releases/{h.sha}/.env")
    assert "merged into shared/.env" in h.dry()  # shared/.env was empty: nothing overwritten
    h.fix()
    assert (h.root / "shared/.env").read_text() == "DB_PASSWORD=x\n"
    assert os.readlink(h.release / ".env") == "../../shared/.env"


# 4. a shared dir itself is missing


def test_missing_shared_dir_is_recreated(converged):
    h = converged()
    h.sh("rm -rf shared/cache")
    assert "create shared/cache/" in h.dry()
    h.fix()
    assert (h.root / "current" / "cache").is_dir()


# 5. files inside the live release were edited, added or deleted


def test_hot_fixed_live_release_is_replaced_by_a_clean_copy(converged):
    h = converged()
    h.sh(f"echo '<?php // hot-fix' > releases/{h.sha}/htdocs/index.php "
         f"&& echo new > releases/{h.sha}/htdocs/extra.php "
         f"&& rm releases/{h.sha}/config/general.php")  # fmt: skip
    said = h.dry()
    for change in ("edited: htdocs/index.php", "added: htdocs/extra.php",
                   "deleted: config/general.php"):  # fmt: skip
        assert change in said
    h.fix()
    assert "release " in (h.root / "htdocs/index.php").read_text()  # the clean file again
    assert not (h.release / "htdocs/extra.php").exists()
    assert (h.release / "config/general.php").is_file()
    assert os.readlink(h.root / "current") == f"releases/{h.sha}"
    # the edited tree is kept aside, and reported
    [aside] = (h.root / "releases").glob(f".aside-{h.sha}-*")
    assert (aside / "htdocs/extra.php").read_text() == "new\n"


# 6. a release lost its completion marker or part of its files


@pytest.mark.parametrize(
    ("drift", "said"),
    [
        ("rm releases/{sha}/.atomic-deploy-release", "it has no completion marker"),
        ("rm -r releases/{sha}/htdocs/assets", "deleted: htdocs/assets"),
    ],
)
def test_damaged_live_release_is_rebuilt(converged, drift, said):
    h = converged()
    h.sh(drift.format(sha=h.sha))
    assert said in h.dry()
    h.fix()
    assert (h.release / "htdocs/assets/app.css").is_file()
    assert (h.release / ".atomic-deploy-release").read_text().splitlines()[0] == h.sha


# 7. more releases than N, or directories the tool did not create


def test_extra_releases_are_pruned_and_foreign_ones_reported(converged):
    h = converged(keep_releases=5)
    shas = [h.sha]
    for i in range(3):
        shas.append(h.site.commit({"VERSION": f"{i}\n"})[:12])
        run_pyinfra(h.inventory, "-y", check=True)
    h.sha = shas[-1]
    h.sh("mkdir releases/not-ours && echo x > releases/not-ours/file")
    # the client now keeps two releases
    text = (
        h.inventory.with_suffix(".yml").read_text().replace("keep_releases: 5", "keep_releases: 2")
    )
    h.inventory.with_suffix(".yml").write_text(text)
    said = h.dry()
    assert f"remove releases/{shas[0]} (old; keep 2)" in said
    assert "releases/not-ours: not made by atomic-deploy, left alone" in said
    h.fix()
    assert sorted(p.name for p in (h.root / "releases").iterdir()) == sorted(
        ["not-ours", shas[-1], shas[-2]]
    )


# 8. leftovers of an interrupted run


def test_leftovers_of_an_interrupted_run_are_removed(converged):
    h = converged()
    h.sh(f"cp -a releases/{h.sha} releases/.tmp-{h.sha}-17000000001 "
         "&& ln -s releases/x .current.atomic-deploy-tmp")  # fmt: skip
    said = h.dry()
    assert f"remove releases/.tmp-{h.sha}-17000000001 (leftover of an interrupted run" in said
    assert "remove .current.atomic-deploy-tmp (left by an interrupted switch)" in said
    h.fix()
    assert not (h.root / f"releases/.tmp-{h.sha}-17000000001").exists()
    assert not os.path.lexists(h.root / ".current.atomic-deploy-tmp")


# 10. ownership / permissions, where the client states them


def test_shared_dir_mode_is_restored_where_configured(converged):
    h = converged(shared_mode="2775")
    assert (h.root / "shared/storage").stat().st_mode & 0o7777 == 0o2775
    h.sh("chmod 00700 shared/storage")  # five digits: clears the setgid bit too
    assert "shared/storage: mode 700 -> 2775" in h.dry()
    h.fix()
    assert (h.root / "shared/storage").stat().st_mode & 0o7777 == 0o2775
