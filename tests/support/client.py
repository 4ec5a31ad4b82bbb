"""Client files and runs of the real pyinfra CLI from the repo root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .proc import REPO_ROOT, tail
from .sshd import SshHost

CLIENT_PY = "from operations.config import inventory_hosts\nhosts = inventory_hosts(__file__)\n"


def _plain(value: Any) -> Any:
    """Paths -> str, recursively, so yaml.safe_dump accepts the structure."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def client_yml(folder: Path, doc: object) -> Path:
    """Write `doc` (a mapping, or YAML text as it is) to `<folder>/client.yml`; return it."""
    file = folder / "client.yml"
    file.write_text(doc if isinstance(doc, str) else yaml.safe_dump(_plain(doc)))
    return file


def ssh_block(host: SshHost) -> dict[str, str]:
    """The client.yml `ssh:` section for the session's sshd's (shared by all three)."""
    return {"user": host.user, "key": str(host.key), "known_hosts": str(host.known_hosts)}


def host_entry(ssh_host: SshHost, root: Path | str, **extra: Any) -> dict[str, Any]:
    """One client.yml `hosts:` entry for an sshd of the session."""
    entry = {"name": ssh_host.name, "hostname": ssh_host.hostname, "port": ssh_host.port}
    return {**entry, "root": str(root), **extra}


def write_client(
    dir: Path, *, source: Path | str, hosts: list[dict[str, Any]], **options: Any
) -> Path:
    """Write `<dir>/client.yml` + the `<dir>/client.py` inventory that loads it; return the .py.

    `options` become top-level keys (keep_releases, exclude, shared_dirs, ...). `ssh` may be a
    dict or an SshHost (turned into `ssh_block(host)`); leave it out to test a missing section.
    """
    if isinstance(options.get("ssh"), SshHost):
        options["ssh"] = ssh_block(options["ssh"])
    ssh = options.pop("ssh", None)
    data = {"source": str(source), **options}
    if ssh is not None:
        data["ssh"] = ssh
    data["hosts"] = hosts
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "client.yml").write_text(yaml.safe_dump(_plain(data), sort_keys=False))
    inventory = dir / "client.py"
    inventory.write_text(CLIENT_PY)
    return inventory


# run_pyinfra(env=CHECKS_OFF): no extra reads, for tests that count remote commands.
CHECKS_OFF = {"ATOMIC_DEPLOY_TESTS_NO_STATE_CHECK": "1"}


KNOWN_STATES_CHECK = "tests/known_states.py"


def run_pyinfra(
    inventory: Path | str,
    *args: str,
    timeout: float = 300,
    check: bool = False,
    env: dict[str, str] | None = None,
    deploy_file: str = "deploy.py",
) -> subprocess.CompletedProcess[str]:
    """`python -m pyinfra INVENTORY deploy.py *args` from the repo root, without stdin.

    `deploy_file` runs another deploy file of the repo (rollback.py, status.py, ...).

    Pass `-y` (or `--dry`): without it pyinfra prompts and dies on EOF with rc=1. `env` adds
    variables to the environment (e.g. a database password named by password_env).
    Every state an operation hands on instead of re-reading the host is checked against a
    fresh read (tests/known_states.py runs first); tests that count remote commands pass
    CHECKS_OFF (the variable only tells this function).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    checks = [] if env.pop("ATOMIC_DEPLOY_TESTS_NO_STATE_CHECK", "") else [KNOWN_STATES_CHECK]
    argv = [sys.executable, "-m", "pyinfra", str(inventory), *checks, deploy_file, *args]
    try:
        proc = subprocess.run(  # noqa: S603 - argv built from the test's own arguments
            argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"pyinfra timed out after {timeout}s: {argv}\n"
            f"--- stdout\n{tail(e.stdout)}\n--- stderr\n{tail(e.stderr)}"
        ) from None
    if check and proc.returncode != 0:
        raise AssertionError(
            f"pyinfra rc={proc.returncode}: {argv}\n"
            f"--- stdout\n{tail(proc.stdout)}\n--- stderr\n{tail(proc.stderr)}"
        )
    return proc


def run_pyinfra_json(
    inventory: Path | str, *args: str, **options: Any
) -> tuple[subprocess.CompletedProcess[str], Any]:
    """run_pyinfra (same options) with `--json`; returns (process, parsed stdout).

    The JSON is None when a failed run printed none; a successful run without JSON is an error.
    """
    proc = run_pyinfra(inventory, *args, "--json", **options)
    try:
        return proc, json.loads(proc.stdout)
    except json.JSONDecodeError:
        if proc.returncode != 0 and not proc.stdout.strip():
            return proc, None
        raise AssertionError(
            f"pyinfra --json printed no JSON (rc={proc.returncode})\n"
            f"--- stdout\n{tail(proc.stdout)}\n--- stderr\n{tail(proc.stderr)}"
        ) from None
