"""Issue 15's engine features, their pure parts: writable_dirs rules and the deploy-tree
report of them, hook entries (once / named hosts), and the key names of .env files."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from operations.config import ConfigError, load_client
from operations.facts import parse_deploy_tree
from operations.live import Hook, once_host
from operations.states.env_guard import EnvKeys, env_keys, missing_keys, parse_env_keys


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


# --------------------------------------------------------------------------- hook entries


def _hooks(tmp_path: Path, **points: Any):
    file = tmp_path / "client.yml"
    doc = {"source": ".", "hosts": [{"name": "web2"}, {"name": "web1"}], "hooks": points}
    file.write_text(yaml.safe_dump(doc))
    return load_client(file).hooks


def test_hook_entries_are_strings_or_objects(tmp_path):
    hooks = _hooks(
        tmp_path,
        before_switch=["php craft up", {"run": "php craft migrate", "once": True}],
        after_switch=[{"run": "warm", "hosts": ["web2"]}],
        on_failure=[{"run": "mail", "once": True}],
        after_rollback=[{"run": "restart queue", "hosts": ["web1", "web2"]}],
    )
    assert hooks.before_switch == (
        Hook("php craft up", once=False, hosts=()),
        Hook("php craft migrate", once=True, hosts=()),
    )
    assert hooks.after_switch == (Hook("warm", once=False, hosts=("web2",)),)
    assert hooks.on_failure[0].once and hooks.after_rollback[0].hosts == ("web1", "web2")


def test_which_hosts_run_a_hook():
    targeted = ["web3", "web1", "web2"]
    once = Hook("migrate", once=True, hosts=())
    assert [h for h in targeted if once.runs_on(h, targeted)] == ["web1"]  # first by name
    assert once.runs_on("web2", ["web3", "web2"])  # --limit: the first of those targeted
    assert once.where(targeted) == " (once: on web1)"
    named = Hook("warm", once=False, hosts=("web2",))
    assert [h for h in targeted if named.runs_on(h, targeted)] == ["web2"]
    assert named.where(targeted) == " (on web2)"
    every = Hook("clear", once=False, hosts=())
    assert all(every.runs_on(h, targeted) for h in targeted) and every.where(targeted) == ""
    assert once_host([]) is None and not once.runs_on("web1", [])


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"run": "x", "hosts": ["web9"]},
            "hooks.before_switch[0].hosts[0]: 'web9' is not a host "
            "of this client (hosts: web1, web2)",
        ),
        (
            {"run": "x", "once": True, "hosts": ["web1"]},
            "hooks.before_switch[0]: give once or hosts",
        ),
        ({"once": True}, "hooks.before_switch[0]: missing required key 'run'"),
        ({"run": "x", "onse": True}, "unknown key 'onse' (did you mean 'once'?)"),
        ({"run": "x", "hosts": []}, "hooks.before_switch[0].hosts: [] should be non-empty"),
        (3, "hooks.before_switch[0]: 3 is not of type 'string', 'object'"),
    ],
)
def test_bad_hook_entries_name_the_key(tmp_path, entry, expected):
    assert expected in _error(tmp_path, hooks={"before_switch": [entry]})


# --------------------------------------------------------------------------- .env key names

DOTENV = """# Craft settings
CRAFT_APP_ID=CraftCMS--abc

export CRAFT_ENVIRONMENT=production
  CRAFT_SECURITY_KEY = "s3cr3t # not a comment"
PRIMARY_SITE_URL='https://example.com'
# OLD_KEY=gone
MULTI="first line
NOT_A_KEY=inside the quoted value
"
EMPTY=
not a key line
export  SPACED=1
CRAFT_APP_ID=again
"""
KEYS = ["CRAFT_APP_ID", "CRAFT_ENVIRONMENT", "CRAFT_SECURITY_KEY", "PRIMARY_SITE_URL", "MULTI",
        "EMPTY", "SPACED"]  # fmt: skip


def test_env_key_names_skip_comments_blank_lines_and_quoted_lines():
    assert env_keys(DOTENV) == KEYS
    assert env_keys("") == [] and env_keys("# only a comment\n\n") == []


def test_the_host_script_reads_the_same_key_names_and_no_value(tmp_path):
    env = tmp_path / ".env"
    env.write_text(DOTENV)
    example = tmp_path / ".env.example"
    example.write_text("CRAFT_APP_ID=\nNEW_KEY=\n")
    (tmp_path / "empty").write_text("")
    command = EnvKeys().command(env=str(env), example=str(example)).get_raw_value()
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert "s3cr3t" not in out.stdout and "example.com" not in out.stdout
    read = parse_env_keys(out.stdout.splitlines())
    assert (read.env, read.env_keys) == ("file", KEYS)
    assert (read.example, read.example_keys) == ("file", ["CRAFT_APP_ID", "NEW_KEY"])
    assert missing_keys(read) == ["NEW_KEY"]
    for path, state in ((tmp_path / "nothing", "missing"), (tmp_path / "empty", "empty")):
        command = EnvKeys().command(env=str(path)).get_raw_value()
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
        assert parse_env_keys(out.stdout.splitlines()).env == state
