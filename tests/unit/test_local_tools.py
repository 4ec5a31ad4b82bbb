"""Which runs need rsync and git on the machine running pyinfra (config.check_local_tools)."""

import pytest

from operations.config import ConfigError, check_local_tools


def test_only_runs_that_upload_need_rsync_and_git(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: neither rsync nor git
    for deploy_file in ("rollback.py", "status.py", "restore_dump.py"):
        check_local_tools(["pyinfra", "inventories/client1.py", deploy_file])
    with pytest.raises(ConfigError) as error:
        check_local_tools(["pyinfra", "inventories/client1.py", "deploy.py"])
    assert str(error.value) == (
        "rsync and git are not installed on this machine (rsync uploads the release, git names "
        "the release): install them, e.g. apt-get install rsync git"
    )
