"""The after-switch step (`php:` in the client file) end to end: real pyinfra over a real sshd.

The zero-downtime proof (test_zero_downtime.py) shows that `opcache-reset` makes PHP serve the
new release; these tests show when the step runs, what a failure leaves behind, and that its
secret never reaches the output.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest
from support.client import host_entry, run_pyinfra, run_pyinfra_json, write_client
from support.site import SiteRepo
from support.sshd import SshHost

pytestmark = pytest.mark.e2e

ONE_TIME_FILE = re.compile(r"\.atomic-deploy-opcache-[0-9a-f]{24}")
TOKEN = re.compile(r"(?<![0-9a-f])[0-9a-f]{48}(?![0-9a-f])")


def _client(tmp_path: Path, ssh_host: SshHost, root: Path, site: SiteRepo, php: dict) -> Path:
    return write_client(
        tmp_path / "inv", source=site.path, hosts=[host_entry(ssh_host, root)], ssh=ssh_host,
        php=php,
    )  # fmt: skip


def _changed(results: dict) -> list[str]:
    return [op["name"] for op in results["results"]["operations"] if op["success"]]


def _one_time_files(root: Path) -> list[Path]:
    return [p for p in root.glob("releases/*/htdocs/.*") if ONE_TIME_FILE.search(p.name)]


def test_fpm_reload_runs_once_per_switch_and_never_on_a_rerun(
    ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, tmp_path: Path
) -> None:
    root = deploy_root("web1")
    reloads = root.parent / "reloads"  # the test folder belongs to deploy
    command = f"echo \"$(readlink {root}/current)\" >> {reloads}"
    inventory = _client(
        tmp_path, ssh_hosts[0], root, site_repo,
        {"after_switch": "fpm-reload", "reload_command": command},
    )  # fmt: skip
    first = site_repo.sha_short()
    _, results = run_pyinfra_json(inventory, "-y", check=True)
    assert "PHP refreshed (fpm-reload)" in _changed(results)
    assert reloads.read_text() == f"releases/{first}\n"  # ran after the switch

    _, results = run_pyinfra_json(inventory, "-y", check=True)
    assert _changed(results) == [] and results["results"]["totals"]["success"] == 0
    assert reloads.read_text() == f"releases/{first}\n"

    second = site_repo.commit({"VERSION": "2\n"})[:12]
    dry = run_pyinfra(inventory, "--dry", check=True)
    assert f"php after switch: run {command!r} for releases/{second}" in dry.stderr
    assert reloads.read_text() == f"releases/{first}\n"  # --dry ran nothing
    run_pyinfra(inventory, "-y", check=True)
    assert reloads.read_text() == f"releases/{first}\nreleases/{second}\n"
    log = (root / ".atomic-deploy" / "log").read_text()
    assert f"\tphp-refresh\t{second}\t" in log


def test_a_health_check_switch_back_refreshes_php_for_the_release_switched_back_to(
    ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, tmp_path: Path
) -> None:
    root = deploy_root("web1")
    reloads = root.parent / "reloads"
    php = {"after_switch": "fpm-reload",
           "reload_command": f"echo \"$(readlink {root}/current)\" >> {reloads}"}  # fmt: skip
    inventory = _client(tmp_path, ssh_hosts[0], root, site_repo, php)
    first = site_repo.sha_short()
    run_pyinfra(inventory, "-y", check=True)

    with socket.socket() as s:  # a port nothing listens on: the health check fails
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_client(
        tmp_path / "inv", source=site_repo.path, hosts=[host_entry(ssh_hosts[0], root)],
        ssh=ssh_hosts[0], php=php,
        health={"url": f"http://127.0.0.1:{port}/", "retries": 0, "timeout": 2},
    )  # fmt: skip
    second = site_repo.commit({"VERSION": "2\n"})[:12]
    proc = run_pyinfra(inventory, "-y")
    assert proc.returncode != 0
    assert f"rolled back to releases/{first}" in proc.stderr
    assert os.readlink(root / "current") == f"releases/{first}"
    # refreshed after the switch to the new release, and again after the switch back
    assert reloads.read_text() == f"releases/{first}\nreleases/{second}\nreleases/{first}\n"
    log = (root / ".atomic-deploy" / "log").read_text().splitlines()
    events = [line.split("\t")[1:3] for line in log]
    assert events[-2:] == [["rollback", first], ["php-refresh", first]]


def test_a_failed_reset_leaves_no_file_and_is_retried_by_the_next_run(
    ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = deploy_root("web1")
    inventory = _client(
        tmp_path, ssh_hosts[0], root, site_repo,
        {"after_switch": "opcache-reset", "url": f"http://127.0.0.1:{port}", "timeout": 5},
    )  # fmt: skip
    sha = site_repo.sha_short()
    proc = run_pyinfra(inventory, "-y", "-vvv")
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "php opcache-reset: GET http://127.0.0.1:" in output
    assert os.readlink(root / "current") == f"releases/{sha}"  # the switch itself happened
    assert _one_time_files(root) == []
    assert not TOKEN.search(output) and not ONE_TIME_FILE.search(output)
    # Nothing else to do, but the refresh is still owed: the next run tries again.
    proc, results = run_pyinfra_json(inventory, "-y")
    assert proc.returncode != 0 and "php opcache-reset: GET" in proc.stderr
    assert _one_time_files(root) == []


def test_opcache_reset_through_the_web_server_never_shows_its_secret(
    ssh_hosts: list[SshHost], deploy_root, site_repo: SiteRepo, web_stack, tmp_path: Path
) -> None:
    root = deploy_root("web1")
    stack = web_stack(root)  # nginx + PHP-FPM with OPcache, serving <root>/htdocs
    inventory = _client(
        tmp_path, ssh_hosts[0], root, site_repo,
        # a name that resolves nowhere: the request reaches nginx through connect_to alone
        {"after_switch": "opcache-reset", "url": f"http://site.invalid:{stack.port}"},
    )  # fmt: skip
    proc = run_pyinfra(inventory, "-y", "-vvv", check=True)
    output = proc.stdout + proc.stderr
    assert "opcache-reset: done" in output, stack.logs()
    assert not TOKEN.search(output) and not ONE_TIME_FILE.search(output)
    assert _one_time_files(root) == []
    assert stack.get("/index.php") == (200, "release 1\n")
