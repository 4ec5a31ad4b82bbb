"""A run that stops early (Ctrl-C, SIGTERM, a cut connection, a host that cannot populate)
gives back every lock it holds, runs the armed on_failure hooks and leaves every host on a
complete release; only SIGKILL or a lost machine may leave a stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO_ROOT, SiteRepo, host_entry, run_pyinfra, write_client

pytestmark = pytest.mark.e2e

ON_FAILURE = 'echo "$ATOMIC_RELEASE" > "$ATOMIC_DEPLOY_ROOT/on-failure.txt"'


def _three_hosts(ssh_hosts, deploy_root, site_repo: SiteRepo, tmp_path: Path, **options):
    roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path,
        hosts=[host_entry(h, roots[h.name]) for h in ssh_hosts], ssh=ssh_hosts[0], **options,
    )  # fmt: skip
    return roots, inventory


def _popen(inventory: Path, *args: str, cwd: Path = REPO_ROOT) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - argv built here
        [sys.executable, "-m", "pyinfra", "-y", str(inventory), str(REPO_ROOT / "deploy.py"),
         *args],
        cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )  # fmt: skip


def _signal_when(proc: subprocess.Popen[str], pattern: str, signum: int, delay: float) -> str:
    """Send `signum` `delay` s after an output line containing `pattern`; return all output."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # bounded: pyinfra exits, closing its output
        seen.append(line)
        if pattern in line:
            time.sleep(delay)
            proc.send_signal(signum)
            break
    rest, _ = proc.communicate(timeout=120)
    return "".join(seen) + rest


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_deploy_gives_its_locks_back(
    ssh_hosts, deploy_root, site_repo, tmp_path, signum
):
    hooks = {"before_switch": ["sleep 5"], "on_failure": [ON_FAILURE]}
    roots, inventory = _three_hosts(ssh_hosts, deploy_root, site_repo, tmp_path)
    run_pyinfra(inventory, "-y", check=True)
    old = site_repo.sha_short()
    site_repo.commit({"VERSION": "2\n"}, "version 2")
    new = site_repo.sha_short()
    roots, inventory = _three_hosts(ssh_hosts, lambda n: roots[n], site_repo, tmp_path,
                                    hooks=hooks)  # fmt: skip
    proc = _popen(inventory)
    out = _signal_when(proc, "Starting operation: before_switch hooks", signum, 1.5)
    assert proc.returncode == 128 + signum, out[-3000:]  # a deploy that stopped: not success
    assert "Exiting upon user request!" not in out
    for name, root in roots.items():
        assert not (root / ".atomic-deploy/lock").exists(), (name, out[-3000:])
        assert os.readlink(root / "current") == f"releases/{old}", name
        assert (root / "on-failure.txt").read_text() == f"{new}\n", name
    rerun = run_pyinfra(inventory, "-y", check=True)  # no take-over flag needed
    assert "another deploy holds the lock" not in rerun.stderr
    for root in roots.values():
        assert os.readlink(root / "current") == f"releases/{new}"
