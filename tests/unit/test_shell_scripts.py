"""The scripts of operations/sh/, run by the local `sh` exactly as a host runs them (the
command shell.script builds, through `sh -c`), against real folders in tmp_path."""

import os
import subprocess
from pathlib import Path

import pytest

from operations.facts import LOCK_DIR, DeployTree, parse_deploy_tree
from operations.layout import (
    CACHE_DIR,
    CURRENT_LINK,
    MANIFEST,
    MARKER,
    META_DIR,
    RELEASES_DIR,
    SHARED_DIR,
)
from operations.shell import script, script_text
from operations.states import lock

SCRIPTS = Path(__file__).parents[2] / "operations" / "sh"
HOSTILE = ["$(touch pwned)", "`touch pwned`", "it's", 'say "hi"', "a\nb", "; touch pwned", "-x"]


def _sh(command, cwd: Path, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home or "/nonexistent")}
    text = command.get_raw_value()
    return subprocess.run(["sh", "-c", text], cwd=cwd, capture_output=True, text=True, env=env)


def _read_command(root: Path, sha="abc1234", dirs=("cache",), files=(), owner=None):
    return DeployTree().command(
        root=str(root), sha=sha, docroot="htdocs", shared_dirs=list(dirs),
        shared_files=list(files), meta=META_DIR, marker=MARKER, manifest=MANIFEST, owner=owner,
    )  # fmt: skip


def _read(root: Path, **kw):
    out = _sh(_read_command(root, **kw), cwd=root.parent)
    assert out.returncode == 0, out.stderr
    return parse_deploy_tree(out.stdout.splitlines())


def _release(root: Path, sha: str) -> Path:
    rel = root / RELEASES_DIR / sha
    (rel / "htdocs").mkdir(parents=True)
    (rel / MARKER).write_text(sha + "\n")
    return rel


def test_every_script_is_package_data_and_ends_with_a_newline():
    names = sorted(p.name for p in SCRIPTS.glob("*.sh"))
    assert {"deploy_tree.sh", "take_lock.sh", "lock.sh", "dump.sh", "restore.sh"} <= set(names)
    for name in names:
        assert script_text(name).startswith("# shellcheck shell=sh\n")
        assert script_text(name).endswith("\n")


