"""A run that stops early (Ctrl-C, SIGTERM, a cut connection, a host that cannot populate)
gives back every lock it holds, runs the armed on_failure hooks and leaves every host on a
complete release; only SIGKILL or a lost machine may leave a stale lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.client import host_entry, run_pyinfra, write_client
from support.proc import REPO_ROOT, as_deploy, kill_tree
from support.site import SiteRepo
from support.sshd import start_sshd

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



def test_a_second_ctrl_c_stops_at_once_and_still_gives_the_locks_back(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    roots, inventory = _three_hosts(ssh_hosts, deploy_root, site_repo, tmp_path)
    run_pyinfra(inventory, "-y", check=True)
    old = site_repo.sha_short()
    site_repo.commit({"VERSION": "2\n"}, "version 2")
    hooks = {"before_switch": ["sleep 20"]}
    roots, inventory = _three_hosts(ssh_hosts, lambda n: roots[n], site_repo, tmp_path,
                                    hooks=hooks)  # fmt: skip
    proc = _popen(inventory)
    assert proc.stdout is not None
    seen = []
    started = time.monotonic()
    for line in proc.stdout:  # bounded: pyinfra exits, closing its output
        seen.append(line)
        if "Starting operation: before_switch hooks" in line:
            time.sleep(1)
            proc.send_signal(signal.SIGINT)
        if "send it again to stop at once" in line:
            proc.send_signal(signal.SIGINT)
            break
    out = "".join(seen) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out[-3000:]
    assert time.monotonic() - started < 15, "did not stop at once"  # the hooks sleep 20 s
    for name, root in roots.items():
        assert not (root / ".atomic-deploy/lock").exists(), (name, out[-3000:])
        assert os.readlink(root / "current") == f"releases/{old}", name

@pytest.mark.parametrize("on_failure", [[], [ON_FAILURE]], ids=["no-hooks", "on_failure"])
def test_a_cut_connection_to_one_host_gives_the_others_locks_back(
    ssh_hosts, deploy_root, site_repo, tmp_path, test_run_dir, on_failure
):
    key, known_hosts = ssh_hosts[0].key, ssh_hosts[0].known_hosts
    workdir = test_run_dir / "cut-one"
    workdir.mkdir(exist_ok=True)
    taken = {h.port for h in ssh_hosts}
    # web9: last by name, so the first host (where the lock is raced for) keeps its connection
    host_key = key.parent / "ssh_host_ed25519_key"
    server = start_sshd(workdir, "web9", client_key=key, host_key=host_key,
                        known_hosts=known_hosts, skip_ports=taken)  # fmt: skip
    try:
        hosts = [ssh_hosts[0], ssh_hosts[1], server.host]
        roots = {h.name: deploy_root(h.name) for h in hosts}

        def inventory_with(**options: object) -> Path:
            return write_client(
                tmp_path / "inv", source=site_repo.path,
                hosts=[host_entry(h, roots[h.name]) for h in hosts], ssh=ssh_hosts[0], **options,
            )  # fmt: skip

        run_pyinfra(inventory_with(), "-y", check=True)
        old = site_repo.sha_short()
        site_repo.commit({"VERSION": "2\n"}, "version 2")
        new = site_repo.sha_short()
        hooks = {"before_switch": ["sleep 4"], "on_failure": on_failure}
        proc = _popen(inventory_with(hooks=hooks))
        assert proc.stdout is not None
        out = []
        for line in proc.stdout:  # bounded: pyinfra exits, closing its output
            out.append(line)
            if "Starting operation: before_switch hooks" in line:
                time.sleep(1)
                kill_tree(server.proc.pid)
                break
        out.append(proc.communicate(timeout=120)[0])
        text = "".join(out)
        assert proc.returncode != 0, text[-3000:]
        for name in (ssh_hosts[0].name, ssh_hosts[1].name):  # reachable: locks given back
            assert not (roots[name] / ".atomic-deploy/lock").exists(), (name, text[-3000:])
            if on_failure:
                assert (roots[name] / "on-failure.txt").read_text() == f"{new}\n", name
        for root in roots.values():
            assert os.readlink(root / "current") == f"releases/{old}"
        # the two reachable hosts deploy again without any take-over
        limited = run_pyinfra(inventory_with(), "-y", "--limit", ssh_hosts[0].name,
                              "--limit", ssh_hosts[1].name)  # fmt: skip
        assert limited.returncode == 0, limited.stderr[-3000:]
        for name in (ssh_hosts[0].name, ssh_hosts[1].name):
            assert os.readlink(roots[name] / "current") == f"releases/{new}"
    finally:
        server.stop()


def _someone_elses_live_lock(root: Path) -> str:
    """Lock `root` as a deploy running now would (this test's process: alive, not stale)."""
    started = int(time.time())
    owner = (
        f"token=someone-else\nuser=alice\nhost={socket.gethostname()}\npid={os.getpid()}\n"
        f"started={started}\nstarted_at=now\nrelease=abcdef123456\n"
    )
    lock = root / ".atomic-deploy/lock"
    as_deploy(f"mkdir '{lock}' && printf %s '{owner}' > '{lock}/owner'")
    return owner


# A run under -y takes the first host's lock while the deploy file loads (and the other hosts'
# with their first read): however it stops after that, it gives back every lock it took.
STOPS = ["a later host is locked by another deploy", "a later deploy file fails to load"]


@pytest.mark.parametrize("deploy_file", ["deploy.py", "rollback.py"])
@pytest.mark.parametrize("stop", STOPS, ids=["locked-elsewhere", "load-fails"])
def test_a_run_stopped_after_taking_locks_while_loading_gives_them_back(
    ssh_hosts, deploy_root, site_repo, tmp_path, deploy_file, stop
):
    roots, inventory = _three_hosts(ssh_hosts, deploy_root, site_repo, tmp_path)
    run_pyinfra(inventory, "-y", check=True)
    old = site_repo.sha_short()
    site_repo.commit({"VERSION": "2\n"}, "version 2")
    run_pyinfra(inventory, "-y", check=True)
    new = site_repo.sha_short()
    first, last = ssh_hosts[0].name, ssh_hosts[-1].name
    extra: list[str] = []
    owner = None
    if stop == STOPS[0]:
        owner = _someone_elses_live_lock(roots[last])
    else:  # loaded after deploy_file on every host: the first host's lock is ours by then
        stopper = tmp_path / "stop_loading.py"
        stopper.write_text(
            "from pyinfra import host\n"
            "from operations.context import run_context\n"
            "held = sorted(run_context(host.state).held)\n"
            "raise RuntimeError(f'stopped while loading; locks held: {held}')\n"
        )
        extra = [str(stopper)]
    proc = run_pyinfra(inventory, "-y", *extra, deploy_file=deploy_file)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    if owner is not None:
        assert "another deploy holds the lock: alice@" in out, out[-3000:]
        assert (roots[last] / ".atomic-deploy/lock/owner").read_text() == owner  # not ours
    else:
        assert f"locks held: ['{first}'" in out, out[-3000:]  # taken while loading
    for name, root in roots.items():
        if name != last or owner is None:
            assert not (root / ".atomic-deploy/lock").exists(), (name, out[-3000:])
        assert os.readlink(root / "current") == f"releases/{new}", name  # nothing switched
    assert old != new
