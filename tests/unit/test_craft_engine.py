"""Issue 15's engine features, their pure parts: writable_dirs rules and the deploy-tree
report of them, hook entries (once / named hosts), and the key names of .env files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from operations.config import ConfigError, load_client
from operations.facts import parse_deploy_tree


def _error(tmp_path: Path, **keys: Any) -> str:
    file = tmp_path / "client.yml"
    doc = {"source": ".", "hosts": [{"name": "web1"}, {"name": "web2"}], **keys}
    file.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        load_client(file)
    return str(info.value)


# --------------------------------------------------------------------------- writable_dirs


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"writable_dirs": ["htdocs"]}, "writable_dirs[0]: 'htdocs' is the docroot"),
        (
            {"writable_dirs": ["storage"]},
            "writable_dirs[0]: 'storage' is the shared path 'storage'",
        ),
        (
            {"writable_dirs": ["storage/runtime"]},
            "is the shared path 'storage' (shared_dirs) or inside",
        ),
        (
            {"writable_dirs": ["web"], "shared_dirs": ["web/uploads"]},
            "holds the shared path 'web/uploads'",
        ),
        ({"writable_dirs": ["a", "a/b"]}, "writable_dirs[1]: 'a/b' is inside the writable dir 'a'"),
        ({"writable_dirs": ["/abs"]}, "writable_dirs[0]: '/abs' must be a path relative"),
        ({"writable_dirs": ["x/../y"]}, "writable_dirs[0]: 'x/../y' must be a path relative"),
        ({"writable_mode": "rwx"}, "writable_mode: 'rwx'"),
    ],
)
def test_writable_dir_rules_name_the_key(tmp_path, keys, expected):
    assert expected in _error(tmp_path, **keys)


def test_writable_dirs_are_accepted_and_reach_the_layout(tmp_path):
    file = tmp_path / "client.yml"
    doc = {"source": ".", "hosts": [{"name": "web1"}], "writable_dirs": ["htdocs/cpresources"],
           "writable_mode": "2775", "writable_group": "www-data"}  # fmt: skip
    file.write_text(yaml.safe_dump(doc))
    client = load_client(file)
    assert client.writable_dirs == ("htdocs/cpresources",)
    assert (client.writable_mode, client.writable_group) == ("2775", "www-data")


def test_the_read_reports_writable_dirs_apart_from_shared_paths():
    state = parse_deploy_tree(
        ["acl yes", "shared 0 dir", "rel 0 link x", "wr 0 dir", "wr 1 missing"]
    )
    assert state.acl and state.shared == ["dir"] and state.in_release == ["link x"]
    assert state.writable_kind(0) == "dir" and state.writable_kind(1) == "missing"
    assert state.writable_kind(5) == "missing"
