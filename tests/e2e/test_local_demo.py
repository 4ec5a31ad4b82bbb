"""The README's first command: the embedded demo deploys the example site with @local."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.proc import REPO_ROOT
from support.site import SiteRepo

pytestmark = pytest.mark.e2e


def _demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", *args, "inventories/local.py", "deploy.py"],
        cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_local_demo_deploys_and_then_has_nothing_to_do(tmp_path):
    # A copy of the checkout, so the test neither needs nor touches this one's .demo/.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("deploy.py", "config.py", "inventories", "example-site", "schema"):
        src = REPO_ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, checkout / name)
    SiteRepo.create(checkout, files={})  # a git checkout, as a user's clone would be

    first = _demo(checkout)
    assert first.returncode == 0, first.stderr[-3000:]
    demo = checkout / ".demo"
    sha = os.readlink(demo / "current").removeprefix("releases/")
    assert (demo / "htdocs" / "index.php").read_text().startswith("<?php")
    assert (demo / "releases" / sha / "content").is_symlink()
    # shared/.env comes from the demo's shared_sources file, never from the site or empty
    env = demo / "shared" / ".env"
    assert env.stat().st_mode & 0o777 == 0o600
    assert env.read_text() == (checkout / "inventories" / "local.env").read_text()
    assert "CRAFT_SECURITY_KEY=" in env.read_text()

    second = _demo(checkout, "--json")
    assert second.returncode == 0, second.stderr[-3000:]
    assert '"success": []' in second.stdout and '"success": ["@local"]' not in second.stdout
