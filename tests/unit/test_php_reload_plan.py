"""The after-switch step's settings and decisions (no host involved)."""

from pathlib import Path

import pytest
import yaml

from operations.config import ConfigError, host_data, load_client
from operations.facts import DeployState
from operations.states.php_reload import PhpRefresh, refresh_command, refresh_pending

A, B = "a" * 12, "b" * 12


def _load(tmp_path: Path, php: object) -> object:
    (tmp_path / "site").mkdir(exist_ok=True)
    file = tmp_path / "client.yml"
    file.write_text(yaml.safe_dump({"source": "site", "php": php, "hosts": [{"name": "web1"}]}))
    return load_client(file)


def _error(tmp_path: Path, php: object) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, php)
    return str(info.value)


def test_off_unless_the_client_enables_it(tmp_path):
    (tmp_path / "site").mkdir()
    file = tmp_path / "client.yml"
    file.write_text(yaml.safe_dump({"source": "site", "hosts": [{"name": "web1"}]}))
    client = load_client(file)
    assert client.php is None and host_data(client, client.hosts[0], A)["php"] is None
    off = _load(tmp_path, {"after_switch": "off"})
    assert off.php is None and host_data(off, off.hosts[0], A)["php"] is None


def test_opcache_reset_settings_reach_the_host_data_with_defaults(tmp_path):
    client = _load(tmp_path, {"after_switch": "opcache-reset", "url": "https://www.example.com/"})
    php = host_data(client, client.hosts[0], A)["php"]
    assert php == PhpRefresh(
        mode="opcache-reset", url="https://www.example.com", connect_to="127.0.0.1", timeout=10
    )


@pytest.mark.parametrize(
    ("php", "expected"),
    [
        ({"after_switch": "fpm-reload"}, "php: after_switch fpm-reload needs reload_command"),
        ({"after_switch": "opcache-reset"}, "php: after_switch opcache-reset needs url"),
        (
            {"after_switch": "fpm-reload", "reload_command": "x", "url": "http://a"},
            "php.url: only used with after_switch opcache-reset, not fpm-reload",
        ),
        (
            {"after_switch": "opcache-reset", "url": "http://a", "reload_command": "x"},
            "php.reload_command: only used with after_switch fpm-reload",
        ),
        ({"after_switch": "restart"}, "php.after_switch: 'restart' is not one of"),
        ({"reload_command": "x"}, "php: missing required key 'after_switch'"),
        (
            {"after_switch": "opcache-reset", "url": "http://a/?x='$(id)'"},
            "php.url: \"http://a/?x='$(id)'\" must be an http:// or https:// URL",
        ),
        (
            {"after_switch": "opcache-reset", "url": "ftp://a"},
            "php.url: 'ftp://a' must be an http:// or https:// URL",
        ),
        (
            {"after_switch": "opcache-reset", "url": "http://a", "connect_to": "a b"},
            "php.connect_to: 'a b' must match",
        ),
        (
            {"after_switch": "fpm-reload", "reload_command": "a\nb"},
            "php.reload_command: 'a\\nb' ",  # refused, one line only
        ),
        (
            {"after_switch": "fpm-reload", "reload_command": "x", "timeout": 0},
            "php.timeout: 0 is less than the minimum of 1",
        ),
    ],
)
def test_bad_php_sections_are_refused_with_key_path(tmp_path, php, expected):
    assert expected in _error(tmp_path, php)


def _state(current: str | None, *events: tuple[str, str]) -> DeployState:
    log = [f"2026-01-01T00:00:0{i}Z\t{event}\t{sha}\tme\t" for i, (event, sha) in enumerate(events)]
    return DeployState(current=f"link releases/{current}" if current else "missing", log=log)


@pytest.mark.parametrize(
    ("state", "pending"),
    [
        (_state(None), False),  # nothing live
        (_state(A), False),  # live, but not switched by this tool (no log)
        (_state(A, ("populated", A), ("switch", A)), True),  # switched, never refreshed
        (_state(A, ("switch", A), ("php-refresh", A)), False),  # refreshed after the switch
        (_state(A, ("switch", A), ("php-refresh", A), ("populated", B)), False),
        (_state(B, ("switch", A), ("php-refresh", A), ("switch", B)), True),  # a new switch
        (_state(A, ("switch", B), ("php-refresh", B), ("rollback", A)), True),
        (_state(A, ("switch", A), ("php-refresh", B)), True),  # refreshed for another release
    ],
)
def test_a_refresh_is_pending_after_each_switch_until_it_ran(state, pending):
    assert refresh_pending(state) is pending


def test_commands_quote_every_path_and_setting():
    docroot = "/srv/it's here/releases/" + A + "/htdocs"
    reset = PhpRefresh(
        mode="opcache-reset", url="http://127.0.0.1:8080", connect_to="127.0.0.1", timeout=10
    )
    text = refresh_command(reset, docroot).get_raw_value()
    assert "dir='/srv/it'\"'\"'s here/releases/" in text
    assert "url=http://127.0.0.1:8080;" in text
    assert "/dev/urandom" in text and "trap 'rm -f \"$f\"' EXIT" in text
    reload = PhpRefresh(
        mode="fpm-reload",
        reload_command="sudo -n systemctl reload php8.2-fpm",
        connect_to="127.0.0.1",
        timeout=10,
    )
    assert refresh_command(reload, docroot).get_raw_value() == (
        "timeout 10 sh -c 'sudo -n systemctl reload php8.2-fpm'"
    )
