"""The client file's database section: checks, per-host overrides, passwords, the docs table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from support.site import SiteRepo

from operations.config import (
    ConfigError,
    database_reference_table,
    host_data,
    load_client,
    read_passwords,
)
from operations.database import (
    Database,
)


def _load(tmp_path: Path, database=None, hosts=None, **top) -> object:
    SiteRepo.create(tmp_path / "site")
    doc = {"source": "site", **top, "hosts": hosts or [{"name": "web1"}]}
    if database is not None:
        doc["database"] = database
    file = tmp_path / "client.yml"
    file.write_text(yaml.safe_dump(doc))
    return load_client(file)


def _error(tmp_path: Path, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, **kw)
    return str(info.value)


@pytest.mark.parametrize(
    ("database", "expected"),
    [
        (
            {"name": "craft", "password": "x"},
            "database.password: a plain password is not allowed in the client file: use "
            "password_env",
        ),
        ({"user": "craft"}, "database: missing required key 'name'"),
        ({"name": "craft", "password_env": "A", "defaults_file": "~/.my.cnf"}, "not both"),
        ({"name": "craft", "socket": "/run/mysqld.sock", "port": 3306}, "socket or host/port"),
        ({"name": "craft", "dir": "htdocs/backups"}, "inside the docroot 'htdocs'"),
        ({"name": "craft", "dir": "releases/x"}, "'releases/x' is inside 'releases'"),
        ({"name": "craft", "dir": "shared/backups"}, "inside 'shared'"),
        ({"name": "craft", "dir": "/var/backups"}, "database.dir: '/var/backups' must be a path"),
        ({"name": "craft", "dir": "../backups"}, "database.dir: '../backups'"),
        ({"name": "craft", "max_age": "1 hour"}, "max_age: '1 hour' must be a number and a unit"),
        ({"name": "craft", "keep": 0}, "database.keep: 0 is less than the minimum"),
        (
            {"name": "craft", "defaults_file": ".my.cnf"},
            "database.defaults_file: '.my.cnf' must be an absolute path or start with ~/",
        ),
        ({"name": "-x"}, "database.name: '-x' must be letters"),
    ],
)
def test_bad_database_sections_are_refused_naming_the_key(tmp_path, database, expected):
    message = _error(tmp_path, database=database)
    assert str(tmp_path / "client.yml") in message
    assert expected in message


def test_docroot_rule_follows_a_custom_docroot(tmp_path):
    message = _error(tmp_path, database={"name": "c", "dir": "public/dumps"}, docroot="public")
    assert "inside the docroot 'public'" in message


def test_a_host_overrides_the_clients_database_keys(tmp_path):
    client = _load(
        tmp_path,
        database={"name": "craft", "user": "craft", "password_env": "PW"},
        hosts=[{"name": "web1"}, {"name": "web2", "database": {"name": "craft2", "keep": 2}}],
    )
    data = [host_data(client, h, "a" * 12)["database"] for h in client.hosts]
    assert data[0] == Database(
        name="craft", user="craft", password_env="PW", dir="backups", max_age=None, keep=5
    )  # no max_age: a dump before every switch
    assert data[1].name == "craft2" and data[1].keep == 2 and data[1].user == "craft"
    assert read_passwords(client, {"PW": "s3cret"}) == {"web1": "s3cret", "web2": "s3cret"}
    assert "s3cret" not in repr(data)


def test_a_host_database_without_a_top_level_one_needs_a_name(tmp_path):
    message = _error(tmp_path, hosts=[{"name": "web1", "database": {"user": "x"}}])
    assert "hosts[0].database: missing required key 'name'" in message


def test_a_bad_host_override_names_the_host(tmp_path):
    message = _error(
        tmp_path,
        database={"name": "craft"},
        hosts=[{"name": "web1", "database": {"dir": "htdocs"}}],
    )
    assert "hosts[0].database.dir: 'htdocs' is inside the docroot" in message


@pytest.mark.parametrize(("environ", "state"), [({}, "is not set"), ({"PW": ""}, "is empty")])
def test_a_missing_password_variable_is_a_config_error(tmp_path, environ, state):
    client = _load(tmp_path, database={"name": "craft", "password_env": "PW"})
    with pytest.raises(ConfigError, match=f"hosts\\[0\\] \\(web1\\): database.password_env: "
                       f"the environment variable PW {state} on this machine"):  # fmt: skip
        read_passwords(client, environ)


def test_no_database_section_means_no_database_host_data(tmp_path):
    client = _load(tmp_path)
    assert host_data(client, client.hosts[0], "a" * 12)["database"] is None


def test_documented_database_table_matches_the_schema():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    pattern = r"<!-- database-reference:.*?-->\n(.*?)\n<!-- /database-reference -->"
    block = re.search(pattern, doc, re.S)
    assert block, "docs/configuration.md lost its database-reference markers"
    assert block.group(1).strip() == database_reference_table(), (
        "docs/configuration.md database table is out of date; regenerate with python3 -c 'from "
        "operations.config import database_reference_table as t; print(t())'"
    )
