"""The upload set and the release name, computed locally (real git and rsync, no host)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from support.site import SiteRepo

from operations.release_name import resolve_release
from operations.upload import Spec, UploadError, prepare

FILES = {
    ".gitignore": "/.env\n/vendor/\n/node_modules/\n",
    "web/index.php": "<?php echo 1;\n",
    "web/css/a.css": "a {}\n",
    "config/app.php": "<?php return [];\n",
    "storage/.gitkeep": "",
    "tests/t.php": "<?php // test\n",
}


@pytest.fixture
def site(tmp_path: Path) -> SiteRepo:
    repo = SiteRepo.create(tmp_path / "site", files=FILES)
    (repo.path / ".env").write_text("SECRET=1\n")
    (repo.path / "vendor/pkg").mkdir(parents=True)
    (repo.path / "vendor/pkg/a.php").write_text("<?php // vendor\n")
    return repo


def _prepare(repo: SiteRepo, *, allow_dirty: bool = False, **spec):
    spec = {"docroot": "web", "shared": ("storage",), **spec}
    commit = resolve_release(repo.path, allow_dirty=allow_dirty)
    return prepare(Spec(source=repo.path, **spec), commit, repo.path / "client.yml")


def _files(folder: Path) -> set[str]:
    return {
        str(Path(d, f).relative_to(folder)) for d, _, names in os.walk(folder) for f in names
    }


def _sent(upload) -> set[str]:
    """What the upload sends: rsync's own listing of its source with its patterns."""
    argv = ["rsync", "-r", "-l", "--dry-run", "--out-format=%n", "--exclude=.git"]
    argv += [f"--exclude={p}" for p in upload.excludes]
    argv += ["--", f"{upload.folder}/", "/nonexistent/x/"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines() if line and not line.endswith("/")}


def test_a_clean_commit_uploads_its_tracked_files_under_the_commit_name(site):
    upload = _prepare(site)
    assert upload.name == site.sha_short()
    # sent straight from the work tree (no staging), leaving out what git does not track
    assert upload.folder == site.path
    assert _sent(upload) == {".gitignore", "web/index.php", "web/css/a.css",
                             "config/app.php", "tests/t.php"}  # fmt: skip
    assert upload.not_uploaded == ("storage",)  # tracked, but shared: lives on the hosts
    # the same set staged (an exclude pattern forces staging) has the same digest
    staged = _prepare(site, exclude=("/nothing-matches",))
    assert staged.folder != site.path and staged.digest == upload.digest


def test_the_work_tree_digest_takes_kinds_from_git_and_matches_the_staged_one(site):
    """Executables and links: the work-tree set reads their kind from git's index (no stat of
    each file); it must agree with the staged set, which stats every file."""
    script = site.path / "bin/run.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (site.path / "web/latest.css").symlink_to("css/a.css")
    site.git("add", "-A")
    site.git("commit", "-q", "-m", "script and link")
    upload = _prepare(site)
    assert upload.folder == site.path
    assert _prepare(site, exclude=("/nothing-matches",)).digest == upload.digest
    # git ignores the executable bit here: the kind comes from the file, as sent
    site.git("config", "core.fileMode", "false")
    script.chmod(0o644)
    assert resolve_release(site.path, allow_dirty=False).dirty is False
    unexecutable = _prepare(site)
    assert unexecutable.digest != upload.digest
    assert _prepare(site, exclude=("/nothing-matches",)).digest == unexecutable.digest


def test_the_same_content_gives_the_same_name_and_a_change_another(site):
    first = _prepare(site, build_output=("vendor",))
    again = _prepare(site, build_output=("vendor",))
    assert re.fullmatch(rf"{site.sha_short()}-[0-9a-f]{{8}}", first.name)
    assert (again.name, again.digest) == (first.name, first.digest)
    assert "vendor/pkg/a.php" in _files(first.folder) and ".env" not in _files(first.folder)
    (site.path / "vendor/pkg/a.php").write_text("<?php // vendor, fixed\n")
    fixed = _prepare(site, build_output=("vendor",))
    assert fixed.name != first.name


def test_a_dirty_work_tree_is_named_by_its_content(site):
    (site.path / "web/index.php").write_text("<?php echo 2;\n")
    (site.path / "web/new.php").write_text("<?php // untracked, not ignored\n")
    upload = _prepare(site, allow_dirty=True)
    assert upload.name.startswith(site.sha_short() + "-")
    assert (upload.folder / "web/index.php").read_text() == "<?php echo 2;\n"
    assert "web/new.php" in _files(upload.folder) and ".env" not in _files(upload.folder)


def test_exclude_patterns_mean_what_rsync_makes_of_them(site):
    upload = _prepare(site, exclude=("/tests", "*.css"))
    assert _files(upload.folder) == {".gitignore", "web/index.php", "config/app.php"}
    # the digest is of what is uploaded: leaving files out changes it
    assert upload.digest != _prepare(site).digest


def test_names_with_control_characters_and_backslashes_are_kept_exactly(tmp_path):
    names = ["web/new\nline.php", "web/tab\there.php", "web/back\\#101slash.php", "web/ü ☃.php"]
    repo = SiteRepo.create(tmp_path / "site", files={n: "x\n" for n in names})
    upload = _prepare(repo, shared=())
    assert _files(upload.folder) == set(names)


def test_a_docroot_missing_from_the_upload_is_refused(site):
    with pytest.raises(UploadError, match="docroot: 'htdocs' is not in the upload set"):
        _prepare(site, docroot="htdocs")


def test_declared_output_must_exist(site):
    with pytest.raises(UploadError, match=r"build.output\[0\]: dist does not exist"):
        _prepare(site, build_output=("dist",))


def test_builds_run_in_a_clean_export_and_a_failure_shows_its_output(site):
    upload = _prepare(
        site,
        build_commands=("test ! -e .env && mkdir -p web/dist && echo built > web/dist/app.js",),
        build_output=("web/dist",),
    )
    assert (upload.folder / "web/dist/app.js").read_text() == "built\n"
    with pytest.raises(UploadError, match=r"(?s)build.commands\[0\] failed \(exit 4\).*oops"):
        _prepare(site, build_commands=("echo oops; exit 4",))
