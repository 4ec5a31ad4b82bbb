"""The DeployTree script, run by a real sh against real folders (no pyinfra connection)."""

import os
import subprocess
from pathlib import Path

from operations.facts import DeployTree, parse_deploy_tree
from operations.layout import MANIFEST, MARKER, META_DIR
from operations.manifest import listing_command, parse_differences


def _read(
    root: Path | None,
    sha: str = "abc1234",
    shared_dirs=("cache", "storage"),
    shared_files=(".env",),
    home: Path | None = None,
):
    command = DeployTree().command(
        root=str(root) if root else None,
        sha=sha,
        docroot="htdocs",
        shared_dirs=list(shared_dirs),
        shared_files=list(shared_files),
        meta=META_DIR,
        marker=MARKER,
        manifest=MANIFEST,
    )
    env = {**os.environ, "HOME": str(home or "/nonexistent")}
    out = subprocess.run(
        ["sh", "-c", command.get_raw_value()], capture_output=True, text=True, env=env, check=True
    )
    return parse_deploy_tree(out.stdout.splitlines())


def test_missing_root(tmp_path):
    state = _read(tmp_path / "nope")
    assert state.root_state == "missing"
    assert state.root == str(tmp_path / "nope")


def test_root_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    assert _read(tmp_path / "f").root_state == "notdir"


def test_empty_root_defaults_to_home(tmp_path):
    state = _read(None, home=tmp_path)
    assert state.root == str(tmp_path)
    assert state.root_state == "ok"


def test_full_tree(tmp_path):
    root = tmp_path / "with space 'q' ü"
    (root / "releases" / "abc1234" / "htdocs").mkdir(parents=True)
    (root / "releases" / "abc1234" / MARKER).write_text("abc1234\n")
    (root / "releases" / "abc1234" / "cache").symlink_to("../../shared/cache")
    (root / "releases" / "abc1234" / "storage").mkdir()
    (root / "releases" / "abc1234" / "storage" / "x").write_text("x")
    (root / "releases" / "def5678").mkdir()
    (root / "releases" / ".tmp-def5678").mkdir()
    (root / "releases" / "odd\nname").mkdir()
    (root / "shared" / "cache").mkdir(parents=True)
    (root / "shared" / ".env").write_text("")
    (root / "deploy-cache").mkdir()
    (root / META_DIR).mkdir()
    (root / META_DIR / "log").write_text("t\tpopulated\tabc1234\tme\t\n")
    (root / "current").symlink_to("releases/abc1234")
    (root / "htdocs").mkdir()
    state = _read(root)
    assert state.root_state == "ok"
    assert {"deploy-cache", "releases", "shared", META_DIR} <= state.dirs
    assert state.link_target("current") == "releases/abc1234"
    assert state.docroot == "emptydir"
    assert state.complete("abc1234") and not state.complete("def5678")
    assert set(state.entries) == {"abc1234", "def5678", ".tmp-def5678", "odd?name"}
    # shared paths by index: cache, storage, .env
    assert state.shared == ["emptydir", "missing", "emptyfile"]
    assert state.in_release == ["link ../../shared/cache", "dir", "missing"]
    assert state.log == ["t\tpopulated\tabc1234\tme\t"]


def _release(root: Path, sha: str = "abc1234") -> Path:
    rel = root / "releases" / sha
    (rel / "htdocs").mkdir(parents=True)
    (rel / "htdocs" / "index.php").write_text("<?php")
    (rel / "htdocs" / "old.css").write_text("a")
    (rel / "storage").symlink_to("../../shared/storage")
    (root / "shared" / "storage").mkdir(parents=True)
    listing = listing_command(["cache", "storage", ".env"]).get_raw_value()
    manifest = subprocess.run(
        ["sh", "-c", listing], cwd=rel, capture_output=True, text=True, check=True
    ).stdout
    (rel / MANIFEST).write_text(manifest)
    (rel / MARKER).write_text(sha + "\n")
    return rel


def test_an_untouched_release_matches_its_manifest(tmp_path):
    _release(tmp_path)
    state = _read(tmp_path)
    assert state.manifest == "ok" and state.intact("abc1234")


def test_hot_fixes_are_found_with_their_paths(tmp_path):
    rel = _release(tmp_path)
    (rel / "htdocs" / "index.php").write_text("<?php // hot-fix")
    (rel / "htdocs" / "new file ü.php").write_text("x")
    (rel / "htdocs" / "old.css").unlink()
    (tmp_path / "shared" / "storage" / "log.txt").write_text("the site writes here: not drift")
    state = _read(tmp_path)
    assert state.manifest == "changed" and not state.intact("abc1234")
    assert parse_differences(state.differences) == [
        "edited: htdocs/index.php",
        "added: htdocs/new file ü.php",
        "deleted: htdocs/old.css",
    ]


def test_content_in_place_of_a_shared_link_is_checked_for_conflicts(tmp_path):
    rel = _release(tmp_path)
    (rel / "storage").unlink()
    (rel / "storage").mkdir()
    (rel / "storage" / "new.log").write_text("x")
    assert _read(tmp_path).mergeable == {1: True}
    (tmp_path / "shared" / "storage" / "new.log").write_text("older")
    state = _read(tmp_path)
    assert state.mergeable == {1: False}
    assert state.in_release[1] == "dir"
    assert state.manifest == "ok"  # shared paths are not part of the manifest


def test_shared_files_are_reported_by_hash_never_by_content(tmp_path):
    import hashlib

    (tmp_path / "shared" / "conf").mkdir(parents=True)
    (tmp_path / "shared" / ".env").write_text("APP_KEY=s3cr3tvalue\n")
    (tmp_path / "shared" / "conf" / "link.env").symlink_to("../.env")
    state = _read(tmp_path, shared_files=(".env", "conf/link.env", "missing.env"))
    digest = hashlib.sha256(b"APP_KEY=s3cr3tvalue\n").hexdigest()
    # indexes: cache, storage, then the files; a link is not hashed (it is never replaced)
    assert state.shared_sums == {2: digest}
    assert state.shared[3] == "link ../.env" and state.shared[4] == "missing"
