"""The DeployTree script, run by a real sh against real folders (no pyinfra connection)."""

import os
import subprocess
from pathlib import Path

from operations.facts import DeployTree, parse_deploy_tree
from operations.layout import MARKER, META_DIR


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
