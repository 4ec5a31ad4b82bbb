"""Faults a deploy must survive: killed controller, cut connection, full disk, two deploys.

Each test ends with: the site served the old or the new release at every moment (a
background sampler resolves `current` and `htdocs` the whole time), a rerun converges,
and nothing a user or the site wrote is lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.client import host_entry, run_pyinfra, run_pyinfra_json, write_client
from support.mariadb import DB_PASSWORD, DB_USER
from support.proc import REPO_ROOT, as_deploy, kill_tree, run
from support.site import SiteRepo
from support.sshd import start_sshd

pytestmark = pytest.mark.e2e

MARKER = ".atomic-deploy-release"


class ServingSampler(threading.Thread):
    """Resolve the site as a web server would, every few ms, and record any moment it broke.

    "Serving" means: `htdocs` resolves through `current` into a release folder that has its
    completion marker and an index.php. Bounded: stops after `limit` seconds at most.
    """

    def __init__(self, root: Path, limit: float = 300) -> None:
        super().__init__(daemon=True)
        self.root, self.limit = root, limit
        self.samples, self.broken = 0, []
        self.served: set[str] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            try:
                release = Path(os.path.realpath(self.root / "current"))
                index = Path(os.path.realpath(self.root / "htdocs")) / "index.php"
                ok = (release / MARKER).is_file() and index.is_file()
                if ok:
                    self.served.add(release.name)
                else:
                    self.broken.append(f"{release} (marker or index.php missing)")
            except OSError as e:
                self.broken.append(str(e))
            self.samples += 1
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def _big_site(site: SiteRepo, files: int = 1500) -> None:
    """A Craft-like tree: many small vendor files, so copying a release takes a moment."""
    tree = {f"vendor/pkg{i % 30}/src/File{i}.php": f"<?php // {i}\n" * 20 for i in range(files)}
    site.commit({**tree, "storage/.gitkeep": ""}, "vendor")


def _new_version(site: SiteRepo, n: int, megabytes: int = 4) -> str:
    """Commit a version with a fresh binary asset, so the upload has real work to do."""
    blob = site.path / f"htdocs/assets/video-{n}.bin"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(os.urandom(megabytes * 1_000_000))
    return site.commit({"VERSION": f"{n}\n"}, f"version {n}")[:12]


def _pyinfra_popen(inventory: Path, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    """pyinfra -y -vv in the background; its stderr is piped, or written to `log`."""
    return subprocess.Popen(  # noqa: S603 - argv built here
        [sys.executable, "-m", "pyinfra", "-y", "-vv", str(inventory), "deploy.py", *args],
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=log.open("w") if log else subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def _kill_when(proc: subprocess.Popen[str], pattern: tuple[str, ...], delay: float) -> bool:
    """SIGKILL pyinfra `delay` s after a stderr line containing all of `pattern`; True if hit."""
    assert proc.stderr is not None
    for line in proc.stderr:  # bounded: pyinfra exits, closing stderr
        if all(p in line for p in pattern):
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return True
    proc.wait(30)
    return False


def _converges(inventory: Path, *args: str) -> None:
    """A rerun succeeds and a third run changes nothing."""
    run_pyinfra(inventory, "-y", *args, check=True)
    _, again = run_pyinfra_json(inventory, "-y", check=True)
    assert [op["name"] for op in again["results"]["operations"] if op["success"]] == []


# (point, stderr line to wait for, delay before SIGKILL)
KILL_POINTS = [
    ("during rsync", ("Starting operation: release",), 0.3),
    ("at the start of the copy", (">>>", "flags="), 0.0),  # sh/copy_listed.sh's variables
    ("during copy and linking", (">>>", "flags="), 0.15),
    ("after populate", ("Starting operation: shared dirs",), 0.0),
    ("during the dump", ("Starting operation: fresh dump",), 0.3),
    ("just before the switch", ("Starting operation: current ->",), 0.0),
    ("during the switch", (">>>", ".current.atomic-deploy-tmp"), 0.0),
    ("just after the switch", ("Starting operation: htdocs",), 0.0),
    ("before prune", ("Starting operation: at most",), 0.0),
    ("during prune", (">>>", "rm -rf", "/releases/"), 0.0),
    ("before the lock is given back", ("Starting operation: deploy lock released",), 0.0),
]


def test_sigkill_at_eleven_points_never_breaks_the_site(
    ssh_hosts, deploy_root, site_repo, tmp_path, mariadb, monkeypatch
):
    root = deploy_root("web1")
    db = mariadb.create_database("t_kill")
    mariadb.sql("CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB;"
                "INSERT INTO t SELECT seq FROM seq_1_to_200000", db)  # fmt: skip
    monkeypatch.setenv("ATOMIC_TEST_DB_PASSWORD", DB_PASSWORD)  # inherited by every run
    database = {"name": db, "user": DB_USER, "password_env": "ATOMIC_TEST_DB_PASSWORD",
                "host": "127.0.0.1", "port": mariadb.port, "keep": 2}  # fmt: skip
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path, hosts=[host_entry(ssh_hosts[0], root)],
        ssh=ssh_hosts[0], keep_releases=2, database=database,
    )  # fmt: skip
    _big_site(site_repo)
    _new_version(site_repo, 0)
    run_pyinfra(inventory, "-y", check=True)
    as_deploy(f"echo uploaded > '{root}/current/content/photo.jpg'")
    sampler = ServingSampler(root)
    sampler.start()
    hit = []
    try:
        for n, (point, pattern, delay) in enumerate(KILL_POINTS, start=1):
            sha = _new_version(site_repo, n)
            # every killed run has a dump to make (the last one is no longer fresh)
            as_deploy(f"touch -d '2 hours ago' '{root}'/backups/*.sql.gz")
            hit.append((point, _kill_when(_pyinfra_popen(inventory), pattern, delay)))
            time.sleep(0.2)
            assert not sampler.broken, f"site broken after a kill {point}: {sampler.broken[:3]}"
            # The killed run left its lock: a rerun names it as stale and needs to be told.
            if (root / ".atomic-deploy/lock").exists():
                refused = run_pyinfra(inventory, "-y")
                assert refused.returncode != 0
                assert "another deploy holds the lock" in refused.stderr
                assert "looks stale (its process" in refused.stderr
                assert "take_over_lock=true" in refused.stderr
            _converges(inventory, "--data", "take_over_lock=true")
            assert os.readlink(root / "current") == f"releases/{sha}", point
    finally:
        sampler.stop()
    assert all(ok for _, ok in hit), f"kill points never reached: {[p for p, ok in hit if not ok]}"
    assert not sampler.broken, sampler.broken[:5]
    assert sampler.samples > 100
    assert (root / "shared/content/photo.jpg").read_text() == "uploaded\n"
    assert len([p for p in (root / "releases").iterdir() if not p.name.startswith(".")]) <= 2
    # no partial dump survives a kill; every dump left is complete
    for dump in (root / "backups").iterdir():
        assert not dump.name.startswith(".tmp-"), dump
        if dump.suffix == ".gz":
            run(["gzip", "-t", str(dump)])


def test_ssh_connection_cut_during_upload(
    ssh_hosts, deploy_root, site_repo, tmp_path, test_run_dir
):
    key, known_hosts = ssh_hosts[0].key, ssh_hosts[0].known_hosts
    workdir = test_run_dir / "cut"
    workdir.mkdir(exist_ok=True)
    host_key = key.parent / "ssh_host_ed25519_key"
    taken = {h.port for h in ssh_hosts}
    server = start_sshd(workdir, "cut", client_key=key, host_key=host_key,
                        known_hosts=known_hosts, skip_ports=taken)  # fmt: skip
    root = deploy_root("cut")
    try:
        inventory = write_client(
            tmp_path / "inv", source=site_repo.path, hosts=[host_entry(server.host, root)],
            ssh=ssh_hosts[0],
        )  # fmt: skip
        old = site_repo.sha_short()
        run_pyinfra(inventory, "-y", check=True)
        _new_version(site_repo, 1, megabytes=60)
        sampler = ServingSampler(root)
        sampler.start()
        proc = _pyinfra_popen(inventory)
        # Cut the connection once rsync is writing into deploy-cache (its temp files are dot
        # files beside the target). Bounded wait.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.startswith(".video-1.bin") for p in (root / "deploy-cache/htdocs/assets")
                   .glob(".*")):  # fmt: skip
                break
            time.sleep(0.01)
        kill_tree(server.proc.pid)
        _, err = proc.communicate(timeout=120)
        sampler.stop()
        assert proc.returncode != 0
        assert "rsync" in err
        assert not sampler.broken, sampler.broken[:3]
        assert os.readlink(root / "current") == f"releases/{old}"
        assert not (root / "releases" / site_repo.sha_short()).exists()
        # the host comes back (on a new port): a rerun converges
        server = start_sshd(workdir, "cut", client_key=key, host_key=host_key,
                            known_hosts=known_hosts, skip_ports=taken)  # fmt: skip
        inventory = write_client(
            tmp_path / "inv", source=site_repo.path, hosts=[host_entry(server.host, root)],
            ssh=ssh_hosts[0],
        )  # fmt: skip
        _converges(inventory, "--data", "take_over_lock=true")
        assert os.readlink(root / "current") == f"releases/{site_repo.sha_short()}"
    finally:
        server.stop()


def test_full_disk_during_the_copy_leaves_the_old_release_live(ssh_hosts, deploy_root,
                                                              site_repo, tmp_path):  # fmt: skip
    root = deploy_root("web1")
    root.mkdir()
    uid, gid = root.parent.stat().st_uid, root.parent.stat().st_gid
    run(["mount", "-t", "tmpfs", "-o", f"size=9m,mode=0755,uid={uid},gid={gid}", "tmpfs",
         str(root)])  # fmt: skip
    try:
        inventory = write_client(
            tmp_path / "inv", source=site_repo.path, hosts=[host_entry(ssh_hosts[0], root)],
            ssh=ssh_hosts[0],
        )  # fmt: skip
        old = _new_version(site_repo, 1, megabytes=2)  # cache 2 MB + release 2 MB
        run_pyinfra(inventory, "-y", check=True)
        new = _new_version(site_repo, 2, megabytes=3)  # cache 5 MB fits; its copy does not
        sampler = ServingSampler(root)
        sampler.start()
        proc = run_pyinfra(inventory, "-y")
        sampler.stop()
        assert proc.returncode != 0
        assert "No space left on device" in proc.stderr
        assert not sampler.broken, sampler.broken[:3]
        assert os.readlink(root / "current") == f"releases/{old}"
        assert not (root / "releases" / new).exists()  # no half release under its name
        # more room: a rerun converges and clears the half-built copy
        run(["mount", "-o", "remount,size=40m", str(root)])
        _converges(inventory)
        assert os.readlink(root / "current") == f"releases/{new}"
        assert not list((root / "releases").glob(".tmp-*"))
    finally:
        run(["umount", "-l", str(root)])


def test_two_deploys_at_once_exactly_one_proceeds(ssh_hosts, deploy_root, site_repo, tmp_path):
    roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path,
        hosts=[host_entry(h, roots[h.name]) for h in ssh_hosts], ssh=ssh_hosts[0],
    )  # fmt: skip
    _big_site(site_repo)
    run_pyinfra(inventory, "-y", check=True)
    new = _new_version(site_repo, 1, megabytes=20)
    logs = [tmp_path / f"deploy-{i}.log" for i in range(2)]
    procs = [_pyinfra_popen(inventory, log=log) for log in logs]
    results = [(p.wait(180), log.read_text()) for p, log in zip(procs, logs, strict=True)]
    outcomes = sorted(rc == 0 for rc, _ in results)
    assert outcomes == [False, True], [err[-2000:] for _, err in results]
    loser = next(err for rc, err in results if rc != 0)
    assert "another deploy holds the lock: root@" in loser
    assert "(pid " in loser and f"release {new}" in loser
    for root in roots.values():
        assert os.readlink(root / "current") == f"releases/{new}"
        assert not (root / ".atomic-deploy/lock").exists()
