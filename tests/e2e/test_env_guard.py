"""The .env guard end to end: a key the new release's .env.example adds, missing from one
host's shared .env, stops the deploy before any host switches, naming the key, never a value.
"""

from __future__ import annotations

import os

import pytest
from support.client import host_entry, run_pyinfra, write_client
from support.proc import as_deploy
from support.snapshot import tree_snapshot

pytestmark = pytest.mark.e2e
SECRET = "do-not-print-me-7f3a"


def test_a_key_missing_from_one_hosts_env_stops_the_deploy_before_any_switch(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
    for name, root in roots.items():
        extra = "" if name == "web2" else "MAILER_DSN=smtp://x\n"
        as_deploy(f"mkdir -p {root}/shared && printf 'DB_PASSWORD={SECRET}\\n{extra}' "
                  f"> {root}/shared/.env")  # fmt: skip
    v1 = site_repo.commit({".env.example": "# settings\nDB_PASSWORD=\n"})[:12]
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path, ssh=ssh_hosts[0], shared_files=[".env"],
        hosts=[host_entry(h, roots[h.name]) for h in ssh_hosts],
    )  # fmt: skip
    run_pyinfra(inventory, "-y", check=True)  # every .env defines DB_PASSWORD

    site_repo.commit({".env.example": "# settings\nDB_PASSWORD=\nexport MAILER_DSN=''\n"})
    before = {name: tree_snapshot(root) for name, root in roots.items()}
    dry = run_pyinfra(inventory, "--dry", check=True)
    assert "shared/.env on web2" in dry.stderr and "does not define MAILER_DSN" in dry.stderr
    assert "shared/.env on web1" not in dry.stderr
    assert {name: tree_snapshot(root) for name, root in roots.items()} == before

    failed = run_pyinfra(inventory, "-y")
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "web2" in output and "does not define MAILER_DSN" in output
    for text in (dry.stdout, dry.stderr, output):
        assert SECRET not in text  # a value appears nowhere, only key names
    for name, root in roots.items():  # no host switched
        assert os.readlink(root / "current") == f"releases/{v1}", name

    # The key added on web2: the deploy goes on everywhere.
    as_deploy(f"echo 'MAILER_DSN=smtp://y' >> {roots['web2']}/shared/.env")
    run_pyinfra(inventory, "-y", check=True)
    v2 = site_repo.sha_short()
    assert {os.readlink(root / "current") for root in roots.values()} == {f"releases/{v2}"}


def test_an_empty_shared_env_stops_the_deploy(ssh_hosts, deploy_root, site_repo, tmp_path):
    root = deploy_root("web1")
    as_deploy(f"mkdir -p {root}/shared && : > {root}/shared/.env")
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path, ssh=ssh_hosts[0], shared_files=[".env"],
        hosts=[host_entry(ssh_hosts[0], root)],
    )  # fmt: skip
    failed = run_pyinfra(inventory, "-y")
    assert failed.returncode != 0
    assert "shared/.env on web1" in failed.stderr and "is empty" in failed.stderr
    assert not (root / "current").exists()
