"""All hosts switch or none, whatever the working directory: pyinfra loads config.py
(FAIL_PERCENT = 0) only from there, so the inventory sees to it; and a switch held back by
the all-hosts barrier says why, per host, instead of pyinfra's "No changes"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.client import host_entry, write_client
from support.proc import REPO_ROOT, as_deploy

pytestmark = pytest.mark.e2e


def _fresh_hosts_one_cannot_populate(ssh_hosts, deploy_root, site_repo, tmp_path):
    """Three fresh roots; on the second, releases/ belongs to root: the copy cannot land."""
    roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
    broken = ssh_hosts[1].name
    as_deploy(f"mkdir -p '{roots[broken]}'")
    (roots[broken] / "releases").mkdir(mode=0o755)  # made by root (the test), not deploy
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path,
        hosts=[host_entry(h, roots[h.name]) for h in ssh_hosts], ssh=ssh_hosts[0],
    )  # fmt: skip
    return roots, broken, inventory


def _pyinfra_elsewhere(inventory: Path, cwd: Path, *args: str, stdin: str | None = None):
    """pyinfra with the repo's deploy.py, started from `cwd` (not the repo: no config.py)."""
    assert not (cwd / "config.py").exists()
    return subprocess.run(  # noqa: S603 - argv built here
        [sys.executable, "-m", "pyinfra", str(inventory), str(REPO_ROOT / "deploy.py"), *args],
        cwd=cwd, input=stdin or "", capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200",
             "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip


def _nothing_switched(roots: dict[str, Path], release: str) -> None:
    for name, root in roots.items():
        assert not (root / "current").is_symlink(), name
        assert not (root / "htdocs").is_symlink(), name  # no link pointing at nothing


def test_from_another_directory_a_host_that_cannot_populate_stops_every_switch(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    roots, broken, inventory = _fresh_hosts_one_cannot_populate(
        ssh_hosts, deploy_root, site_repo, tmp_path
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _pyinfra_elsewhere(inventory, elsewhere, "-y")
    assert proc.returncode != 0
    _nothing_switched(roots, site_repo.sha_short())
    assert "Over 0% of hosts failed" in proc.stderr, proc.stderr[-3000:]
    release = site_repo.sha_short()
    assert (
        f'No host switched current: every host must be ready first, and {broken} failed at '
        f'"release {release} populated"'
    ) in proc.stderr, proc.stderr[-3000:]
    for name, root in roots.items():  # no lock left anywhere
        assert not (root / ".atomic-deploy/lock").exists(), name


def test_a_switch_held_back_by_the_barrier_says_why_on_each_host(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    roots, broken, inventory = _fresh_hosts_one_cannot_populate(
        ssh_hosts, deploy_root, site_repo, tmp_path
    )
    # Without -y pyinfra asks "continue?" when a host fails; answering yes goes on with the
    # others, up to the switch: the barrier holds it back, and says why.
    proc = _pyinfra_elsewhere(inventory, tmp_path, stdin="\n\n\n")
    _nothing_switched(roots, site_repo.sha_short())
    release = site_repo.sha_short()
    why = (f'current not switched (held back): no host switches until every host is ready, '
           f'and {broken} failed at "release {release} populated"')  # fmt: skip
    for name in roots:
        if name != broken:
            assert f"[{name}] {why}" in proc.stderr, proc.stderr[-4000:]
            assert f"[{name}] htdocs not linked: current does not exist yet" in proc.stderr
