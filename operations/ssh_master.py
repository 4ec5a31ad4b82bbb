"""One OpenSSH master connection per host for the upload, opened while the run starts.

The upload is the local rsync over the OpenSSH client (rsync.py). Setting up an SSH connection
(key exchange, authentication) took ~0.2 s of a 0.3 s no-change rsync of 6,000 files over
loopback here, and takes several round trips on a real link. Once the client file passed
every check (no host is contacted before), the inventory starts a master connection per host
in the background, so that cost hides behind pyinfra's own connect and the first operations;
rsync's ssh then opens a session on it. Without a master (not up yet, or it failed) rsync's
ssh connects on its own, as it always did: `ControlMaster=no`.

A master ends with the run however the run ends (sh/ssh_master.sh watches a pipe from this
process), and its socket lives in a folder only this user can enter.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import subprocess
import tempfile
from typing import Any

from .rsync import CONTROL_PATH, ssh_address, ssh_command, ssh_option_path
from .shell import script_text


def open_masters(hosts: list[tuple[str, dict[str, Any]]], argv: list[str]) -> None:
    """Start a master for each SSH host of `hosts` (the inventory's (name, data) pairs) and
    note its socket in the host's data for rsync. Returns at once; a master that fails says
    nothing (rsync connects by itself and reports). None with --limit (the run may not be
    meant to contact every host) or for more hosts than this machine has cores."""
    ssh_hosts = [(name, data) for name, data in hosts if not name.startswith("@")]
    if not ssh_hosts or "--limit" in argv or shutil.which("ssh") is None:
        return
    # Each handshake takes CPU here: with more hosts than cores they would slow pyinfra's own
    # start instead of hiding behind it (bench (e): 32 hosts on 2 cores, 1.21x -> 1.34x).
    if len(ssh_hosts) > (os.cpu_count() or 1):
        return
    folder = tempfile.mkdtemp(prefix="atomic-deploy-ssh-")  # 0700
    masters = []
    for i, (name, data) in enumerate(ssh_hosts):
        path = os.path.join(folder, str(i))
        ssh = [*shlex.split(ssh_command(data)), "-M", "-N"]
        ssh += ["-o", f"ControlPath={ssh_option_path(path)}", ssh_address(name, data)]
        masters.append(
            subprocess.Popen(  # noqa: S603 - argv list; the script gets ssh's argv as "$@"
                ["sh", "-c", script_text("ssh_master.sh"), "ssh-master", *ssh],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        data[CONTROL_PATH] = path
    atexit.register(_close, masters, folder)


def _close(masters: list[subprocess.Popen[bytes]], folder: str) -> None:
    for proc in masters:
        if proc.stdin is not None:
            proc.stdin.close()  # the script ends its master
    for proc in masters:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(folder, ignore_errors=True)
