"""What a release holds: the commit's files plus declared build output, never a git-ignored file.

A Craft-shaped site (docroot `web`, git-ignored `.env`, `vendor/`, `node_modules/`,
`storage/logs/`) deployed with the real pyinfra CLI to three sshd's on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from support.client import host_entry, run_pyinfra, run_pyinfra_json, write_client
from support.site import SiteRepo
from support.sshd import SshHost

pytestmark = pytest.mark.e2e

SECRET = "s3cr3t-MARKER-7Qx9"  # in the local .env only: must reach no host

CRAFT_FILES: dict[str, str] = {
    ".gitignore": "/.env\n/vendor/\n/node_modules/\n/storage/logs/\n/web/dist/\n",
    ".env.example": "CRAFT_ENVIRONMENT=\nCRAFT_DB_PASSWORD=\n",
    "composer.json": '{"require": {"craftcms/cms": "^5"}}\n',
    "config/general.php": "<?php\nreturn ['devMode' => false];\n",
    "templates/index.twig": "<h1>{{ siteName }}</h1>\n",
    "storage/.gitkeep": "",
    "web/index.php": "<?php\nrequire __DIR__ . '/../vendor/autoload.php';\necho 'v1';\n",
    "web/css/site.css": "body { margin: 0; }\n",
}

# Git-ignored files of the work tree (a developer's machine or a CI workspace).
IGNORED: dict[str, str] = {
    ".env": f"CRAFT_ENVIRONMENT=dev\nCRAFT_DB_PASSWORD={SECRET}\n",
    "node_modules/left-pad/index.js": "module.exports = 1;\n",
    "storage/logs/web.log": f"debug: password {SECRET}\n",
    "vendor/autoload.php": "<?php // composer autoloader\n",
    "vendor/craftcms/cms/src/Craft.php": "<?php class Craft {}\n",
}


def _site(path: Path) -> SiteRepo:
    repo = SiteRepo.create(path, files=CRAFT_FILES)
    for rel, content in IGNORED.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(content)
    (path / ".env").chmod(0o600)
    assert repo.git("status", "--porcelain") == ""  # all of it ignored: still a clean tree
    return repo


def _files(folder: Path) -> set[str]:
    """Files and links under `folder`, relative (links not followed)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            out.add(str(Path(dirpath, name).relative_to(folder)))
    return out


def _grep(root: Path, needle: str) -> list[str]:
    """Files under `root` (links not followed) whose content holds `needle`."""
    hits = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            if not path.is_symlink() and needle.encode() in path.read_bytes():
                hits.append(str(path))
    return hits


@pytest.fixture
def craft(ssh_hosts: list[SshHost], deploy_root, tmp_path: Path):
    """Factory: (site repo, inventory, roots) for a Craft-shaped site on the three hosts."""
    site = _site(tmp_path / "site")

    def make(**options):
        roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
        hosts = [host_entry(h, roots[h.name]) for h in ssh_hosts]
        options = {"docroot": "web", "shared_dirs": ["storage"], **options}
        inventory = write_client(
            tmp_path / "inv", source=site.path, hosts=hosts, ssh=ssh_hosts[0], **options
        )
        return site, inventory, roots

    return make


def _live(root: Path) -> str:
    return os.readlink(root / "current").removeprefix("releases/")


def test_only_tracked_files_and_declared_output_reach_the_hosts(craft):
    site, inventory, roots = craft(build={"output": ["vendor"]})
    proc = run_pyinfra(inventory, "-y", check=True)
    assert "storage is a shared path: not uploaded" in proc.stderr

    tracked = set(site.git("ls-files").splitlines())
    vendor = {p for p in IGNORED if p.startswith("vendor/")}
    expected = (tracked - {"storage/.gitkeep"}) | vendor  # storage is shared: lives on the host
    for name, root in roots.items():
        release = _live(root)
        # Declared work-tree output: not exactly a commit, so the name carries a digest.
        assert re.fullmatch(rf"{site.sha_short()}-[0-9a-f]{{8}}", release), release
        assert _files(root / "deploy-cache") == expected, name
        in_release = _files(root / "releases" / release)
        assert in_release == expected | {
            "storage", ".atomic-deploy-release", ".atomic-deploy-manifest"
        }, name
        assert _grep(root, SECRET) == [], name
        assert not (root / "shared" / ".env").exists()
        for rel in expected:  # rsync kept the source's modes: none is wider
            local = stat.S_IMODE((site.path / rel).lstat().st_mode)
            remote = stat.S_IMODE((root / "deploy-cache" / rel).lstat().st_mode)
            assert remote & ~local == 0, (name, rel, oct(local), oct(remote))

    # A fix in the git-ignored output goes live under a new name: never "No change".
    (site.path / "vendor/craftcms/cms/src/Craft.php").write_text("<?php class Craft { } // fix\n")
    run_pyinfra(inventory, "-y", check=True)
    for root in roots.values():
        fixed = root / "current" / "vendor/craftcms/cms/src/Craft.php"
        assert fixed.read_text().endswith("// fix\n")
        assert _live(root) != release


