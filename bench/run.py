#!/usr/bin/env python3
"""Benchmark: atomic-deploy against the bare-shell floor (bench/floor.sh), same work, same run.

    bash bench/run.sh                    # the full benchmark (~13-14 min on 2 cores), as root
    bash bench/run.sh --reps 1 --quick   # a smoke run: every scenario once, 1/8 hosts only
    python3 bench/run.py --reps 1 --quick --only g,h,i   # only the newer scenarios

bench/run.sh installs what this needs (scripts/test-env.sh), then runs this file. Starts
its own sshd's on 127.0.0.1 (LogLevel VERBOSE, sessions counted from their logs), generates a
deterministic Craft-CMS-like site in a local git repo, deploys with the real pyinfra CLI
(`-y`, from the tool's own virtualenv bench/.venv, through bench/timeline.py, which records
where the time goes) to fresh roots on a tmpfs (and on the disk for (a)/(b)), alternating
contestants run by run, and writes bench/results.md. (g) goes through bench/delay_proxy.py
(20 ms each way), (h) deploys a ~1 GB site kept on its own tmpfs between runs
(/srv/atomic-deploy-bench-bigsite), (i) runs busy loops at nice 19 during each run.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from delay_proxy import DelayProxy  # noqa: E402 - bench/, this file's directory
from support.client import host_entry, write_client  # noqa: E402 - needs the sys.path entry above
from support.proc import DEPLOY_USER  # noqa: E402 - needs the sys.path entry above
from support.site import SiteRepo  # noqa: E402 - needs the sys.path entry above
from support.sshd import SshHost, make_ssh_keys, start_sshd  # noqa: E402 - needs the sys.path entry above

BASE = Path("/srv/atomic-deploy-bench")
VENV = REPO / "bench" / ".venv"  # the tool's own Python, as `pipx install` would give it
FLOOR = REPO / "bench" / "floor.sh"
TIMELINE = REPO / "bench" / "timeline.py"  # runs pyinfra as `-m pyinfra` does, timing its steps
RESULTS = REPO / "bench" / "results.md"
SEED = 7
RUN_TIMEOUT = 600  # seconds, per contestant run: a hung run is killed, not waited for
SSHDS = 4  # several inventory hosts share an sshd (different roots)
MODES = {"copy": "cp", "hardlink": "cp-al", "reflink": "reflink"}  # tool mode -> floor mode


# --------------------------------------------------------------------------- the site


def generate_site(path: Path, quick: bool) -> tuple[SiteRepo, list[str]]:
    """A Craft-CMS-like site (~6,000 files, ~80 MB; seeded) and commits changing one file each."""
    rng = random.Random(SEED)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10)))
        for _ in range(400)
    ]

    def php(n_lines: int) -> str:
        lines = ["<?php", "", f"namespace Vendor\\{rng.choice(words).title()};", ""]
        for _ in range(n_lines):
            lines.append(
                f"    ${rng.choice(words)} = $this->{rng.choice(words)}"
                f"('{rng.choice(words)}', {rng.randint(0, 9999)});"
            )
        return "\n".join(lines) + "\n"

    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    n_vendor = 700 if quick else 5600
    for i in range(n_vendor):  # ~160 packages (vendor/name/src/Dir/File.php)
        package = i % 160
        pkg = f"vendor/{words[package % 40]}/{words[40 + package]}/src/{words[200 + i % 7].title()}"
        f = path / pkg / f"{words[i % 397].title()}{i}.php"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(php(rng.randint(40, 200)))
    for i in range(40 if quick else 330):
        ext = rng.choice(["css", "js", "svg", "png", "woff2"])
        f = path / "htdocs/assets" / rng.choice(words[:20]) / f"{rng.choice(words)}-{i}.{ext}"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(rng.randbytes(rng.randint(2_000, 70_000)))
    sizes = [1, 2, 2, 3, 3, 4, 5, 1, 2, 3, 4] if not quick else [1, 2]
    for i, mb in enumerate(sizes):  # the few big binaries (videos, PDFs)
        f = path / "htdocs/assets/media" / f"clip-{i}.bin"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(rng.randbytes(mb * 1_000_000))
    (path / "htdocs/index.php").write_text(
        "<?php\nrequire __DIR__ . '/../vendor/autoload.php';\necho 'release ' . "
        "trim(file_get_contents(__DIR__ . '/../VERSION'));\n"
    )
    (path / "vendor/autoload.php").write_text("<?php\n// autoload\n")
    for d, n in (("templates", 60), ("config", 12), ("modules/site", 25)):
        for i in range(n if not quick else 5):
            f = path / d / f"{rng.choice(words)}-{i}.twig"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(php(rng.randint(5, 40)))
    (path / "storage").mkdir()
    (path / "storage/.gitkeep").write_text("")
    (path / "content").mkdir()
    (path / "content/seed.txt").write_text("seed\n")
    (path / "VERSION").write_text("1\n")
    repo = SiteRepo(path)
    repo.git("init", "-q", "-b", "main")
    repo.git("add", "-A")
    repo.git("commit", "-q", "--no-gpg-sign", "-m", "site")
    shas = [repo.head()]
    for n in range(2, 5):  # commits that change one small file each
        shas.append(repo.commit({"VERSION": f"{n}\n"}, f"version {n}"))
    return repo, shas


BIG = Path("/srv/atomic-deploy-bench-bigsite")  # a tmpfs of its own, kept between runs
BIG_VERSION = "1"  # bump when generate_big_site changes: the kept site is made again


def generate_big_site() -> tuple[SiteRepo, list[str]]:
    """(h): ~30,000 files, ~1 GB (seeded); made once on its own tmpfs, reused while unchanged.

    A vendor/ of ~27,000 small PHP files, ~2,600 built assets, 10 binaries of 64 MB. File
    contents are slices of a few random blocks (fast to write; rsync and cp don't look for
    repeats across files); git stores them uncompressed (core.compression=0) to keep it quick.
    """
    site = BIG / "site"
    stamp = BIG / ".stamp"
    if stamp.exists() and stamp.read_text() == BIG_VERSION:
        repo = SiteRepo(site)
        shas = repo.git("rev-list", "--reverse", "main").split()
        repo.git("checkout", "-q", "--detach", shas[0])
        return repo, shas
    BIG.mkdir(parents=True, exist_ok=True)
    unmount(BIG)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4g", "tmpfs", str(BIG)], check=True)  # noqa: S603, S607
    rng = random.Random(SEED)
    text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ;$()\n") for _ in range(1 << 16))
    binary = rng.randbytes(1 << 22)
    for i in range(27_000):  # vendor/<vendor>/<package>/src/<Dir>/File<i>.php, 0.5-8 KB
        f = site / f"vendor/v{i % 40}/p{i % 300}/src/D{i % 7}/File{i}.php"
        f.parent.mkdir(parents=True, exist_ok=True)
        start, size = rng.randrange(0, 1 << 15), rng.randint(500, 8000)
        f.write_text(f"<?php // {i}\n{text[start:start + size]}\n")
    for i in range(2_600):  # built assets, 20-260 KB (~360 MB)
        f = site / f"htdocs/dist/{i % 30}/asset-{i}.{('js', 'css', 'png', 'woff2')[i % 4]}"
        f.parent.mkdir(parents=True, exist_ok=True)
        start, size = rng.randrange(0, 1 << 21), rng.randint(20_000, 260_000)
        f.write_bytes(i.to_bytes(4, "big") + binary[start:start + size])
    for i in range(10):  # the few large binaries: 10 x 64 MB
        f = site / f"htdocs/media/video-{i}.bin"
        f.parent.mkdir(parents=True, exist_ok=True)
        with f.open("wb") as out:
            out.write(i.to_bytes(4, "big"))
            for _ in range(16):
                out.write(binary)
    (site / "htdocs/index.php").write_text("<?php echo 'big';\n")
    (site / "storage").mkdir()
    (site / "storage/.gitkeep").write_text("")
    (site / "VERSION").write_text("1\n")
    repo = SiteRepo(site)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "core.compression", "0")
    repo.git("config", "core.looseCompression", "0")
    repo.git("add", "-A")
    repo.git("commit", "-q", "--no-gpg-sign", "-m", "big site")
    shas = [repo.head()]
    for n in range(2, 5):
        shas.append(repo.commit({"VERSION": f"{n}\n"}, f"version {n}"))
    repo.git("checkout", "-q", "--detach", shas[0])
    stamp.write_text(BIG_VERSION)
    return repo, shas


def tree_size(path: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(path):
        if ".git" in dirnames:
            dirnames.remove(".git")
        for name in filenames:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


def tool_python() -> Path:
    """A virtualenv holding only atomic-deploy and its dependencies, as a user installs a CLI.

    Made once (~30 s) and reused while pyproject.toml is unchanged. A machine's shared Python
    may carry a hundred unrelated packages, and gevent (imported by pyinfra) scans every
    installed package's entry points ~25 times at start: ~0.25 s with 118 packages. Our
    modules are compiled ahead (pyinfra runs with bytecode writing off when
    PYTHONDONTWRITEBYTECODE is set, as on this machine).
    """
    python, stamp = VENV / "bin" / "python", VENV / ".pyproject.sha256"
    want = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    if not python.exists() or not stamp.exists() or stamp.read_text() != want:
        print("bench: making the tool's virtualenv (bench/.venv) ...", flush=True)
        shutil.rmtree(VENV, ignore_errors=True)
        made = subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "venv", str(VENV)], check=False
        ).returncode == 0 and subprocess.run(  # noqa: S603 - fixed argv
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-e", str(REPO)], check=False,
        ).returncode == 0  # fmt: skip
        if not made:  # e.g. Debian's python3 without python3-venv: say so, don't stop
            print("bench: no virtualenv; the tool runs from the machine's Python", flush=True)
            shutil.rmtree(VENV, ignore_errors=True)
            return Path(sys.executable)
        stamp.write_text(want)
    subprocess.run(  # noqa: S603 - fixed argv
        [str(python), "-m", "compileall", "-q", str(REPO / "operations")], check=True
    )
    return python


def distributions(python: Path | str) -> int:
    """How many packages `python` sees (gevent scans each of them at start)."""
    out = subprocess.run(  # noqa: S603 - fixed argv
        [str(python), "-c", "import importlib.metadata as m; "
         "print(len({d.metadata['Name'] for d in m.distributions()}))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout)


# --------------------------------------------------------------------------- running


@dataclass
class Sample:
    seconds: float
    sessions: float  # remote commands per host (sshd "Starting session:" lines)
    maxrss_mb: float | None = None  # pyinfra's peak RSS (tool only)
    timeline: dict | None = None  # where the tool's time went (bench/timeline.py)


@dataclass
class Bench:
    servers: list
    site: SiteRepo
    shas: list[str]
    workdir: Path
    python: Path | str = sys.executable  # runs pyinfra for the tool
    tmpfs: Path | None = None  # roots made under it get a tmpfs per round (see fresh_roots)
    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    counter: int = 0
    last_output: str = ""
    link: list[SshHost] | None = None  # the hosts as reached through delay proxies (g)
    busy: int = 0  # busy loops on the host side during each run (i)

    @property
    def hosts(self) -> list[SshHost]:
        return self.link or [s.host for s in self.servers]

    def sessions(self) -> int:
        return sum(s.host.sessions() for s in self.servers)

    def add(self, scenario: str, contestant: str, sample: Sample) -> None:
        self.samples.setdefault((scenario, contestant), []).append(sample)

    def checkout(self, index: int) -> str:
        self.site.git("checkout", "-q", "--detach", self.shas[index])
        return self.shas[index][:12]

    def fresh_roots(self, storage: Path, n: int) -> list[Path]:
        """n empty deploy roots owned by deploy (the old ones are removed, untimed).

        Under `tmpfs`, each call mounts a tmpfs of its own: unmounting frees the last round's
        releases (up to 8 GB at 32 hosts) at once, where deleting them file by file took
        minutes of the run.
        """
        self.counter += 1
        parent = storage / f"r{self.counter}"
        for old in storage.glob("r*"):
            if storage == self.tmpfs:
                unmount(old)
            shutil.rmtree(old, ignore_errors=True)
        parent.mkdir(parents=True)
        if storage == self.tmpfs:
            subprocess.run(  # noqa: S603, S607 - fixed argv
                ["mount", "-t", "tmpfs", "-o", "size=12g", "tmpfs", str(parent)], check=True
            )
        parent.chmod(0o755)
        roots = [parent / f"root{i:02d}" for i in range(n)]
        for root in roots:
            root.mkdir()
            shutil.chown(root, DEPLOY_USER, DEPLOY_USER)
        return roots

    def host_for(self, i: int) -> SshHost:
        return self.hosts[i % len(self.hosts)] if i else self.hosts[0]

    def inventory(self, roots: list[Path], mode: str) -> Path:
        entries = [
            host_entry(self.host_for(i), root, name=f"h{i:02d}") for i, root in enumerate(roots)
        ]
        return write_client(
            self.workdir / f"inv-{self.counter}-{mode}-{roots[0].name}",
            source=self.site.path,
            hosts=entries,
            ssh=self.hosts[0],
            keep_releases=5,
            copy_mode=mode,
        )

    def tool(
        self, inventory: Path, n_hosts: int, *extra: str, script: str = "deploy.py",
        python: Path | str | None = None,
    ) -> Sample:  # fmt: skip
        out = self.workdir / "timeline.json"
        argv = [str(python or self.python), str(TIMELINE), str(out), "-y", str(inventory), script,
                *extra]  # fmt: skip
        if "--dry" in extra:
            argv.remove("-y")
        before = self.sessions()
        with cpu_load(self.busy):
            seconds, rss, self.last_output = timed(argv, cwd=REPO)
        try:
            timeline = json.loads(out.read_text())
            out.unlink()
        except (OSError, ValueError):
            timeline = None
        return Sample(seconds, (self.sessions() - before) / n_hosts, rss, timeline)

    def floor(self, roots: list[Path], floor_mode: str) -> Sample:
        sha = self.site.head()[:12]
        before = self.sessions()

        def one(i: int) -> float:
            h = self.host_for(i)
            ssh = shlex.join(ssh_argv(h))
            argv = ["bash", str(FLOOR), ssh, f"{h.user}@{h.hostname}", str(roots[i]),
                    str(self.site.path), sha, floor_mode]  # fmt: skip
            return timed(argv, cwd=REPO)[0]

        with cpu_load(self.busy):
            start = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(roots)) as pool:
                list(pool.map(one, range(len(roots))))
            seconds = time.monotonic() - start
        return Sample(seconds, (self.sessions() - before) / len(roots))

    def floor_rollback(self, root: Path, previous: str) -> Sample:
        h = self.hosts[0]
        before = self.sessions()
        command = (
            f"cd '{root}' && ln -sfn releases/{previous} .current.tmp"
            " && mv -Tf .current.tmp current"
        )
        with cpu_load(self.busy):
            seconds = timed([*ssh_argv(h), f"{h.user}@{h.hostname}", command], cwd=REPO)[0]
        return Sample(seconds, self.sessions() - before)


class cpu_load:  # noqa: N801 - used as a `with` statement
    """`n` busy loops at the lowest priority (nice 19) while the block runs, killed after.

    The host side of (i): a web server under traffic takes the CPU a deploy also needs. The
    loops run as `deploy`, like the host's own processes; n = 0: no load.
    """

    def __init__(self, n: int) -> None:
        self.n, self.procs = n, []

    def __enter__(self) -> None:
        for _ in range(self.n):
            self.procs.append(subprocess.Popen(  # noqa: S603, S607 - fixed argv
                ["nice", "-n", "19", "setpriv", f"--reuid={DEPLOY_USER}", f"--regid={DEPLOY_USER}",
                 "--clear-groups", "sh", "-c", "while :; do :; done"],
                stdin=subprocess.DEVNULL))  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()
        self.procs = []


def unmount(path: Path) -> None:
    """Unmount `path` if it is a mount point (lazily if something still holds it)."""
    if os.path.ismount(path):
        done = subprocess.run(["umount", str(path)], capture_output=True, check=False)  # noqa: S603, S607
        if done.returncode:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)  # noqa: S603, S607


def ssh_argv(h: SshHost) -> list[str]:
    """The floor's ssh: plain OpenSSH, the same key and host-key file as the tool uses."""
    return ["ssh", "-F", "/dev/null", "-i", str(h.key), "-p", str(h.port), "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={h.known_hosts}",
            "-o", "StrictHostKeyChecking=yes"]  # fmt: skip


