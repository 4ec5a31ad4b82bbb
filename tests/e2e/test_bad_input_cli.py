"""Mistakes a new user makes on the command line or in the client file, through the real CLI.

`python -m pyinfra ... --dry` from the repo root, as a user types it. Each mistake must stop
the run with our own short message (`atomic-deploy: ...`, exit 2) while pyinfra loads the
inventory: no traceback, and no connection. A plain TCP listener stands in for the host, so
"no connection" is checked without an sshd (nothing is contacted before the error).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.client import CHECKS_OFF, CLIENT_PY, run_pyinfra
from support.proc import REPO_ROOT
from support.site import SiteRepo

pytestmark = pytest.mark.e2e


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port on 127.0.0.1 that accepts connections (and remembers them) but never answers."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.setblocking(False)
        yield sock


def _port(listener: socket.socket) -> int:
    return listener.getsockname()[1]


def _connected(listener: socket.socket) -> bool:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def _client(folder: Path, doc: dict) -> Path:
    """`folder/client.yml` (with a `site/` source folder) and the inventory beside it."""
    (folder / "site").mkdir(parents=True, exist_ok=True)
    (folder / "client.yml").write_text(yaml.safe_dump({"source": "site", **doc}, sort_keys=False))
    inventory = folder / "client.py"
    inventory.write_text(CLIENT_PY)
    return inventory


def _refused(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """Our message's lines, after checking what every such refusal shares."""
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output and "internal exception" not in output, output
    assert "Connecting to hosts" not in output, output
    ours = proc.stderr.split("atomic-deploy: ", 1)
    assert len(ours) == 2, output
    return ("atomic-deploy: " + ours[1]).splitlines()


def test_a_missing_ssh_key_stops_before_any_connection(tmp_path, listener):
    key = tmp_path / "keys" / "id_ed25519"
    host = {"name": "web1", "hostname": "127.0.0.1", "port": _port(listener)}
    doc = {"ssh": {"key": "keys/id_ed25519", "host_key_policy": "accept-new"}, "hosts": [host]}
    lines = _refused(run_pyinfra(_client(tmp_path, doc), "--dry"))
    assert lines == [
        f"atomic-deploy: {tmp_path / 'client.yml'}:",
        f"  ssh.key: the SSH key file {key} (given as 'keys/id_ed25519') does not exist",
    ]
    assert not _connected(listener)


def test_a_host_without_a_known_key_says_the_address_may_be_wrong(tmp_path, listener):
    """A mistyped port looks exactly like a host whose key was never added."""
    SiteRepo.create(tmp_path / "site")
    (tmp_path / "known_hosts").write_text("")
    host = {"name": "web1", "hostname": "127.0.0.1", "port": _port(listener)}
    doc = {"ssh": {"known_hosts": "known_hosts"}, "hosts": [host]}
    lines = _refused(run_pyinfra(_client(tmp_path, doc), "--dry"))
    assert lines[0] == f"atomic-deploy: {tmp_path / 'client.yml'}:"
    [problem] = lines[1:]
    entry = f"[127.0.0.1]:{_port(listener)}"
    assert problem.startswith(f"  hosts[0] (web1): known_hosts: no key for {entry} in ")
    assert (
        f"Check the address first (host 127.0.0.1 from hosts[0].hostname, port {_port(listener)}"
        " from hosts[0].port or ssh.port): a wrong host or port ends here too, and ssh-keyscan "
        "of a wrong host or port adds nothing useful." in problem
    )
    assert f"ssh-keyscan -p {_port(listener)} 127.0.0.1 | ssh-keygen -lf -" in problem
    assert not _connected(listener)


@pytest.mark.parametrize("deploy_file", ["deploy.py", "status.py", "rollback.py"])
def test_the_client_yml_given_as_the_inventory_names_the_py_beside_it(deploy_file):
    """pyinfra would exec the YAML as Python: a SyntaxError traceback and pyinfra-debug.log."""
    debug_log = REPO_ROOT / "pyinfra-debug.log"
    had_log = debug_log.exists()
    # CHECKS_OFF: the command line is exactly the one a user types
    proc = run_pyinfra(
        "inventories/client1.yml", "--dry", deploy_file=deploy_file, env=CHECKS_OFF
    )
    assert _refused(proc) == [
        "atomic-deploy: inventories/client1.yml is a client file, not an inventory: pass the "
        f".py beside it instead: pyinfra inventories/client1.py {deploy_file} --dry"
    ]
    assert had_log or not debug_log.exists()


def test_a_yaml_inventory_without_a_py_beside_it_says_what_to_create(tmp_path):
    client = tmp_path / "client.yaml"
    client.write_text("source: .\nhosts: [{name: '@local'}]\n")
    lines = _refused(run_pyinfra(client, "-y"))
    assert lines == [
        f"atomic-deploy: {client} is a client file, not an inventory: pyinfra needs the .py "
        f"beside it, and {tmp_path / 'client.py'} does not exist; create it with the two lines "
        "of inventories/client1.py"
    ]
