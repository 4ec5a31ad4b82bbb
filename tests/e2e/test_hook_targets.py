"""Hooks that run once or on named hosts, end to end over the session's three sshd's.

Each hook appends the host it ran on ($ATOMIC_HOST) to a file under that host's deploy root,
so the test sees exactly where it ran.
"""

from __future__ import annotations

import os

import pytest
from support.client import host_entry, run_pyinfra, write_client
from support.snapshot import tree_snapshot

pytestmark = pytest.mark.e2e
RECORD = 'echo "$ATOMIC_HOST $ATOMIC_RELEASE" >> "$ATOMIC_DEPLOY_ROOT/{}"'


def _ran(roots, name: str) -> dict[str, list[str]]:
    """host -> the lines the hook wrote under its deploy root (hosts where it ran)."""
    out = {}
    for host, root in roots.items():
        if (root / name).exists():
            out[host] = (root / name).read_text().splitlines()
    return out


def test_a_once_hook_runs_on_one_host_and_a_hosts_hook_on_those_named(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
    hooks = {
        "before_switch": [
            {"run": RECORD.format("migrated"), "once": True},
            RECORD.format("everywhere"),
        ],
        "after_switch": [{"run": RECORD.format("warmed"), "hosts": ["web2"]}],
    }
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path, ssh=ssh_hosts[0], hooks=hooks,
        hosts=[host_entry(h, roots[h.name]) for h in reversed(ssh_hosts)],  # not in name order
    )  # fmt: skip
    sha = site_repo.sha_short()

    dry = run_pyinfra(inventory, "--dry", check=True)
    assert "(once: on web1)" in dry.stderr and "(on web2)" in dry.stderr
    assert not any(root.exists() for root in roots.values())  # --dry changed nothing

    run_pyinfra(inventory, "-y", check=True)
    assert _ran(roots, "migrated") == {"web1": [f"web1 {sha}"]}  # once, on the first by name
    assert _ran(roots, "warmed") == {"web2": [f"web2 {sha}"]}
    assert set(_ran(roots, "everywhere")) == set(roots)
    assert {os.readlink(root / "current") for root in roots.values()} == {f"releases/{sha}"}

    # With web1 left out (--limit), the first targeted host by name runs the once hook.
    v2 = site_repo.commit({"VERSION": "2\n"})[:12]
    before = tree_snapshot(roots["web1"])
    run_pyinfra(inventory, "-y", "--limit", "web2", "--limit", "web3", check=True)
    assert tree_snapshot(roots["web1"]) == before
    assert _ran(roots, "migrated") == {"web1": [f"web1 {sha}"], "web2": [f"web2 {v2}"]}
