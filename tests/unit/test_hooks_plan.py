"""Hooks: how a hook command is built, and the hooks and health sections of a client file."""

import subprocess
from pathlib import Path

import pytest
import yaml
from support.site import SiteRepo

from operations.config import ConfigError, inventory_hosts, load_client
from operations.live import Hook, Hooks
from operations.states.hooks import hook_command, hook_env

A, B, C, D = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3", "ddddddddddd4"


def test_hook_runs_as_written_with_quoted_environment(tmp_path):
    root = str(tmp_path / "it's $(root)")
    (tmp_path / "it's $(root)" / "releases" / A).mkdir(parents=True)
    env = hook_env(root, A, None, "web1", "/usr/bin/php 8")
    hook = (
        'echo "$ATOMIC_RELEASE|$ATOMIC_PREVIOUS_RELEASE|$(pwd)|$ATOMIC_HOST|$ATOMIC_PHP"'
        " && echo $((1+2))"
    )
    command = hook_command(env["ATOMIC_RELEASE_PATH"], env, hook)
    out = subprocess.run(["sh", "-c", command.get_raw_value()], capture_output=True, text=True)
    assert out.stdout == f"{A}||{root}/releases/{A}|web1|/usr/bin/php 8\n3\n"


def test_hooks_and_health_from_the_client_file(tmp_path):
    client = load_client(_client(tmp_path, hooks={"before_switch": ["a", "b"]}))
    hooks = client.hooks
    assert [h.run for h in hooks.before_switch] == ["a", "b"] and hooks.on_failure == ()
    assert client.health is None
    health = load_client(_client(tmp_path, health={"url": "http://x/{host}/h"})).health
    assert health.url_for("web2") == "http://x/web2/h" and health.status == 200


def _client(tmp_path: Path, **extra) -> Path:
    SiteRepo.create(tmp_path / "site")
    doc = {"source": "site", "hosts": [{"name": "web1", "host_key_policy": "accept-new"}], **extra}
    (tmp_path / "client.yml").write_text(yaml.safe_dump(doc))
    return tmp_path / "client.yml"


def test_live_site_sections_are_validated_and_reach_host_data(tmp_path):
    file = _client(
        tmp_path,
        hooks={"before_switch": ["php craft migrate/all"]},
        health={"url": "https://{host}.example/health", "contains": "ok"},
        notify={"webhook": "https://hooks.example/x"},
    )
    assert load_client(file).health.contains == "ok"
    [(_, data)] = inventory_hosts(tmp_path / "client.py", argv=["pyinfra", "x.py", "deploy.py"])
    assert data["hooks"] == Hooks(
        before_switch=(Hook("php craft migrate/all", once=False, hosts=()),),
        after_switch=(), on_failure=(), after_rollback=(), php_binary="php", maintenance=False,
    )  # fmt: skip
    assert data["webhook"] == "https://hooks.example/x"
    for bad, where in (
        ({"hooks": {"before": ["x"]}}, "hooks: unknown key 'before'"),
        ({"health": {"status": 200}}, "health: missing required key 'url'"),
        ({"notify": {"webhook": "ftp://x"}}, "notify.webhook"),
        ({"hooks": {"after_switch": ["a\nb"]}}, "hooks.after_switch[0]"),
    ):
        with pytest.raises(ConfigError) as info:
            load_client(_client(tmp_path, **bad))
        assert where in str(info.value), str(info.value)