def test_build_commands_run_in_a_clean_export_and_only_declared_output_is_uploaded(craft):
    site, inventory, roots = craft(
        build={
            "commands": [
                "mkdir -p web/dist node_modules/.cache && echo \"app $ATOMIC_RELEASE\" > "
                "web/dist/app.js && touch node_modules/.cache/x",
                "test ! -e .env && test ! -e vendor",  # nothing of the work tree is there
            ],
            "output": ["web/dist"],
        }
    )
    # A stray, git-ignored file of the work tree under the output path must not travel.
    (site.path / "web/dist").mkdir(parents=True)
    (site.path / "web/dist/stale.js").write_text("stale local build\n")

    run_pyinfra(inventory, "-y", check=True)
    for root in roots.values():
        live = root / "current"
        assert (live / "web/dist/app.js").read_text() == f"app {site.sha_short()}\n"
        assert not (live / "web/dist/stale.js").exists()
        assert not (live / "node_modules").exists()  # made by the build, not declared
        assert not (live / ".env").exists() and not (live / "vendor").exists()
        assert _grep(root, SECRET) == []

    # Same commit, same build: the same name, and nothing to do.
    _, rerun = run_pyinfra_json(inventory, "-y", check=True)
    assert rerun["results"]["totals"]["success"] == 0


def test_a_failing_build_changes_no_host(craft):
    site, inventory, roots = craft(
        build={"commands": ["echo compiling assets; echo 'npm ERR! missing script' >&2; exit 3"]}
    )
    proc = run_pyinfra(inventory, "-y")
    assert proc.returncode != 0
    assert "build.commands[0] failed (exit 3)" in proc.stderr
    assert "npm ERR! missing script" in proc.stderr and "Traceback" not in proc.stderr
    for root in roots.values():
        assert not root.exists()


def test_a_dirty_rerun_at_the_same_head_makes_the_edit_live(craft):
    site, inventory, roots = craft(allow_dirty=True)
    run_pyinfra(inventory, "-y", check=True)
    clean = site.sha_short()
    assert {_live(r) for r in roots.values()} == {clean}

    index = site.path / "web/index.php"
    index.write_text(index.read_text().replace("v1", "v1-hotfix"))  # not committed
    dry = run_pyinfra(inventory, "--dry", check=True)
    dirty = re.search(rf"{clean}-[0-9a-f]{{8}}", dry.stderr)
    assert dirty, dry.stderr[-3000:]  # the dry run names the new release
    run_pyinfra(inventory, "-y", check=True)
    for root in roots.values():
        assert _live(root) == dirty.group(0)
        assert "v1-hotfix" in (root / "web/index.php").read_text()

    _, rerun = run_pyinfra_json(inventory, "-y", check=True)  # same content: nothing to do
    assert rerun["results"]["totals"]["success"] == 0

    site.git("checkout", "--", "web/index.php")  # back to the commit: its release again
    run_pyinfra(inventory, "-y", check=True)
    for root in roots.values():
        assert _live(root) == clean
        assert "v1-hotfix" not in (root / "web/index.php").read_text()


def test_a_docroot_missing_from_the_upload_is_refused_before_connecting(
    craft, ssh_hosts: list[SshHost]
):
    site, inventory, roots = craft(docroot="htdocs")
    before = [h.connections() for h in ssh_hosts]
    proc = run_pyinfra(inventory, "--dry")
    assert proc.returncode == 2
    assert "docroot: 'htdocs' is not in the upload set" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert [h.connections() for h in ssh_hosts] == before
    assert not any(root.exists() for root in roots.values())


def test_a_changed_upload_under_the_same_name_is_rebuilt(craft):
    site, inventory, roots = craft()
    run_pyinfra(inventory, "-y", check=True)
    sha = site.sha_short()
    # Same commit, but the client now leaves templates/ out: the release must follow.
    client = inventory.with_suffix(".yml")
    client.write_text(client.read_text() + "exclude: [templates]\n")
    proc = run_pyinfra(inventory, "-y", check=True)
    assert "holds another upload under the same name" in proc.stderr
    for root in roots.values():
        assert _live(root) == sha
        assert not (root / "current" / "templates").exists()
        assert (root / "current" / "web" / "index.php").is_file()
        asides = [p.name for p in (root / "releases").iterdir() if p.name.startswith(".aside-")]
        assert len(asides) == 1  # the old copy is kept, not deleted
    _, rerun = run_pyinfra_json(inventory, "-y", check=True)
    assert rerun["results"]["totals"]["success"] == 0


def test_a_same_size_edit_within_the_second_of_the_last_upload_goes_live(craft):
    """rsync's quick check compares sizes and mtimes, by default in whole seconds: an edit that
    keeps the size, saved within the second of the last upload, must still be sent."""
    site, inventory, roots = craft()
    run_pyinfra(inventory, "-y", check=True)
    uploaded = (roots["web1"] / "deploy-cache/web/index.php").stat().st_mtime_ns
    index = site.path / "web/index.php"
    site.commit({"web/index.php": index.read_text().replace("v1", "v2")})  # the same size
    in_same_second = uploaded + (1 if uploaded % 10**9 < 10**9 - 1 else -1)
    os.utime(index, ns=(in_same_second, in_same_second))
    assert site.git("status", "--porcelain") == ""
    run_pyinfra(inventory, "-y", check=True)
    for root in roots.values():
        assert _live(root) == site.sha_short()
        assert "v2" in (root / "current/web/index.php").read_text()


def test_a_same_size_edit_in_a_commit_of_the_same_second_goes_live_through_a_build(
    craft, monkeypatch
):
    """The build's export must not carry the commit's time as every file's mtime: two commits
    in one second (a script, CI) would give an edited file the uploaded copy's size and mtime."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-11-30T12:00:00+00:00")  # both commits
    site, inventory, roots = craft(build={"commands": ["true"], "output": []})
    index = site.path / "web/index.php"
    site.commit({"web/index.php": index.read_text()}, "same second")
    run_pyinfra(inventory, "-y", check=True)
    site.commit({"web/index.php": index.read_text().replace("v1", "v2")})  # the same size
    run_pyinfra(inventory, "-y", check=True)
    for root in roots.values():
        assert _live(root).startswith(site.sha_short())
        assert "v2" in (root / "current/web/index.php").read_text()
