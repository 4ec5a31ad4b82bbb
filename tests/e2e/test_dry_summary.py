"""A dry run ends with our own summary, per host, in words: what would switch, what else would
change, or why the deploy would stop. It is the last thing printed, and it is true."""

from __future__ import annotations

import os

import pytest
from support.client import host_entry, run_pyinfra, write_client
from support.proc import as_deploy
from support.snapshot import tree_snapshot

pytestmark = pytest.mark.e2e

HEADER = "--> Dry run, nothing was changed. What the run would do:"


def _summary(stderr: str) -> list[str]:
    """The summary's lines, checking that nothing follows it."""
    assert HEADER in stderr, stderr[-3000:]
    return [line.strip() for line in stderr.rsplit(HEADER, 1)[1].strip().splitlines()]


def test_the_dry_run_summary_names_the_switch_per_host(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path,
        hosts=[host_entry(h, roots[h.name]) for h in ssh_hosts], ssh=ssh_hosts[0],
    )  # fmt: skip
    run_pyinfra(inventory, "-y", check=True)
    old = site_repo.sha_short()

    converged = run_pyinfra(inventory, "--dry", check=True)
    assert _summary(converged.stderr) == [
        f"{name}: current stays at releases/{old}; nothing else would change" for name in roots
    ]

    site_repo.commit({"VERSION": "2\n"}, "version 2")
    new = site_repo.sha_short()
    before = {name: tree_snapshot(root) for name, root in roots.items()}
    proc = run_pyinfra(inventory, "--dry", check=True)
    lines = _summary(proc.stderr)
    assert len(lines) == len(roots)
    for name, line in zip(sorted(roots), lines, strict=True):
        assert line.startswith(f"{name}: current releases/{old} -> releases/{new}; also: ")
        assert f"release {new} populated" in line
    assert {name: tree_snapshot(root) for name, root in roots.items()} == before
    for root in roots.values():
        assert os.readlink(root / "current") == f"releases/{old}"


def test_the_dry_run_summary_says_which_host_would_stop(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path, shared_files=[".env"],
        hosts=[host_entry(h, roots[h.name]) for h in ssh_hosts], ssh=ssh_hosts[0],
    )  # fmt: skip
    for name, root in roots.items():
        if name != "web2":
            as_deploy(f"mkdir -p '{root}/shared' && echo A=1 > '{root}/shared/.env'")
    proc = run_pyinfra(inventory, "--dry")
    lines = _summary(proc.stderr)
    assert lines[0] == "the deploy would stop, so no host would switch:"
    assert len(lines) == 2
    assert lines[1].startswith("would stop: web2: shared/.env is missing on web2")
    for root in roots.values():
        assert not (root / "current").exists()
