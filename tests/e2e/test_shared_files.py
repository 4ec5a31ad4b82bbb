"""Shared files (.env) end to end: never created empty, never seeded, required before any
switch, provided from the client file (shared_sources), described by key names only.

The real pyinfra CLI over three real sshd's on 127.0.0.1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from support.client import CHECKS_OFF, host_entry, run_pyinfra, run_pyinfra_json, write_client
from support.snapshot import tree_snapshot
from support.sshd import SshHost

pytestmark = pytest.mark.e2e

MARK = "Vq3MarkerValue8x"  # a distinctive value: must never show up in any output


def _changed(results: dict) -> dict[str, list[str]]:
    """Operation name -> hosts where it changed something, from `-y --json` results."""
    return {op["name"]: op["success"] for op in results["results"]["operations"] if op["success"]}


def _set_sources(inventory: Path, sources: dict[str, str]) -> None:
    """Add shared_sources to the client file behind `inventory`."""
    yml = inventory.with_suffix(".yml")
    doc = yaml.safe_load(yml.read_text())
    doc["shared_sources"] = sources
    yml.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture
def env_client(ssh_hosts: list[SshHost], deploy_root, site_repo, tmp_path: Path):
    """Three fresh hosts for a client with shared_files: [.env] (no shared_sources yet)."""
    roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
    hosts = [host_entry(h, roots[h.name]) for h in ssh_hosts]
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path, hosts=hosts, ssh=ssh_hosts[0],
        shared_files=[".env"],
    )  # fmt: skip
    return inventory, roots


def test_a_missing_env_stops_every_host_until_shared_sources_provides_it(
    env_client, ssh_hosts, site_repo
):
    inventory, roots = env_client
    sha = site_repo.sha_short()

    dry = run_pyinfra(inventory, "--dry", check=True)
    for name in roots:  # every host says, in words, that the deploy would stop
        said = f"[{name}] the deploy would stop here: shared/.env is missing on {name}"
        assert said in dry.stderr
    assert not any(r.exists() for r in roots.values())

    refused = run_pyinfra(inventory, "-y")
    assert refused.returncode != 0
    assert "shared/.env is missing on web" in refused.stderr
    assert "scp local.env deploy@127.0.0.1:" in refused.stderr  # how to provide it
    assert "shared_sources" in refused.stderr
    for root in roots.values():  # refused before the switch: no host has a `current`
        assert not os.path.lexists(root / "current")
        assert not (root / "releases" / sha).exists()  # nor built a release
        assert not (root / "shared" / ".env").exists()  # nor made an empty .env

    secrets = inventory.parent / "secrets"
    secrets.mkdir()
    content = f"CRAFT_ENVIRONMENT=production\nCRAFT_DB_PASSWORD={MARK}\n"
    (secrets / "client.env").write_text(content)
    _set_sources(inventory, {".env": "secrets/client.env"})  # relative to the client file
    proc = run_pyinfra(inventory, "-y", check=True)
    assert MARK not in proc.stdout + proc.stderr
    for name, root in roots.items():
        env = root / "shared" / ".env"
        assert env.read_text() == content, name
        assert env.stat().st_mode & 0o777 == 0o600
        assert os.readlink(root / "current") == f"releases/{sha}"
        assert (root / "current" / ".env").read_text() == content  # linked into the release
        assert not list((root / "shared").glob(".*atomic-deploy-tmp"))  # no temp left

    _, again = run_pyinfra_json(inventory, "-y", check=True)
    assert _changed(again) == {}
    # converged: checking and comparing .env cost no remote command of their own (one read
    # that takes the deploy lock, and giving it back)
    before = [h.sessions() for h in ssh_hosts]
    run_pyinfra(inventory, "-y", check=True, env=CHECKS_OFF)
    assert [h.sessions() - b for h, b in zip(ssh_hosts, before, strict=True)] == [2, 2, 2]


def test_a_changed_env_is_shown_by_key_names_only_then_replaced(env_client):
    inventory, roots = env_client
    local = inventory.parent / "client.env"
    local.write_text(f"KEEP=same\nOLD_KEY={MARK}old\nDB_PASSWORD={MARK}1\n")
    _set_sources(inventory, {".env": str(local)})
    run_pyinfra(inventory, "-y", check=True)

    new = f"KEEP=same\nDB_PASSWORD={MARK}2\nNEW_KEY={MARK}new\n"
    local.write_text(new)
    before = {n: tree_snapshot(r) for n, r in roots.items()}
    dry = run_pyinfra(inventory, "--dry", "-vv", check=True)
    assert {n: tree_snapshot(r) for n, r in roots.items()} == before
    for name in roots:
        assert (
            f"[{name}] shared/.env: replace with {local} "
            "(keys added: NEW_KEY; removed: OLD_KEY; changed: DB_PASSWORD)"
        ) in dry.stderr
    assert MARK not in dry.stdout + dry.stderr

    # -vv prints every command run: the content is in none of them
    proc = run_pyinfra(inventory, "-y", "-vv", check=True)
    assert MARK not in proc.stdout + proc.stderr
    for root in roots.values():
        env = root / "shared" / ".env"
        assert env.read_text() == new and env.stat().st_mode & 0o777 == 0o600
    _, again = run_pyinfra_json(inventory, "-y", check=True)
    assert _changed(again) == {}


def test_a_host_that_lost_its_env_keeps_every_host_on_the_old_release(env_client, site_repo):
    """The check is a switch barrier: it holds even when --fail-percent lets hosts go on."""
    inventory, roots = env_client
    for root in roots.values():  # set up by hand, the way an admin would
        (root / "shared").mkdir(parents=True)
        (root / "shared" / ".env").write_text("A=1\n")
        os.system(f"chown -R deploy:deploy '{root}'")  # noqa: S605 - test path, no input
    old = site_repo.sha_short()
    run_pyinfra(inventory, "-y", check=True)
    (roots["web2"] / "shared" / ".env").unlink()
    site_repo.commit({"VERSION": "2\n"})
    proc = run_pyinfra(inventory, "-y", "--fail-percent", "100")
    assert proc.returncode != 0
    assert "shared/.env is missing on web2" in proc.stderr
    for root in roots.values():
        assert os.readlink(root / "current") == f"releases/{old}"
