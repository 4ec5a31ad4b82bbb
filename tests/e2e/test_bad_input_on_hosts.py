"""Hostile and careless input on the host side (issue 8): the real pyinfra CLI over real sshd's.

Each row of docs/bad-input.md that can only be seen on a host (or when connecting) is a test
here: the user gets a clear error naming the host, and nothing changes on that host or any
other one. Valid but odd input (spaces, quotes, unicode, shell metacharacters) must deploy.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
from support.client import host_entry, run_pyinfra, run_pyinfra_json, ssh_block, write_client
from support.proc import as_deploy, chown_deploy, run
from support.site import SiteRepo
from support.snapshot import tree_snapshot
from support.sshd import SshHost, start_sshd

from operations.layout import TMP_PREFIX

pytestmark = pytest.mark.e2e

# Shell metacharacters a crafted value could carry; PWNED is what they would create.
PWNED = Path(f"/tmp/atomic-deploy-pwned-{os.getpid()}")
HOSTILE = f"$(touch {PWNED}) `touch {PWNED}`; touch {PWNED} | & 'q' \"dq\" \\ * ? ~ # ü ☃"


@pytest.fixture(autouse=True)
def _no_injection():
    PWNED.unlink(missing_ok=True)
    yield
    assert not PWNED.exists(), "a value from the input ran as a shell command"


def _entry(h: SshHost, root: Path, **extra) -> dict:
    return host_entry(h, root, **extra)


def _totals(inventory: Path) -> dict:
    return run_pyinfra_json(inventory, "-y", check=True)[1]["results"]["totals"]


def _deployed(tmp_path: Path, site: SiteRepo, hosts: list[SshHost], roots: dict[str, Path]):
    """Deploy the site to `hosts` (a client of their own); return their snapshots."""
    inventory = write_client(
        tmp_path / "good",
        source=site.path,
        hosts=[_entry(h, roots[h.name]) for h in hosts],
        ssh=hosts[0],
    )
    run_pyinfra(inventory, "-y", check=True)
    return {name: tree_snapshot(root) for name, root in roots.items()}


def _extra_sshd(workdir: Path, like: SshHost, name: str, taken: set[int], **kw):
    """One more sshd with the session's keys, listed in a known_hosts file of the test."""
    workdir.mkdir(parents=True, exist_ok=True)
    known = workdir / "known_hosts"
    known.touch()
    server = start_sshd(
        workdir,
        name,
        client_key=like.key,
        host_key=like.key.parent / "ssh_host_ed25519_key",
        known_hosts=known,
        skip_ports=taken,
        **kw,
    )
    return server


# --------------------------------------------------------------------------- local problems


