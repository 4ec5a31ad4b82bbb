"""The release name: HEAD of the source, the dirty check, --data release on the command line."""

from pathlib import Path

import pytest
from support.client import client_yml
from support.site import SiteRepo

from operations.config import cli_data, inventory_hosts


def _site(tmp_path: Path) -> SiteRepo:
    return SiteRepo.create(tmp_path / "site")


def test_cli_data_reads_both_spellings():
    argv = [
        "pyinfra",
        "inv.py",
        "deploy.py",
        "--data",
        "release=abc1234",
        "--data=allow_dirty=true",
    ]
    assert cli_data(argv) == {"release": "abc1234", "allow_dirty": "true"}


# A host key for web1, so that the strict host key check before connecting lets it through.
WEB1_KNOWN_HOST = (
    "web1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGgT2fqsUHPr5TltS5JF1jIqEEpKj2jXchyV+eYWZGSL\n"
)


def _inventory(tmp_path: Path, extra: dict | None = None) -> Path:
    (tmp_path / "known_hosts").write_text(WEB1_KNOWN_HOST)
    host = {"name": "web1", "known_hosts": "known_hosts"}
    client_yml(tmp_path, {"source": "site", "hosts": [host], **(extra or {})})
    return tmp_path / "client.py"


def test_release_is_head_of_the_source(tmp_path):
    head = _site(tmp_path).head()
    [(name, data)] = inventory_hosts(_inventory(tmp_path), argv=[])
    assert name == "web1"
    assert data["release"] == head[:12]
    assert data["ssh_strict_host_key_checking"] == "yes"  # unknown host keys refused by default


def test_dirty_tree_is_refused_unless_allowed(tmp_path, capsys):
    site = _site(tmp_path)
    (site.path / "htdocs" / "index.php").write_text("changed")
    with pytest.raises(SystemExit) as info:
        inventory_hosts(_inventory(tmp_path), argv=[])
    assert info.value.code == 2
    assert "uncommitted changes (htdocs/index.php)" in capsys.readouterr().err
    assert inventory_hosts(_inventory(tmp_path), argv=["--data", "allow_dirty=true"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234e56", "arrived as float"),
        ("1234567", "arrived as int"),
        ("true", "arrived as bool"),
        ('"$(touch /tmp/x)"', "is not a git sha"),
        ('"abc;rm"', "is not a git sha"),
        ('"deadbeef"', "is not a commit of"),
    ],
)
def test_bad_release_on_the_command_line(tmp_path, capsys, raw, expected):
    _site(tmp_path)
    with pytest.raises(SystemExit):
        inventory_hosts(_inventory(tmp_path), argv=["--data", f"release={raw}"])
    assert expected in capsys.readouterr().err


def test_explicit_release_must_be_the_checked_out_commit(tmp_path, capsys):
    site = _site(tmp_path)
    first = site.head()
    head = site.commit({"x": "x"}, "second")
    with pytest.raises(SystemExit):
        inventory_hosts(_inventory(tmp_path), argv=["--data", f'release="{first[:7]}"'])
    assert "is not the checked-out commit" in capsys.readouterr().err
    [(_, data)] = inventory_hosts(_inventory(tmp_path), argv=["--data", f'release="{head[:7]}"'])
    assert data["release"] == head[:12]