def test_the_helper_quotes_every_value_and_argument(tmp_path):
    values = {f"v{i}": value for i, value in enumerate(HOSTILE)}
    # take_lock.sh stops at once without a root: only the assignments and `set --` act.
    command = script("take_lock.sh", {**values, "r": str(tmp_path / "absent")}, HOSTILE)
    probe = command.get_raw_value() + ' ; printf "%s\\0" "$@" ' + " ".join(
        f'"$v{i}"' for i in range(len(HOSTILE))
    )
    out = subprocess.run(["sh", "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\0")[:-1] == HOSTILE + HOSTILE
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing was created


def test_the_helper_refuses_a_bad_variable_name():
    with pytest.raises(ValueError, match="not a shell variable name"):
        script("lock.sh", {"x; touch y": "1"})


def test_the_deploy_tree_read_reports_a_real_root(tmp_path):
    root = tmp_path / "site 'one'"
    _release(root, "abc1234")
    _release(root, "def5678")
    (root / RELEASES_DIR / ".tmp-0123456-run").mkdir()  # no marker: incomplete
    (root / CURRENT_LINK).symlink_to(f"{RELEASES_DIR}/abc1234")
    (root / "htdocs").symlink_to(f"{CURRENT_LINK}/htdocs")
    (root / CACHE_DIR).mkdir()
    odd_dir, odd_file = "up 'loads' $(x)", "conf/.env \"prod\""
    (root / SHARED_DIR / odd_dir).mkdir(parents=True)
    (root / SHARED_DIR / "conf").mkdir()
    (root / SHARED_DIR / odd_file).write_text("KEY=1\n")
    (root / RELEASES_DIR / "abc1234" / odd_dir).symlink_to(f"../../{SHARED_DIR}/{odd_dir}")
    (root / ".current.atomic-deploy-tmp").symlink_to("releases/def5678")
    (root / LOCK_DIR).mkdir(parents=True)
    (root / LOCK_DIR / "owner").write_text("token=t1\nuser=ann\n")
    state = _read(root, dirs=(odd_dir, "missing dir"), files=(odd_file,))
    assert state.root == str(root) and state.root_state == "ok"
    assert {CACHE_DIR, RELEASES_DIR, SHARED_DIR, META_DIR} <= state.dirs
    assert state.link_target("current") == f"{RELEASES_DIR}/abc1234"
    assert state.link_target("docroot") == f"{CURRENT_LINK}/htdocs"
    assert state.complete("abc1234") and state.complete("def5678")
    assert not state.complete(".tmp-0123456-run")
    assert state.shared == ["emptydir", "missing", "file"]
    assert state.in_release == [f"link ../../{SHARED_DIR}/{odd_dir}", "missing", "missing"]
    assert 2 in state.shared_sums and state.manifest == "missing"
    assert state.temp_links == [".current.atomic-deploy-tmp"]
    assert state.lock == {"token": "t1", "user": "ann"}


def test_the_read_takes_the_lock_exactly_once(tmp_path):
    root = tmp_path / "root"
    (root / META_DIR).mkdir(parents=True)
    first = _read(root, owner="token=first\n")
    assert first.lock == {"token": "first"}
    second = _read(root, owner="token=second\n")
    assert second.lock == {"token": "first"}  # held: the second read only reports it
    assert (root / LOCK_DIR / "owner").read_text() == "token=first\n"


def test_the_read_does_not_take_the_lock_where_preflight_would_stop(tmp_path):
    root = tmp_path / "root"
    (root / META_DIR).mkdir(parents=True)
    (root / CURRENT_LINK).mkdir()  # a real folder where the link belongs
    assert _read(root, owner="token=first\n").lock is None
    assert not (root / LOCK_DIR).exists()


def test_lock_take_give_back_and_take_over(tmp_path):
    root = str(tmp_path / "root")
    take = _sh(lock._acquire(root, "token=a\nuser=ann\n", None), tmp_path)
    assert take.returncode == 0 and (tmp_path / "root" / LOCK_DIR / "owner").exists()
    again = _sh(lock._acquire(root, "token=b\n", None), tmp_path)
    assert again.returncode == 1 and again.stdout == "locked:\ntoken=a\nuser=ann\n"
    # giving back with another run's token, or taking over a lock that changed hands: no-op
    assert _sh(lock._release_command(root, "b"), tmp_path).returncode == 0
    assert _sh(lock._acquire(root, "token=b\n", "zzz"), tmp_path).returncode == 1
    assert (tmp_path / "root" / LOCK_DIR / "owner").read_text() == "token=a\nuser=ann\n"
    over = _sh(lock._acquire(root, "token=b\n", "a"), tmp_path)
    assert over.returncode == 0
    assert (tmp_path / "root" / LOCK_DIR / "owner").read_text() == "token=b\n"
    assert _sh(lock._release_command(root, "b"), tmp_path).returncode == 0
    assert not (tmp_path / "root" / LOCK_DIR).exists()
    assert oct((tmp_path / "root" / META_DIR).stat().st_mode & 0o777) == "0o700"


def test_reflink_copy_clones_or_falls_back_to_a_full_copy(tmp_path):
    from operations.copy_mode import FALLBACK_MARK, copy_command

    src = tmp_path / "deploy cache"
    (src / "htdocs").mkdir(parents=True)
    (src / "htdocs" / "index.php").write_text("<?php")
    dest = tmp_path / "release 'x'"
    out = _sh(copy_command("reflink", str(src), str(dest)), tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout in ("", FALLBACK_MARK + "\n")  # which one depends on the file system
    assert (dest / "htdocs" / "index.php").read_text() == "<?php"
