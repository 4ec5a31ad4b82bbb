"""Defaults live only in the schema, and host data carries the typed settings built from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from operations import config
from operations.config import host_data, load_client
from operations.database import Database
from operations.layout import NO_RELEASE, Deploy
from operations.live import Health, Hooks, deploy_for
from operations.release_name import ReleaseError
from operations.states.php_reload import PhpRefresh

A = "a" * 12


def _schema() -> dict[str, Any]:
    return json.loads(config.SCHEMA_PATH.read_text())


def _load(tmp_path: Path, **keys: Any) -> config.Client:
    (tmp_path / "site").mkdir(exist_ok=True)
    file = tmp_path / "client.yml"
    file.write_text(yaml.safe_dump({"source": "site", "hosts": [{"name": "web1"}], **keys}))
    return load_client(file)


def _models(client: config.Client, i: int = 0) -> dict[str, Any]:
    return host_data(client, client.hosts[i], A)


def test_a_minimal_client_file_gets_the_schemas_defaults(tmp_path):
    schema = _schema()
    top, defs = schema["properties"], schema["$defs"]
    client = _load(tmp_path)
    data = _models(client)
    deploy = data["deploy"]
    assert isinstance(deploy, Deploy)
    assert deploy.layout.docroot == top["docroot"]["default"]
    assert list(deploy.layout.shared_dirs) == top["shared_dirs"]["default"]
    assert list(deploy.layout.shared_files) == top["shared_files"]["default"]
    assert deploy.keep_releases == top["keep_releases"]["default"]
    assert deploy.copy_mode == top["copy_mode"]["default"]
    assert deploy.exclude == tuple(top["exclude"]["default"])
    assert dict(deploy.shared_sources) == top["shared_sources"]["default"]
    assert client.allow_dirty is top["allow_dirty"]["default"]
    build = top["build"]["properties"]
    assert client.build_commands == tuple(build["commands"]["default"])
    assert client.build_output == tuple(build["output"]["default"])
    hooks = defs["hooks"]["properties"]
    php = {"php_binary": top["php_binary"]["default"], "maintenance": top["maintenance"]["default"]}
    section = {k: v["default"] for k, v in hooks.items()}
    assert data["hooks"] == Hooks.from_section(section, **php)
    assert data["hooks"].before_switch == data["hooks"].after_switch == ()
    policy = defs["ssh"]["properties"]["host_key_policy"]["default"]
    assert policy == "strict" and data["ssh_strict_host_key_checking"] == "yes"
    # sections that are off unless given
    assert data["database"] is None and data["health"] is None and data["php"] is None
    assert data["webhook"] is None


def test_nested_defaults_are_filled(tmp_path):
    defs = _schema()["$defs"]
    client = _load(
        tmp_path,
        database={"name": "craft"},
        health={"url": "https://x.example/"},
        php={"after_switch": "opcache-reset", "url": "https://x.example"},
    )
    data = _models(client)
    db, health, php = (defs[k]["properties"] for k in ("database", "health", "php"))
    assert data["database"] == Database(
        name="craft",
        dir=db["dir"]["default"],
        max_age=None,  # no default: a dump before every switch (docs/database.md)
        keep=db["keep"]["default"],
    )
    assert data["health"] == Health(
        url="https://x.example/",
        **{k: health[k]["default"] for k in ("status", "timeout", "retries", "delay")},
    )
    assert data["php"] == PhpRefresh(
        mode="opcache-reset",
        url="https://x.example",
        connect_to=php["connect_to"]["default"],
        timeout=php["timeout"]["default"],
    )


def test_the_code_has_no_defaults_of_its_own(tmp_path, monkeypatch):
    """With every default changed in the schema, every setting follows the schema."""
    schema = _schema()
    top, defs = schema["properties"], schema["$defs"]
    changed = [
        (top, "docroot", "public"),
        (top, "shared_dirs", ["var"]),
        (top, "shared_files", [".env"]),
        (top, "exclude", ["*.log"]),
        (top, "keep_releases", 9),
        (top, "copy_mode", "hardlink"),
        (top, "allow_dirty", True),
        (top["build"]["properties"], "commands", ["true"]),
        (top["build"]["properties"], "output", ["vendor"]),
        (defs["ssh"]["properties"], "host_key_policy", "accept-new"),
        (defs["hooks"]["properties"], "on_failure", ["echo failed"]),
        (defs["database"]["properties"], "dir", "dumps"),
        (defs["database"]["properties"]["download"]["properties"], "keep", 3),
        (defs["database"]["properties"], "keep", 11),
        (defs["health"]["properties"], "status", 204),
        (defs["health"]["properties"], "timeout", 7),
        (defs["health"]["properties"], "retries", 1),
        (defs["health"]["properties"], "delay", 4),
        (defs["php"]["properties"], "connect_to", "localhost"),
        (defs["php"]["properties"], "timeout", 33),
    ]
    for spec, key, value in changed:
        assert spec[key]["default"] != value
        spec[key]["default"] = value
    other = tmp_path / "schema.json"
    other.write_text(json.dumps(schema))
    monkeypatch.setattr(config, "SCHEMA_PATH", other)
    client = _load(
        tmp_path,
        database={"name": "craft", "download": {"dir": "dumps"}},
        health={"url": "https://x.example/"},
        php={"after_switch": "opcache-reset", "url": "https://x.example"},
    )
    data = _models(client)
    deploy = data["deploy"]
    assert (deploy.layout.docroot, deploy.layout.shared_dirs) == ("public", ("var",))
    assert (deploy.layout.shared_files, deploy.exclude) == ((".env",), ("*.log",))
    assert (deploy.keep_releases, deploy.copy_mode) == (9, "hardlink")
    assert client.allow_dirty is True
    assert (client.build_commands, client.build_output) == (("true",), ("vendor",))
    assert data["ssh_strict_host_key_checking"] == "accept-new"
    assert [h.run for h in data["hooks"].on_failure] == ["echo failed"]
    assert (data["database"].dir, data["database"].download_keep) == ("dumps", 3)
    assert data["database"].keep == 11
    health = data["health"]
    assert (health.status, health.timeout, health.retries, health.delay) == (204, 7, 1, 4)
    assert (data["php"].connect_to, data["php"].timeout) == ("localhost", 33)


def test_a_host_database_is_merged_over_the_clients_with_defaults_filled(tmp_path):
    client = _load(
        tmp_path,
        database={"name": "craft", "max_age": "30m", "password_env": "PW"},
        hosts=[
            {"name": "web1"},
            {"name": "web2", "database": {"name": "craft2", "keep": 2}},
            {"name": "web3", "database": {"dir": "dumps"}},
        ],
    )
    web1, web2, web3 = (_models(client, i)["database"] for i in range(3))
    assert web1 == Database(name="craft", dir="backups", max_age=1800, keep=5, password_env="PW")
    # the host's own keys win; the client's max_age is not hidden by the host's default
    assert web2 == Database(name="craft2", dir="backups", max_age=1800, keep=2, password_env="PW")
    assert web3 == Database(name="craft", dir="dumps", max_age=1800, keep=5, password_env="PW")


def test_a_host_only_database_gets_the_defaults(tmp_path):
    client = _load(
        tmp_path, hosts=[{"name": "web1"}, {"name": "web2", "database": {"name": "craft"}}]
    )
    assert _models(client, 0)["database"] is None
    assert _models(client, 1)["database"] == Database(
        name="craft", dir="backups", max_age=None, keep=5
    )


def test_php_off_is_no_step_and_a_given_connect_to_is_still_checked(tmp_path):
    assert _load(tmp_path, php={"after_switch": "off"}).php is None
    # connect_to has a default, yet giving it with fpm-reload is still refused
    with pytest.raises(config.ConfigError, match="php.connect_to: only used with after_switch"):
        _load(
            tmp_path,
            php={"after_switch": "fpm-reload", "reload_command": "x", "connect_to": "h"},
        )
    assert _load(tmp_path, php={"after_switch": "fpm-reload", "reload_command": "x"}).php


def test_host_data_holds_no_password_and_a_named_release_replaces_the_inventorys(tmp_path):
    client = _load(tmp_path, database={"name": "craft", "password_env": "PW"})
    data = host_data(client, client.hosts[0], None)  # rollback, status, restore
    assert data["release"] is None and data["deploy"].release == NO_RELEASE
    assert "s3cret" not in repr(data) and not hasattr(data["database"], "password")
    assert deploy_for(data["deploy"], "b" * 12).release == "b" * 12
    assert deploy_for(data["deploy"], None).release == NO_RELEASE
    with pytest.raises(ReleaseError, match="not a git sha"):
        deploy_for(data["deploy"], "$(id)")
    with pytest.raises(ReleaseError, match="arrived as float"):
        deploy_for(data["deploy"], 1.234e59)


def test_debug_inventory_shows_the_settings_as_json(tmp_path):
    from pyinfra_cli.util import json_encode

    client = _load(tmp_path, database={"name": "craft", "password_env": "PW"})
    shown = json.loads(json.dumps(_models(client), default=json_encode))
    assert shown["deploy"]["layout"]["docroot"] == "htdocs"
    assert shown["database"]["password_env"] == "PW"
    assert shown["hooks"] == {
        "before_switch": [],
        "after_switch": [],
        "on_failure": [],
        "after_rollback": [],
        "php_binary": "php",
        "maintenance": False,
    }
