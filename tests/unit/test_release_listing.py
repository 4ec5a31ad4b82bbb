"""The commands that build a release (release.populate_commands), run by the local `sh` as a
host runs them, against real folders: the manifest they write, partly while copying
(manifest.copy_listed), must be exactly the listing of the finished release."""

import os
import re
import shutil
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from operations.common import chain
from operations.layout import CACHE_DIR, MANIFEST, MARKER, RELEASES_DIR, Layout
from operations.manifest import copy_listed, listing_command
from operations.states.release import populate_commands
from tests.fakes import make_deploy

MODES = ["copy", "hardlink", "reflink"]  # reflink falls back to copy on tmpfs/ext4
SHARED_DIRS = ("storage", "web/uploads")
SHARED_FILES = ("config/.env",)
WRITABLE = ("web/cpresources", "runtime")
ODD_ROOT = "deploy root 'x' $(touch pwned)"


def _sh(text: str, cwd: Path, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": "/nonexistent", **({"PATH": path} if path else {})}
    return subprocess.run(["sh", "-c", text], cwd=cwd, capture_output=True, text=True, env=env)


def _site(cache: Path) -> None:
    """A site with what a listing can get wrong: links of every kind, empty folders, odd
    names, an executable, a FIFO, hard links, a nanosecond mtime, the shared paths and
    writable dirs in it (the upload leaves shared paths out; a stale cache might not)."""
    for d in ["htdocs", "bin", "a dir", "new\nline", "empty", "deep/er", "sub", "config", "web"]:
        (cache / d).mkdir(parents=True, exist_ok=True)
    (cache / "htdocs/index.php").write_text("<?php echo 1;\n")
    (cache / "bin/run").write_text("#!/bin/sh\necho run\n")
    (cache / "bin/run").chmod(0o755)
    (cache / "a dir/with space.txt").write_text("spaces\n")
    (cache / "new\nline/file\nname").write_text("newlines\n")
    (cache / "sub/\"quoted\" 'name' $(x)").write_text("quotes\n")
    (cache / "sub" / MANIFEST).write_text("not the release's: it is in a subfolder\n")
    (cache / "htdocs/rel").symlink_to("../bin/run")
    (cache / "htdocs/assets").symlink_to("../a dir")
    (cache / "abs").symlink_to("/etc/hostname")
    (cache / "gone").symlink_to("nowhere")
    (cache / "h1").write_text("linked\n")
    os.link(cache / "h1", cache / "h2")
    os.mkfifo(cache / "pipe")
    os.utime(cache / "htdocs/index.php", ns=(1_700_000_000_123_456_789,) * 2)
    (cache / "config/app.php").write_text("<?php return [];\n")
    (cache / "config/.env").write_text("SECRET=from-the-cache\n")
    (cache / "storage/logs").mkdir(parents=True)
    (cache / "storage/logs/app.log").write_text("old\n")
    (cache / "web/cpresources/x").mkdir(parents=True)
    (cache / "web/cpresources/x/app.css").write_text("body{}\n")


def _root(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / ODD_ROOT
    (root / RELEASES_DIR).mkdir(parents=True)
    _site(root / CACHE_DIR)
    return root / CACHE_DIR, root / RELEASES_DIR / ".tmp-abcdef123456-1"


def _deploy(mode: str, shared_dirs=SHARED_DIRS, shared_files=SHARED_FILES, writable=WRITABLE):
    deploy = make_deploy(shared_dirs=shared_dirs, shared_files=shared_files)
    layout = Layout(None, "htdocs", tuple(shared_dirs), tuple(shared_files), tuple(writable))
    return replace(deploy, layout=layout, copy_mode=mode, writable_mode="2775")


def _unlisted(deploy) -> list[str]:
    return [p for _, p in deploy.layout.shared_paths] + list(deploy.layout.writable_dirs)


def _populate(deploy, cache: Path, build: Path, path: str | None = None):
    steps = populate_commands(deploy, str(cache), str(build), acl=False)
    return _sh(chain(*steps).get_raw_value(), cwd=cache.parent, path=path)


def _listing_now(deploy, build: Path) -> str:
    out = _sh(listing_command(_unlisted(deploy)).get_raw_value(), cwd=build)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("mode", MODES)
def test_the_manifest_is_the_listing_of_the_finished_release(tmp_path, mode):
    cache, build = _root(tmp_path)
    deploy = _deploy(mode)
    out = _populate(deploy, cache, build)
    assert out.returncode == 0, out.stderr
    manifest = (build / MANIFEST).read_text()
    assert manifest == _listing_now(deploy, build)
    lines = manifest.splitlines()
    # What it lists, and what it leaves out.
    assert "l ../bin/run -> htdocs/rel" in lines and "l /etc/hostname -> abs" in lines
    assert "l nowhere -> gone" in lines and "d empty" in lines and "d deep/er" in lines
    assert "f 14 1700000000.1234567890 htdocs/index.php" in lines
    assert any(line.startswith("p 0 ") and line.endswith(" pipe") for line in lines)
    assert any(line.endswith(f" sub/{MANIFEST}") for line in lines)
    assert "d new" in lines and "line" in lines  # a name with a newline: two lines, as ever
    for gone in ["storage", "web/uploads", "config/.env", "web/cpresources", "runtime"]:
        assert not any(line.endswith(" " + gone) or f" {gone}/" in line for line in lines)
    assert not any(line.endswith((f" {MANIFEST}", f" {MARKER}")) for line in lines)
    # The release is what release.py promises: links into shared/, writable dirs as folders.
    assert os.readlink(build / "storage") == "../../shared/storage"
    assert os.readlink(build / "config/.env") == "../../../shared/config/.env"
    assert (build / "web/cpresources/x/app.css").read_text() == "body{}\n"
    assert stat.S_IMODE((build / "runtime").stat().st_mode) == 0o2775
    assert (build / MARKER).read_text() == "abcdef123456\n"
    assert not (tmp_path / "pwned").exists() and not (cache.parent / "pwned").exists()


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_the_listing_is_written_while_copying_where_it_is_the_same(tmp_path, mode):
    cache, build = _root(tmp_path)
    deploy = _deploy(mode)
    out = _sh(copy_listed(mode, str(cache), str(build), _unlisted(deploy)).get_raw_value(),
              cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (build / MANIFEST).read_text() == _listing_now(deploy, cache)
    if mode == "hardlink":
        assert (build / "bin/run").stat().st_ino == (cache / "bin/run").stat().st_ino


def _no_storage(cache: Path) -> None:
    subprocess.run(["rm", "-rf", str(cache / "storage")], check=True)


def _linked_web(cache: Path) -> None:
    (cache / "web").rename(cache / "public")
    (cache / "web").symlink_to("public")


def _own_name(cache: Path) -> None:
    (cache / MANIFEST).write_text("an uploaded file under the release's own name\n")


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
@pytest.mark.parametrize("case", [_no_storage, _linked_web, _own_name])
def test_where_the_cache_listing_could_differ_the_release_is_listed(tmp_path, mode, case):
    """A shared path or writable dir whose parent folder the copy lacks (mkdir -p makes it, or
    makes it through a link), or a file under the manifest's name: listing deploy-cache/ could
    differ, so the copy is not listed ahead, and the release's own listing is written."""
    cache, build = _root(tmp_path)
    case(cache)
    deploy = _deploy(mode, shared_dirs=("storage/logs", "web/uploads"))
    ahead = _sh(copy_listed(mode, str(cache), str(build), _unlisted(deploy)).get_raw_value(),
                cwd=tmp_path)  # fmt: skip
    assert ahead.returncode == 0, ahead.stderr
    assert not (build / MANIFEST).exists()
    subprocess.run(["rm", "-rf", str(build)], check=True)
    out = _populate(deploy, cache, build)
    assert out.returncode == 0, out.stderr
    manifest = (build / MANIFEST).read_text()
    assert manifest == _listing_now(deploy, build)
    assert manifest != _listing_now(deploy, cache) or case is _own_name
    assert (cache / MANIFEST).exists() == (case is _own_name)  # the cache is left as it was


def test_a_copy_to_another_file_system_is_not_listed_ahead(tmp_path):
    """Another file system may keep mtimes coarser than deploy-cache/'s: list the copy."""
    cache, build = _root(tmp_path)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "stat").write_text("#!/bin/sh\ncase $3 in */releases) echo 2;; *) echo 1;; esac\n")
    (stubs / "stat").chmod(0o755)
    deploy = _deploy("copy")
    command = copy_listed("copy", str(cache), str(build), _unlisted(deploy)).get_raw_value()
    out = _sh(command, cwd=tmp_path, path=f"{stubs}:{os.environ['PATH']}")
    assert out.returncode == 0, out.stderr
    assert (build / "bin/run").exists() and not (build / MANIFEST).exists()


@pytest.mark.parametrize("failing", ["cp", "sort"])
def test_a_failing_copy_or_listing_fails_the_build_before_the_marker(tmp_path, failing):
    cache, build = _root(tmp_path)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / failing).write_text("#!/bin/sh\nexit 3\n")
    (stubs / failing).chmod(0o755)
    out = _populate(_deploy("hardlink"), cache, build, path=f"{stubs}:{os.environ['PATH']}")
    assert out.returncode != 0
    assert not (build / MARKER).exists()


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_a_slow_copy_says_how_far_it_got(tmp_path, mode, monkeypatch):
    """Progress lines on stdout while the copy runs (shown live per host by release.py)."""
    monkeypatch.setattr("operations.manifest.progress_interval", lambda: 1)  # a terminal's
    cache, build = _root(tmp_path)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    real_cp = shutil.which("cp")
    (stubs / "cp").write_text(f"#!/bin/sh\n'{real_cp}' \"$@\" && sleep 2.5\n")  # a big site's
    (stubs / "cp").chmod(0o755)
    deploy = _deploy(mode)
    out = _populate(deploy, cache, build, path=f"{stubs}:{os.environ['PATH']}")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines and all(re.fullmatch(r"copy: \d+ files, \d+\.\d MB so far", x) for x in lines)
    # the last line came while cp (the stub) lingered after copying: every entry counted
    assert int(lines[-1].split()[1]) >= sum(1 for _ in cache.rglob("*"))
    assert (build / MANIFEST).read_text() == _listing_now(deploy, build)
