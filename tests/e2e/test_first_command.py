"""The README's first command as a newcomer runs it: the system python3, no virtualenv yet.

The command is read from README.md, so the README and this test cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.proc import REPO_ROOT
from support.site import SiteRepo

pytestmark = pytest.mark.e2e

# What a clone holds that the demo and its install need (the rest of the repo is tests, docs).
CHECKOUT_FILES = (
    "deploy.py", "config.py", "inventories", "example-site", "schema",
    "pyproject.toml", "operations", "scripts", "README.md", ".gitignore",
)  # fmt: skip
# Debian's PATH for root without /usr/local: python3 is then the system's /usr/bin/python3, not
# the interpreter (pyenv, a virtualenv) running the tests.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def readme_first_command() -> str:
    """The first ```sh block under "## The two commands" in README.md."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## The two commands\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's 'The two commands' lost its first ```sh block"
    return block.group(1).strip()


def copy_checkout(dest: Path) -> SiteRepo:
    """A fresh clone's worth of this checkout in `dest`: the files, one commit."""
    dest.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".venv", ".demo")
    for name in CHECKOUT_FILES:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=skip)
        else:
            shutil.copy(src, dest / name)
    return SiteRepo.create(dest, files={})


def newcomer_env(path: str = SYSTEM_PATH) -> dict[str, str]:
    """This process's environment without any trace of the tests' Python, with `path`."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYENV", "CONDA")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return {**env, "PATH": path}


def run_shell(
    command: str, cwd: Path, env: dict[str, str], user: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = ["/bin/bash", "-c", command]
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def links(demo: Path) -> dict[str, object]:
    """What a user sees of the deploy root: the two links and the releases."""
    return {
        "current": os.readlink(demo / "current"),
        "htdocs": os.readlink(demo / "htdocs"),
        "releases": sorted(p.name for p in (demo / "releases").iterdir()),
    }


def test_readme_first_command_deploys_the_demo_and_a_rerun_changes_nothing(tmp_path):
    command = readme_first_command()
    checkout = tmp_path / "checkout"
    repo = copy_checkout(checkout)
    env = newcomer_env()

    first = run_shell(command, checkout, env)
    output = first.stdout + first.stderr
    assert first.returncode == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    # The venv was made by the machine's python3, not by the tests' interpreter.
    assert "home = /usr/bin\n" in (checkout / ".venv" / "pyvenv.cfg").read_text()

    demo = checkout / ".demo"
    sha = repo.sha_short()
    seen = links(demo)
    assert seen["current"] == f"releases/{sha}"
    assert seen["htdocs"] == "current/htdocs"
    served = demo / "htdocs" / "index.php"
    assert served.read_text() == (REPO_ROOT / "example-site" / "htdocs" / "index.php").read_text()
    assert served.resolve() == (demo / "releases" / sha / "htdocs" / "index.php").resolve()

    second = run_shell(command, checkout, env)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    assert "already installed" in output  # the venv is reused, pip is not run again
    assert links(demo) == seen

    # And the deploy itself has nothing left to do, per pyinfra's own report.
    rerun = subprocess.run(
        [".venv/bin/pyinfra", "-y", "--json", "inventories/local.py", "deploy.py"],
        cwd=checkout, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    operations = json.loads(rerun.stdout)["results"]["operations"]
    changed = [op["name"] for op in operations if op["success"] or op["error"]]
    assert operations and not changed, changed


def _path_without(tools: set[str], bin_dir: Path) -> str:
    """A PATH of links to every system command except `tools` (the machine has them all)."""
    bin_dir.mkdir()
    for folder in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for entry in os.scandir(folder):
            if entry.name not in tools and not (bin_dir / entry.name).exists():
                (bin_dir / entry.name).symlink_to(entry.path)
    return str(bin_dir)


def test_first_command_without_root_says_what_to_install_and_changes_nothing(test_run_dir):
    # As a user who is not root and has no sudo, on a machine without rsync.
    work = test_run_dir / "first-command-no-rsync"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o755)
    checkout = work / "checkout"
    copy_checkout(checkout)
    path = _path_without({"rsync", "sudo"}, work / "bin")

    result = run_shell(readme_first_command(), checkout, newcomer_env(path), user="deploy")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    # The one line names the package to install (python3-venv too, where the machine lacks it).
    install = re.search(r"apt-get install ([\w.+ -]+);", lines[0])
    assert install and "rsync" in install.group(1).split(), lines[0]
    assert not (checkout / ".venv").exists() and not (checkout / ".demo").exists()


def test_deploy_without_local_rsync_stops_before_connecting(tmp_path):
    # The tool itself, run by hand without rsync: one line before any host is contacted.
    checkout = tmp_path / "checkout"
    copy_checkout(checkout)
    path = _path_without({"rsync"}, tmp_path / "bin")
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "inventories/local.py", "deploy.py"],
        cwd=checkout, env={**os.environ, "PATH": path}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert (
        "atomic-deploy: rsync is not installed on this machine (it uploads the release): "
        "install it, e.g. apt-get install rsync"
    ) in result.stderr.splitlines()
    assert "Connecting" not in result.stderr + result.stdout
    assert not (checkout / ".demo").exists()