def timed(argv: list[str], cwd: Path) -> tuple[float, float, str]:
    """Run argv (must succeed): wall seconds, peak RSS in MB (it and waited children), output."""
    with tempfile.TemporaryFile() as out:
        start = time.monotonic()
        proc = subprocess.Popen(  # noqa: S603 - argv built here
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        )  # fmt: skip
        timer = threading.Timer(RUN_TIMEOUT, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            text = out.read().decode(errors="replace")
            raise SystemExit(f"bench: {argv[:6]} failed rc={proc.returncode}\n{text[-4000:]}")
        out.seek(0)
        text = out.read().decode(errors="replace")
    return seconds, usage.ru_maxrss / 1024, text


def du_kb(*paths: Path) -> list[int]:
    """du -sk of each path, counting a hard-linked inode only at its first path (like du)."""
    out = subprocess.run(  # noqa: S603 - fixed argv
        ["du", "-sk", *map(str, paths)], capture_output=True, text=True, check=True
    ).stdout
    return [int(line.split()[0]) for line in out.splitlines()]


# --------------------------------------------------------------------------- scenarios


def single_host(
    b: Bench, storage: Path, label: str, mode: str, reps: int, disk: dict,
    group: str = "", steps: str = "",
) -> None:  # fmt: skip
    """(a) first deploy, (b) redeploy one file changed, (c) same sha again, (d) rollback.

    `group` ("(g)", "(i)") names the rows of a variant; `steps` which of (c)/(d) it runs
    (default: both for [tmpfs copy] only).
    """
    rollback = (REPO / "rollback.py").exists()
    key = f"{label} {mode}"
    steps = steps or ("cd" if key == "tmpfs copy" else "")

    def row(letter: str, text: str) -> str:
        return f"{group or letter} {text} [{key}]"
    for rep in range(reps):
        for contestant in ("tool", "floor"):  # alternated run by run
            [root] = b.fresh_roots(storage, 1)
            inv = b.inventory([root], mode)

            def run(contestant: str = contestant, root: Path = root, inv: Path = inv) -> Sample:
                if contestant == "tool":
                    return b.tool(inv, 1)
                return b.floor([root], MODES[mode])

            first = b.checkout(0)
            sample = run()
            b.add(row("(a)", "first deploy"), contestant, sample)
            if key == "tmpfs copy" and not group:  # the same work as (e) at 1 host
                b.add("(e) 1 hosts, first deploy", contestant, sample)
            if mode == "reflink" and contestant == "tool":
                fell_back = "copied instead" in b.last_output
                b.notes["reflink"] = (
                    "the file system can't clone (tmpfs/ext4): the tool fell back to copy and "
                    "said so" if fell_back else "cloned (the file system supports reflinks)"
                )
            second = b.checkout(1)
            sample = run()
            b.add(row("(b)", "redeploy, 1 file changed"), contestant, sample)
            if key == "tmpfs copy" and not group:
                b.add("(e) 1 hosts, redeploy", contestant, sample)
            if rep == 0 and not group:
                disk[(label, mode, contestant)] = du_kb(
                    root / "deploy-cache", root / "releases" / first, root / "releases" / second
                )
            if "c" in steps:
                sample = run()
                b.add(row("(c)", "same sha again"), contestant, sample)
            if "c" in steps and not group:
                # The tool run by the machine's shared Python instead of its own virtualenv
                # (against the same floor run).
                if contestant == "tool":
                    sample = b.tool(inv, 1, python=sys.executable)
                b.add("(c) same sha again [tmpfs copy, machine's Python]", contestant, sample)
            if rollback and "d" in steps:
                if contestant == "tool":
                    sample = b.tool(inv, 1, script="rollback.py")
                else:
                    sample = b.floor_rollback(root, first)
                b.add(row("(d)", "rollback"), contestant, sample)
    if not rollback:
        b.notes["(d) rollback"] = "not measured: no rollback yet (no rollback.py in the checkout)"


def real_link(b: Bench, proxies: list) -> None:
    """Reach every host through its delay proxy (g): the same sshd, known by the proxy's port."""
    known = b.hosts[0].known_hosts
    lines = known.read_text().splitlines()
    hosts = []
    for server, proxy in zip(b.servers, proxies, strict=True):
        host = server.host
        entry = next(x for x in lines if x.startswith(f"[127.0.0.1]:{host.port} "))
        with known.open("a") as f:
            f.write(f"[127.0.0.1]:{proxy.port} {entry.split(' ', 1)[1]}\n")
        hosts.append(dataclasses.replace(host, port=proxy.port))
    b.link = hosts


def check_link(b: Bench, proxies: list, runs: int = 5) -> str:
    """`ssh true` without and through the proxy: the extra time is about RTT x round trips."""
    direct, via = b.servers[0].host, b.hosts[0]

    def ssh_true(h: SshHost) -> float:
        return statistics.median(
            timed([*ssh_argv(h), f"{h.user}@{h.hostname}", "true"], cwd=REPO)[0]
            for _ in range(runs)
        )

    plain, slow = ssh_true(direct), ssh_true(via)
    trips = (slow - plain) / (2 * proxies[0].delay)
    return (f"`ssh true`, median of {runs}: {plain:.3f} s direct, {slow:.3f} s through the proxy "
            f"({slow / plain:.1f}x): +{slow - plain:.3f} s = {trips:.1f} round trips of "
            f"{2000 * proxies[0].delay:.0f} ms (an OpenSSH connect + exec takes ~6-8)")  # fmt: skip


def big_site(b: Bench, storage: Path, reps: int) -> None:
    """(h) redeploy of one changed file on the big site, copy and hardlink, tool vs. floor.

    One first deploy per contestant and mode (one sample each), then `reps` (<= 3) redeploys
    to the next commit, contestants alternated, then one same-sha run each. The manifest
    check's own time is the DeployTree read in the tool's timeline of that same-sha run (one
    remote command reading the deploy root and checking the live release's manifest).
    """
    site, shas = generate_big_site()
    files, size = tree_size(site.path)
    big = dataclasses.replace(b, site=site, shas=shas, workdir=b.workdir / "big")
    b.notes["(h) big site"] = (f"{files:,} files, {size / 1e6:.0f} MB (seed {SEED}, kept on "
                               f"{BIG}); {reps} redeploys per contestant and mode")  # fmt: skip
    for mode in ("copy", "hardlink"):
        roots = big.fresh_roots(storage, 2)
        b.counter = big.counter
        invs = [big.inventory([root], mode) for root in roots]
        for index in range(min(reps, len(shas) - 1) + 1):
            big.checkout(index)
            what = "first deploy" if index == 0 else "redeploy, 1 file changed"
            for contestant, root, inv in zip(("tool", "floor"), roots, invs, strict=True):
                if contestant == "tool":
                    sample = big.tool(inv, 1)
                else:
                    sample = big.floor([root], MODES[mode])
                b.add(f"(h) big site, {what} [tmpfs {mode}]", contestant, sample)
                if index == 0:  # the same content arrived: deploy-cache and release sizes
                    sizes = du_kb(root / "deploy-cache", *root.glob("releases/*"))
                    b.notes[f"(h) {mode}, {contestant}: du -sk of deploy-cache, release"] = (
                        ", ".join(f"{kb:,} kB" for kb in sizes))
        # Same sha again, once: the tool's DeployTree read then checks the release's manifest
        # against the host (the manifest check's own time, in the breakdown's DeployTree).
        for contestant, root, inv in zip(("tool", "floor"), roots, invs, strict=True):
            sample = big.tool(inv, 1) if contestant == "tool" else big.floor([root], MODES[mode])
            b.add(f"(h) big site, same sha again [tmpfs {mode}]", contestant, sample)
        print(f"bench:   (h) {mode} done", flush=True)


def many_hosts(b: Bench, storage: Path, counts: list[int], reps: int, huge_reps: int) -> None:
    """(e) N hosts at once: first deploy, then redeploy of a sha differing by one file."""
    for n in [c for c in counts if c != 1]:  # 1 host: measured as (a)/(b) tmpfs copy
        for _rep in range(reps if n <= 8 else huge_reps):
            for contestant in ("tool", "floor"):
                roots = b.fresh_roots(storage, n)
                inv = b.inventory(roots, "copy")
                for index, what in ((0, "first deploy"), (1, "redeploy")):
                    b.checkout(index)
                    sample = b.tool(inv, n) if contestant == "tool" else b.floor(roots, "cp")
                    b.add(f"(e) {n} hosts, {what}", contestant, sample)


def dry_converged(b: Bench, storage: Path, reps: int) -> None:
    """(f) --dry on a converged host (after a real deploy of the same sha)."""
    [root] = b.fresh_roots(storage, 1)
    inv = b.inventory([root], "copy")
    b.checkout(0)
    b.tool(inv, 1)
    for _ in range(reps):
        b.add("(f) --dry, converged host", "tool", b.tool(inv, 1, "--dry"))
    b.tool(inv, 1, "--dry", "--json")  # untimed: how many wanted states (operations) ran
    # stdout (the JSON: {"plan": [one entry per operation], ...}) and stderr share one file
    start = b.last_output.find('{"plan"')
    try:
        states = len(json.JSONDecoder().raw_decode(b.last_output[start:])[0]["plan"])
    except (ValueError, KeyError):
        states = 0
    b.notes["wanted states"] = str(states)


# --------------------------------------------------------------------------- report


def fmt(samples: list[Sample] | None) -> str:
    if not samples:
        return "-"
    s = [x.seconds for x in samples]
    return f"{statistics.median(s):.2f} s ({min(s):.2f}-{max(s):.2f})"


def median(samples: list[Sample] | None, attr: str = "seconds") -> float | None:
    values = [getattr(x, attr) for x in samples or [] if getattr(x, attr) is not None]
    return statistics.median(values) if values else None


def machine() -> list[str]:
    def version(argv: list[str]) -> str:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        return (out.stdout or out.stderr).splitlines()[0].strip()

    import pyinfra

    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {os.cpu_count()} CPUs (nproc), {int(mem) // 1024} MB memory, "
        f"kernel {platform.release()}",
        f"- Python {platform.python_version()}, pyinfra {pyinfra.__version__}, "
        f"{version(['rsync', '--version'])}, {version(['ssh', '-V'])}",
    ]


def report(b: Bench, args, disk: dict, site_files: int, site_bytes: int, elapsed: float) -> str:
    keys = list(dict.fromkeys(s for s, _ in b.samples))
    rows = ["| scenario | tool median (min-max) | floor median (min-max) | tool / floor "
            "| remote cmds/host tool / floor | tool peak RSS |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for scenario in keys:
        tool, floor = b.samples.get((scenario, "tool")), b.samples.get((scenario, "floor"))
        t, f = median(tool), median(floor)
        ratio = f"**{t / f:.2f}x**" if t and f else "-"
        sessions = f"{median(tool, 'sessions') or 0:.0f}"
        if floor:
            sessions += f" / {median(floor, 'sessions'):.0f}"
        rss = median(tool, "maxrss_mb")
        memory = f"{rss:.0f} MB" if rss else "-"
        rows.append(f"| {scenario} | {fmt(tool)} | {fmt(floor)} | {ratio} | {sessions} "
                    f"| {memory} |")  # fmt: skip
    lines = ["# Benchmark results: atomic-deploy vs. the bare-shell floor", ""]
    command = " ".join(["bash bench/run.sh", *sys.argv[1:]])
    lines += [f"Written by `{command}` in {elapsed / 60:.1f} min.", ""]
    lines += machine()
    lines += [
        f"- site: {site_files:,} files, {site_bytes / 1e6:.0f} MB (seed {SEED}), git commits "
        "that change one small file each",
        f"- {args.reps} runs per contestant and scenario ({args.big_reps} for [disk], "
        f"{args.huge_reps} at 32 hosts, {args.link_reps} for (g), {args.busy_reps} for (i), "
        f"{min(args.site_reps, 3)} redeploys for (h) (its first deploy: 1), 1 for reflink, "
        "which can't clone here: the 15-minute budget on 2 cores), "
        "contestants alternated run by run (tool, floor, tool, floor, ...); median and "
        "(min-max) wall time; (e) at 1 host is the (a)/(b) [tmpfs copy] runs",
        "- deploy roots on a **tmpfs** unless the scenario says [disk] (ext4 on a virtual disk: "
        "noisier)",
        f"- sshd's on 127.0.0.1 ({SSHDS}, several hosts share one with different roots), "
        "LogLevel VERBOSE; remote commands = `Starting session:` lines per host (the tool's "
        "rsync counts as one)",
        "- floor = `bench/floor.sh`: one `rsync -a --delete` over ssh + one ssh command "
        "(copy, link shared dirs, rename, switch by rename, prune); hardlink mode vs. the "
        "floor with `cp -al`; reflink vs. the floor with `cp --reflink=auto`",
        "",
        *rows,
        "",
    ]
    for name, note in b.notes.items():
        lines.append(f"- {name}: {note}")
    lines += ["", "Disk used per release (`du -sk` of deploy-cache, release 1, release 2 in one "
              "call: a hard-linked inode counts once, where du meets it first):", "",
              "| storage, mode | contestant | deploy-cache | 1st release | additional release |",
              "|---|---|---|---|---|"]  # fmt: skip
    for (label, mode, contestant), (cache, one, two) in disk.items():
        lines.append(f"| {label} {mode} | {contestant} | {cache:,} kB | {one:,} kB | {two:,} kB |")
    lines += ["", "## Where the tool's time goes", ""]
    lines += breakdown(b)
    lines += ["", "## Targets", ""]
    lines += targets(b)
    return "\n".join(lines) + "\n"


PHASES = ("start", "imports", "inventory", "connect", "prepare", "execute")


def breakdown(b: Bench) -> list[str]:
    """Per scenario, medians of the tool's timeline (bench/timeline.py) over its runs."""
    out = [
        "Medians over the tool's runs, seconds (bench/timeline.py around the same pyinfra CLI): "
        "start = interpreter start; imports = pyinfra's CLI and the tool's modules; inventory = "
        "client file, schema, git (stage = of which staging the upload set); connect; prepare "
        "= loading deploy.py (facts read on the way); execute = running the operations (rsync "
        "= the upload; facts = remote reads, all phases, count and seconds, DeployTree = the "
        "deploy-root read incl. the manifest check); rest = exit and what's not split off. "
        "Slowest operations: execute-phase time per operation (its remote commands, the copy "
        "in `release`).",
        "",
        "| scenario | wall | start | imports | inventory (stage) | connect | prepare | execute "
        "| rsync | facts | DeployTree | rest | slowest operations |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in dict.fromkeys(s for s, _ in b.samples):
        runs = [x for x in b.samples.get((scenario, "tool"), []) if x.timeline]
        if not runs:
            continue

        def med(get, runs: list[Sample] = runs) -> float:
            return statistics.median(get(x.timeline) for x in runs)

        wall = statistics.median(x.seconds for x in runs)
        phase = {p: med(lambda t, p=p: t.get(p, 0.0)) for p in PHASES}
        facts_n = med(lambda t: sum(n for n, _ in t["facts"].values()))
        facts_s = med(lambda t: sum(s for _, s in t["facts"].values()))
        tree = med(lambda t: t["facts"].get("DeployTree", [0, 0.0])[1])
        ops: dict[str, float] = {}
        for name in {n for x in runs for n in x.timeline["ops"]}:
            ops[name] = med(lambda t, n=name: t["ops"].get(n, 0.0))
        slowest = ", ".join(f"{n} {v:.2f}" for n, v in sorted(ops.items(), key=lambda i: -i[1])[:3])
        cells = [f"{wall:.2f}", *(f"{phase[p]:.2f}" for p in PHASES[:2]),
                 f"{phase['inventory']:.2f} ({med(lambda t: t.get('stage', 0.0)):.2f})",
                 *(f"{phase[p]:.2f}" for p in PHASES[3:]),
                 f"{med(lambda t: t.get('rsync', 0.0)):.2f}", f"{facts_n:.0f}: {facts_s:.2f}",
                 f"{tree:.2f}", f"{wall - sum(phase.values()):.2f}", slowest]  # fmt: skip
        out.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return out


def ratio(b: Bench, scenario: str) -> float | None:
    t, f = median(b.samples.get((scenario, "tool"))), median(b.samples.get((scenario, "floor")))
    return t / f if t and f else None


def targets(b: Bench) -> list[str]:
    out = []

    def check(name: str, value: float | None, limit: float, unit: str = "x") -> None:
        if value is None:
            out.append(f"- {name}: not measured")
            return
        verdict = "met" if value <= limit else "**not met**"
        out.append(f"- {name}: {value:.2f}{unit} (target <= {limit:g}{unit}): {verdict}")

    check("(a) first deploy, tmpfs copy", ratio(b, "(a) first deploy [tmpfs copy]"), 1.5)
    check("(b) redeploy, tmpfs copy", ratio(b, "(b) redeploy, 1 file changed [tmpfs copy]"), 1.5)
    # (c), (d): no worse than bench/results.md of 2026-11-28 (1.72x, 4.89x)
    check("(c) same sha, tmpfs copy", ratio(b, "(c) same sha again [tmpfs copy]"), 1.72)
    check("(c) remote commands per host",
          median(b.samples.get(("(c) same sha again [tmpfs copy]", "tool")), "sessions"), 2,
          " cmds")  # fmt: skip
    check("(d) rollback", ratio(b, "(d) rollback [tmpfs copy]"), 4.89)
    check("(e) 8 hosts, first deploy", ratio(b, "(e) 8 hosts, first deploy"), 1.15)
    check("(e) 8 hosts, redeploy", ratio(b, "(e) 8 hosts, redeploy"), 1.4)
    one = median(b.samples.get(("(e) 1 hosts, redeploy", "tool")))
    many = median(b.samples.get(("(e) 32 hosts, redeploy", "tool")))
    check("(e) time at 32 hosts / time at 1 host, redeploy", many / one if one and many else None,
          3)  # fmt: skip
    one = median(b.samples.get(("(e) 1 hosts, redeploy", "floor")))
    many = median(b.samples.get(("(e) 32 hosts, redeploy", "floor")))
    if one and many:  # all hosts share this machine's cores: the work itself grows with them
        out.append(f"  - for scale, the floor's own time at 32 hosts / 1 host: {many / one:.2f}x")
    link = "[40 ms RTT copy]"
    check("(g) 40 ms RTT, redeploy", ratio(b, f"(g) redeploy, 1 file changed {link}"), 1.5)
    check("(g) 40 ms RTT, same sha", ratio(b, f"(g) same sha again {link}"), 1.5)
    check("(g) 40 ms RTT, rollback", ratio(b, f"(g) rollback {link}"), 2)
    for mode in ("copy", "hardlink"):
        check(f"(h) big site redeploy, {mode}",
              ratio(b, f"(h) big site, redeploy, 1 file changed [tmpfs {mode}]"), 1.3)  # fmt: skip
    check("(i) busy host, redeploy", ratio(b, "(i) redeploy, 1 file changed [busy host copy]"),
          1.5)  # fmt: skip
    check("(i) busy host, rollback", ratio(b, "(i) rollback [busy host copy]"), 1.5)
    states = int(b.notes.get("wanted states", "0")) or None
    dry = median(b.samples.get(("(f) --dry, converged host", "tool")), "sessions")
    check("(f) --dry remote commands per host per wanted state",
          dry / states if dry is not None and states else None, 1, " cmds")  # fmt: skip
    return out


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="runs per contestant and scenario")
    parser.add_argument("--big-reps", type=int, default=2,
                        help="runs per contestant for the disk variant and 32 hosts")
    parser.add_argument("--quick", action="store_true", help="small site, 1 and 8 hosts only")
    parser.add_argument("--huge-reps", type=int, default=1, help="runs per contestant, 32 hosts")
    parser.add_argument("--hosts", default="1,8,32", help="host counts for (e)")
    parser.add_argument("--link-reps", type=int, default=3, help="runs per contestant, (g)")
    parser.add_argument("--site-reps", type=int, default=2, help="redeploys per contestant, (h)")
    parser.add_argument("--busy-reps", type=int, default=3, help="runs per contestant, (i)")
    parser.add_argument("--busy-loops", type=int, default=os.cpu_count() or 2,
                        help="busy loops on the host side during each (i) run")
    parser.add_argument("--only", default="a-f,g,h,i",
                        help="scenario groups to run, e.g. g,h,i (a-f: the loopback ones)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root: bash bench/run.sh")
    started = time.monotonic()
    counts = [1, 8] if args.quick else [int(n) for n in args.hosts.split(",")]
    # One bench at a time on this machine: a second one would remove this one's BASE.
    lock = open(f"{BASE}.lock", "w")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"bench: another bench run holds {BASE}.lock") from None

    tmpfs, disk_dir = BASE / "tmpfs", BASE / "disk"
    if BASE.exists():
        for mount in [*tmpfs.glob("r*"), tmpfs]:  # tmpfs itself: mounted by earlier versions
            unmount(mount)
        shutil.rmtree(BASE, ignore_errors=True)
    BASE.mkdir(parents=True)
    BASE.chmod(0o755)
    tmpfs.mkdir(mode=0o755)
    disk_dir.mkdir()
    servers = []
    try:
        keys = BASE / "ssh"
        client_key, host_key = make_ssh_keys(keys)
        known = keys / "known_hosts"
        known.write_text("")
        for i in range(SSHDS):
            servers.append(start_sshd(keys, f"bench{i}", client_key=client_key,
                                      host_key=host_key, known_hosts=known,
                                      skip_ports={s.host.port for s in servers}))  # fmt: skip
        print("bench: generating the site ...", flush=True)
        site, shas = generate_site(BASE / "site", args.quick)
        files, size = tree_size(site.path)
        print(f"bench: site {files:,} files, {size / 1e6:.0f} MB", flush=True)
        python = tool_python()
        b = Bench(servers, site, shas, BASE / "work", python=python, tmpfs=tmpfs)
        b.notes["Python"] = (
            f"the tool runs from its own virtualenv (bench/.venv, {distributions(python)} "
            f"packages, as `pipx install` gives); the machine's Python has "
            f"{distributions(sys.executable)}: see the (c) row run by it"
        )
        disk: dict = {}
        load = [os.getloadavg()[0]]
        for mode in MODES if "a-f" in only else ():
            # tmpfs can't clone: reflink is its fallback (= copy); one run shows its cost
            reps = 1 if mode == "reflink" else args.reps
            print(f"bench: (a)-(d) tmpfs, copy_mode {mode}, {reps} runs ...", flush=True)
            single_host(b, tmpfs, "tmpfs", mode, reps, disk)
            print(f"bench:   {(time.monotonic() - started) / 60:.1f} min", flush=True)
        if "a-f" in only:
            print("bench: (a)-(b) disk, copy_mode copy ...", flush=True)
            single_host(b, disk_dir, "disk", "copy", args.big_reps, disk)
            for old in disk_dir.glob("r*"):
                shutil.rmtree(old, ignore_errors=True)
            print(f"bench: (e) {counts} hosts ...", flush=True)
            many_hosts(b, tmpfs, counts, args.reps, args.huge_reps)
            print(f"bench:   {(time.monotonic() - started) / 60:.1f} min", flush=True)
            print("bench: (f) --dry on a converged host ...", flush=True)
            dry_converged(b, tmpfs, args.reps)
        if "g" in only:
            proxies = [DelayProxy(s.host.port) for s in servers]
            try:
                real_link(b, proxies)
                b.notes["(g) the proxy itself"] = check_link(b, proxies)
                print(f"bench: (g) {b.notes['(g) the proxy itself']}", flush=True)
                print(f"bench: (g) 40 ms RTT, {args.link_reps} runs ...", flush=True)
                single_host(b, tmpfs, "40 ms RTT", "copy", args.link_reps, disk, "(g)", "cd")
            finally:
                b.link = None
                for proxy in proxies:
                    proxy.stop()
            print(f"bench:   {(time.monotonic() - started) / 60:.1f} min", flush=True)
        if "i" in only:
            print(f"bench: (i) busy host ({args.busy_loops} loops), {args.busy_reps} runs ...",
                  flush=True)  # fmt: skip
            b.busy = args.busy_loops
            single_host(b, tmpfs, "busy host", "copy", args.busy_reps, disk, "(i)", "d")
            b.busy = 0
            b.notes["(i) busy host"] = (
                f"{args.busy_loops} busy loops (`nice -n 19`, as deploy) run during each timed "
                "run of both contestants, killed after; (a) runs first to have a release to "
                "redeploy and roll back"
            )
            print(f"bench:   {(time.monotonic() - started) / 60:.1f} min", flush=True)
        if "h" in only:
            print(f"bench: (h) big site, {args.site_reps} redeploys ...", flush=True)
            big_site(b, tmpfs, min(args.site_reps, 3))
            print(f"bench:   {(time.monotonic() - started) / 60:.1f} min", flush=True)
        load.append(os.getloadavg()[0])
        b.notes["load average (1 min) at start / end"] = " / ".join(f"{x:.1f}" for x in load)
        elapsed = time.monotonic() - started
        text = report(b, args, disk, files, size, elapsed)
        RESULTS.write_text(text)
        print(text)
        print(f"bench: wrote {RESULTS} ({elapsed / 60:.1f} min)")
    finally:
        for server in servers:
            server.stop()
        for mount in tmpfs.glob("r*"):
            unmount(mount)


if __name__ == "__main__":
    main()