@pytest.mark.parametrize(
    ("options", "args", "expected"),
    [
        ({"root": "/srv/x\n"}, [], "root: '/srv/x\\n' contains a newline"),
        ({"shared_dirs": ["../../etc"]}, [], "shared_dirs[0]: '../../etc' must be a path"),
        ({}, ["--data", 'release="`touch /tmp/x`"'], "is not a git sha"),
    ],
)
def test_a_problem_visible_locally_stops_before_any_connection(
    options, args, expected, ssh_hosts, deploy_root, site_repo, tmp_path
):
    roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
    hosts = [_entry(h, roots[h.name]) for h in ssh_hosts]
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path, hosts=hosts, ssh=ssh_hosts[0], **options
    )
    before = [h.connections() for h in ssh_hosts]
    proc = run_pyinfra(inventory, "-y", *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("atomic-deploy: ") or "\natomic-deploy: " in proc.stderr
    assert str(inventory.with_suffix(".yml")) in proc.stderr and expected in proc.stderr
    assert [h.connections() for h in ssh_hosts] == before
    assert not any(r.exists() for r in roots.values())


# --------------------------------------------------------------------------- host keys


def test_unknown_host_key_is_refused_before_connecting_and_accept_new_opts_in(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    web1, web2, web3 = ssh_hosts
    roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    hosts = [_entry(web1, roots["web1"]), _entry(web2, roots["web2"])]
    hosts.append(_entry(web3, roots["web3"], known_hosts=str(empty)))
    inventory = write_client(tmp_path / "inv", source=site_repo.path, hosts=hosts, ssh=web1)
    before = [h.connections() for h in ssh_hosts]

    proc = run_pyinfra(inventory, "-y")

    assert proc.returncode == 2
    assert str(inventory.with_suffix(".yml")) in proc.stderr
    assert f"hosts[2] (web3): known_hosts: no key for [127.0.0.1]:{web3.port}" in proc.stderr
    assert f"ssh-keyscan -p {web3.port} 127.0.0.1 >> {empty}" in proc.stderr
    assert "host_key_policy: accept-new" in proc.stderr
    assert [h.connections() for h in ssh_hosts] == before  # no host contacted
    assert not any(r.exists() for r in roots.values())

    # accept-new opts in: the key is remembered, and strict then accepts it
    hosts[2]["host_key_policy"] = "accept-new"
    inventory = write_client(tmp_path / "inv", source=site_repo.path, hosts=hosts, ssh=web1)
    run_pyinfra(inventory, "-y", check=True)
    assert f"[127.0.0.1]:{web3.port} ssh-ed25519 " in empty.read_text()
    assert os.readlink(roots["web3"] / "current") == f"releases/{site_repo.sha_short()}"
    del hosts[2]["host_key_policy"]
    inventory = write_client(tmp_path / "inv", source=site_repo.path, hosts=hosts, ssh=web1)
    assert _totals(inventory)["success"] == 0


def _non_ssh_listener() -> tuple[socket.socket, int]:
    """A TCP port that answers like a web server, not an SSH server (a wrong port)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(60)

    def serve() -> None:
        for _ in range(8):  # bounded: pyinfra connects once (plus rsync never gets here)
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1]


@pytest.mark.parametrize("problem", ["unreachable", "wrong port", "wrong key", "changed host key"])
def test_a_host_that_cannot_be_reached_fails_clearly_and_no_host_changes(
    problem, ssh_hosts, deploy_root, site_repo, tmp_path
):
    web1, web2 = ssh_hosts[:2]
    roots = {"web1": deploy_root("web1"), "web2": deploy_root("web2")}
    before = _deployed(tmp_path, site_repo, [web1, web2], roots)
    site_repo.commit({"VERSION": "2\n"})
    bad_root = deploy_root("bad")
    taken = {h.port for h in ssh_hosts}
    listener = None
    if problem == "unreachable":  # an sshd that was known, and is gone
        server = _extra_sshd(tmp_path / "gone", web1, "bad", taken)
        server.stop()
        bad = _entry(server.host, bad_root, known_hosts=str(server.host.known_hosts))
        expected = "Could not connect"
    elif problem == "wrong port":  # something else listens there; trust-on-first-use asked
        listener, port = _non_ssh_listener()
        bad = {"name": "bad", "hostname": "127.0.0.1", "port": port, "root": str(bad_root)}
        bad["host_key_policy"] = "accept-new"
        expected = "SSH error (Error reading SSH protocol banner"
    elif problem == "wrong key":
        other = tmp_path / "other_key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)])
        bad = {**_entry(web1, bad_root, key=str(other)), "name": "bad"}
        expected = "Authentication error"
    else:  # the known_hosts entry holds another key than the one the host shows
        other = tmp_path / "other_host_key"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)])
        known = tmp_path / "changed_known_hosts"
        kind, key = other.with_suffix(".pub").read_text().split()[:2]
        known.write_text(f"[127.0.0.1]:{web1.port} {kind} {key}\n")
        bad = {**_entry(web1, bad_root, known_hosts=str(known)), "name": "bad"}
        expected = "REMOTE HOST IDENTIFICATION HAS CHANGED"
    hosts = [_entry(web1, roots["web1"]), _entry(web2, roots["web2"]), bad]
    inventory = write_client(tmp_path / "inv", source=site_repo.path, hosts=hosts, ssh=web1)
    try:
        proc = run_pyinfra(inventory, "-y", timeout=120)
    finally:
        if listener:
            listener.close()

    assert proc.returncode != 0
    assert "[bad]" in proc.stderr and expected in proc.stderr, proc.stderr[-3000:]
    assert {n: tree_snapshot(r) for n, r in roots.items()} == before  # nobody switched
    assert not bad_root.exists()


# --------------------------------------------------------------------------- the deploy root


@pytest.mark.parametrize("problem", ["root not writable", "root is a file", "rsync missing"])
def test_a_host_that_cannot_take_the_deploy_stops_every_host_unchanged(
    problem, ssh_hosts, deploy_root, site_repo, tmp_path, test_run_dir
):
    web1 = ssh_hosts[0]
    roots = {"web1": deploy_root("web1")}
    before = _deployed(tmp_path, site_repo, [web1], roots)
    site_repo.commit({"VERSION": "2\n"})
    bad_root = deploy_root("bad")
    bad_host: SshHost = ssh_hosts[1]
    server = None
    if problem == "root not writable":
        bad_root.mkdir()  # root's, 0755: deploy may enter but not write
        expected = f"deploy root {bad_root} is not writable by deploy"
    elif problem == "root is a file":
        bad_root.write_text("not a folder\n")
        chown_deploy(bad_root)
        expected = f"deploy root {bad_root} exists but is not a directory"
    else:  # the host's PATH has everything of /usr/bin except rsync
        bin_dir = test_run_dir / "bin-without-rsync"
        if not bin_dir.exists():
            bin_dir.mkdir()
            for tool in os.listdir("/usr/bin"):
                if tool != "rsync":
                    (bin_dir / tool).symlink_to(Path("/usr/bin", tool))
        server = _extra_sshd(
            tmp_path / "norsync",
            web1,
            "norsync",
            {h.port for h in ssh_hosts},
            extra_config=f"SetEnv PATH={bin_dir}\n",
        )
        bad_host = server.host
        expected = "rsync is not installed on the host"
    bad_before = tree_snapshot(bad_root) if bad_root.exists() else None
    bad = _entry(bad_host, bad_root, known_hosts=str(bad_host.known_hosts))
    hosts = [_entry(web1, roots["web1"]), {**bad, "name": "bad"}]
    inventory = write_client(tmp_path / "inv", source=site_repo.path, hosts=hosts, ssh=web1)
    try:
        proc = run_pyinfra(inventory, "-y")
    finally:
        if server:
            server.stop()

    assert proc.returncode != 0
    assert "[bad]" in proc.stderr and expected in proc.stderr, proc.stderr[-3000:]
    assert {n: tree_snapshot(r) for n, r in roots.items()} == before
    assert (tree_snapshot(bad_root) if bad_root.exists() else None) == bad_before


def test_root_and_paths_with_spaces_quotes_unicode_and_metacharacters_deploy(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    """Valid odd values work end to end and never run as commands (PWNED is checked)."""
    web1 = ssh_hosts[0]
    root = deploy_root(f"root {HOSTILE}")
    odd_dir = f"dir {HOSTILE}"
    odd_file = f"conf/file {HOSTILE}.env"
    # the controller's key and known_hosts in a folder with spaces and quotes too (rsync -e)
    keys = tmp_path / "my keys 'and' \"quotes\" $(x)"
    keys.mkdir()
    for src in (web1.key, web1.known_hosts):
        shutil.copy2(src, keys / src.name)
    ssh = {**ssh_block(web1), "key": str(keys / web1.key.name)}
    ssh["known_hosts"] = str(keys / web1.known_hosts.name)
    local_env = keys / f"local {HOSTILE.replace('/', '_')}.env"  # -> shared/<odd_file>
    local_env.write_text("APP_ENV=test\n")
    inventory = write_client(
        tmp_path / "inv",
        source=site_repo.path,
        hosts=[_entry(web1, root)],
        ssh=ssh,
        shared_dirs=["cache", odd_dir],
        shared_files=[odd_file],
        shared_sources={odd_file: str(local_env)},
        exclude=[f"*.log; touch {PWNED}", "$(touch x)"],
    )
    sha = site_repo.sha_short()

    run_pyinfra(inventory, "-y", check=True)
    assert _totals(inventory)["success"] == 0  # second run: no change

    assert os.readlink(root / "current") == f"releases/{sha}"
    assert (root / "htdocs" / "index.php").is_file()
    release = root / "releases" / sha
    assert os.readlink(release / odd_dir) == "../" * (odd_dir.count("/") + 2) + f"shared/{odd_dir}"
    assert (root / "shared" / odd_dir).is_dir()
    shared_file = root / "shared" / odd_file
    assert shared_file.is_file() and shared_file.stat().st_mode & 0o777 == 0o600
    assert shared_file.read_text() == "APP_ENV=test\n"
    assert (root / ".atomic-deploy").stat().st_mode & 0o777 == 0o700


# --------------------------------------------------------------------------- the source


def test_odd_file_names_in_the_source_are_transferred_intact(ssh_hosts, deploy_root, tmp_path):
    names = {
        "htdocs/new\nline.txt": "newline\n",
        "htdocs/spa ce & 'quote'.txt": "space\n",
        "htdocs/ünïcödé ☃.txt": "unicode\n",
        "htdocs/-rf": "dash\n",
        f"htdocs/$(touch {PWNED}).txt": "dollar\n",
        "htdocs/back\\slash`x`.txt": "backslash\n",
        "htdocs/tab\there.txt": "tab\n",
    }
    site = SiteRepo.create(tmp_path / "site", {"htdocs/index.php": "<?php\n", **names})
    web1 = ssh_hosts[0]
    root = deploy_root("web1")
    inventory = write_client(
        tmp_path / "inv", source=site.path, hosts=[_entry(web1, root)], ssh=web1
    )
    run_pyinfra(inventory, "-y", check=True)
    assert _totals(inventory)["success"] == 0
    release = root / "releases" / site.sha_short()
    for name, content in names.items():
        assert (release / name).read_text() == content, repr(name)
    assert os.readlink(root / "current") == f"releases/{site.sha_short()}"


def test_symlinks_in_the_source_are_copied_as_links_never_followed(
    ssh_hosts, deploy_root, tmp_path
):
    secret = tmp_path / "controller-secret.txt"
    secret.write_text("CONTROLLER-SECRET-7f3a\n")
    site = SiteRepo.create(tmp_path / "site", {"htdocs/index.php": "<?php\n"})
    links = {
        "htdocs/absolute": str(secret),
        "htdocs/relative": os.path.relpath(secret, site.path / "htdocs"),
        "htdocs/dir": str(tmp_path),
    }
    for name, target in links.items():
        (site.path / name).symlink_to(target)
    site.commit({}, "links out of the tree")
    web1 = ssh_hosts[0]
    root = deploy_root("web1")
    inventory = write_client(
        tmp_path / "inv", source=site.path, hosts=[_entry(web1, root)], ssh=web1
    )
    run_pyinfra(inventory, "-y", check=True)

    release = root / "releases" / site.sha_short()
    for name, target in links.items():
        assert os.readlink(release / name) == target  # the link itself, as committed
    for top in (release, root / "deploy-cache"):
        for dirpath, _, files in os.walk(top):  # os.walk does not follow links
            for f in files:
                path = Path(dirpath, f)
                if not path.is_symlink():
                    assert b"CONTROLLER-SECRET" not in path.read_bytes(), path


# --------------------------------------------------------------------------- symlinks on the host


def test_symlinks_out_of_the_root_in_releases_are_never_followed_when_pruning(
    ssh_hosts, deploy_root, site_repo, tmp_path
):
    web1 = ssh_hosts[0]
    root = deploy_root("web1")
    outside = deploy_root("outside")  # deploy's own files: deploy could delete them
    as_deploy(
        f"mkdir -p '{outside}/sub' && echo keep > '{outside}/f' && echo k > '{outside}/sub/g'"
    )
    inventory = write_client(
        tmp_path / "inv", source=site_repo.path, hosts=[_entry(web1, root)], ssh=web1,
        keep_releases=1,
    )  # fmt: skip
    run_pyinfra(inventory, "-y", check=True)
    links = ["abcdef1234567", f"{TMP_PREFIX}abcdef1234567", "0123456789ab"]
    for name in links:
        as_deploy(f"ln -s '{outside}' '{root}/releases/{name}'")
    outside_before = tree_snapshot(outside)
    for i in (2, 3):  # two more releases: keep_releases=1 prunes the older ones
        site_repo.commit({"VERSION": f"{i}\n"})
        proc = run_pyinfra(inventory, "-y", check=True)
    assert tree_snapshot(outside) == outside_before
    for name in links:
        assert os.readlink(root / "releases" / name) == str(outside)
    assert "releases/abcdef1234567: not made by atomic-deploy, left alone" in proc.stderr


def test_a_shared_path_that_is_a_symlink_out_of_the_root_is_not_followed(
    ssh_hosts, deploy_root, tmp_path
):
    web1 = ssh_hosts[0]
    root = deploy_root("web1")
    outside = deploy_root("outside")
    as_deploy(f"mkdir -p '{outside}/content' && echo keep > '{outside}/content/f'")
    # the site ships `content` as a link out of the tree: not a seed for shared/content
    site = SiteRepo.create(tmp_path / "site", {"htdocs/index.php": "<?php\n"})
    (site.path / "content").symlink_to(outside / "content")
    site.commit({}, "content is a link")
    inventory = write_client(
        tmp_path / "inv", source=site.path, hosts=[_entry(web1, root)], ssh=web1
    )
    outside_before = tree_snapshot(outside)
    run_pyinfra(inventory, "-y", check=True)
    release = root / "releases" / site.sha_short()
    assert os.readlink(release / "content") == "../../shared/content"
    assert list((root / "shared" / "content").iterdir()) == []  # not seeded from outside

    # drift: someone points the live release's storage out of the root; a rerun puts the link
    # back without moving or deleting what is out there
    as_deploy(f"rm '{release}/storage' && ln -s '{outside}/content' '{release}/storage'")
    run_pyinfra(inventory, "-y", check=True)
    assert os.readlink(release / "storage") == "../../shared/storage"
    assert tree_snapshot(outside) == outside_before
    assert not (root / "shared-preserved").exists()
