"""The upload's master connection (operations/ssh_master.py) against a real sshd: rsync's ssh
rides on it instead of connecting, and it ends with the run, however the run ends."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from operations import ssh_master
from operations.rsync import CONTROL_PATH, ssh_command


def _data(host) -> dict:
    data = host.pyinfra_data()
    return {**data, "ssh_strict_host_key_checking": "yes"}


def _ssh_true(host, data: dict) -> subprocess.CompletedProcess[str]:
    argv = [*shlex.split(ssh_command(data)), host.hostname, "true"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603


def _wait_for(path: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


def test_rsyncs_ssh_opens_a_session_on_the_master_instead_of_connecting(ssh_hosts):
    host = ssh_hosts[0]
    hosts = [(host.name, _data(host))]
    ssh_master.open_masters(hosts, ["pyinfra", "inv.py", "deploy.py"])
    data = hosts[0][1]
    path = data[CONTROL_PATH]
    assert _wait_for(path), "the master never came up"
    assert Path(path).parent.stat().st_mode & 0o077 == 0  # only this user reaches the socket
    connections, sessions = host.connections(), host.sessions()
    assert _ssh_true(host, data).returncode == 0
    assert (host.connections(), host.sessions()) == (connections, sessions + 1)


def test_without_a_master_rsyncs_ssh_connects_by_itself(ssh_hosts, tmp_path):
    host = ssh_hosts[0]
    data = {**_data(host), CONTROL_PATH: str(tmp_path / "no-master-here")}
    connections = host.connections()
    assert _ssh_true(host, data).returncode == 0
    assert host.connections() == connections + 1


def test_no_master_with_limit_or_for_local_hosts(ssh_hosts):
    hosts = [("@local", {}), (ssh_hosts[0].name, _data(ssh_hosts[0]))]
    ssh_master.open_masters(hosts, ["pyinfra", "inv.py", "deploy.py", "--limit", "web2"])
    assert all(CONTROL_PATH not in data for _, data in hosts)
    # more hosts than cores: the handshakes would compete with pyinfra's own start
    many = [(f"web{i}", _data(ssh_hosts[0])) for i in range((os.cpu_count() or 1) + 1)]
    connections = ssh_hosts[0].connections()
    ssh_master.open_masters(many, ["pyinfra", "inv.py", "deploy.py"])
    assert all(CONTROL_PATH not in data for _, data in many)
    assert ssh_hosts[0].connections() == connections


CHILD = """
import sys, time
sys.path.insert(0, {repo!r})
from operations import ssh_master
hosts = [({name!r}, {data!r})]
ssh_master.open_masters(hosts, ["pyinfra", "inv.py", "deploy.py"])
print(hosts[0][1]["upload_control_path"], flush=True)
sys.stdin.readline()  # the test says when this run ends
"""


def _run_child(host) -> tuple[subprocess.Popen[str], str]:
    code = CHILD.format(repo=str(Path(__file__).parents[2]), name=host.name, data=_data(host))
    proc = subprocess.Popen(  # noqa: S603 - this Python, a fixed script
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    path = proc.stdout.readline().strip()
    assert _wait_for(path), "the master never came up"
    return proc, path


def _master_gone(path: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def test_the_master_ends_with_the_run(ssh_hosts):
    proc, path = _run_child(ssh_hosts[0])
    proc.communicate("\n", timeout=30)  # the run ends normally
    assert proc.returncode == 0
    assert _master_gone(path) and not os.path.exists(os.path.dirname(path))


def test_the_master_ends_even_when_the_run_is_killed(ssh_hosts):
    proc, path = _run_child(ssh_hosts[0])
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _master_gone(path)  # the socket goes with the master
    shutil.rmtree(os.path.dirname(path))  # the killed run could not remove its folder
