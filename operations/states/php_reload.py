"""Wanted state: PHP runs the release `current` points at (the optional after-switch step).

With nginx's `$realpath_root` (see docs/web-server.md) every release has its own file paths,
so PHP's OPcache and realpath cache can't serve an old release's file for a new one. Setups
that reach PHP files through the `current` link (Apache mod_php, `$document_root`, code that
includes `/srv/site/current/...`) can, for as long as `opcache.validate_timestamps=0` or
`realpath_cache_ttl` allow. This step clears that state right after a switch, one of two ways:

* `fpm-reload`: run a command the client gives (e.g. `sudo -n systemctl reload php8.2-fpm`)
  on the host as the SSH user; a reload gives every worker fresh caches.
* `opcache-reset`: when the SSH user may not reload PHP-FPM, place a one-time, randomly named,
  token-protected PHP file in the new release's docroot and request it from the host itself
  with curl (the web SAPI's OPcache is not the CLI's). The name and token are made on the
  host from /dev/urandom, so neither is ever known to, or printed by, the controller; the
  token travels in a header on curl's stdin (not on a command line, not in access logs). The
  file is removed by a shell trap whatever happens.

The step runs when the deploy log shows a switch that no refresh has followed yet: right after
this run's switch, and again on the next run if it failed. A run that changes nothing does
nothing here; each refresh is logged (`php-refresh <sha> <mode>`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from pyinfra.api import QuoteString, StringCommand

from .. import deploy_log
from ..common import chain, preparing, say, wanted_state
from ..facts import DeployState, deploy_state
from ..layout import RELEASES_DIR, Deploy, HostDataValue
from ..plan import current_release
from ..shell import script

MODES = ("fpm-reload", "opcache-reset")
FILE_PREFIX = ".atomic-deploy-opcache-"  # + 24 random hex digits + .php

# The one-time file; @TOKEN@ becomes 48 random hex digits on the host.
_RESET_PHP = """<?php
// atomic-deploy: one-time OPcache reset after a switch, removed right after its request.
if (!hash_equals('@TOKEN@', (string) ($_SERVER['HTTP_X_ATOMIC_DEPLOY_TOKEN'] ?? ''))) {
    http_response_code(403);
    exit;
}
header('Content-Type: text/plain');
header('Cache-Control: no-store');
if (!function_exists('opcache_reset') || !ini_get('opcache.enable')) {
    echo "opcache-reset: off\\n";
} elseif (opcache_reset()) {
    echo "opcache-reset: done\\n";
} else {
    echo "opcache-reset: refused (opcache.restrict_api?)\\n";
}
"""

@dataclass(frozen=True)
class PhpRefresh(HostDataValue):
    """The client's `php` section when a mode is on (host data 'php'; None: off)."""

    mode: str  # one of MODES
    connect_to: str
    timeout: int
    reload_command: str | None = None
    url: str | None = None  # without a trailing '/'


def php_errors(php: dict[str, Any] | None, where: str = "php") -> list[str]:
    """Rules of the `php` section the schema can't say well: each mode's keys, and only those.

    `php` is the section as written: with the schema's defaults filled in, connect_to would
    always look given.
    """
    if not php:
        return []
    mode = php["after_switch"]  # required by the schema
    needs = {"fpm-reload": ("reload_command",), "opcache-reset": ("url",), "off": ()}[mode]
    belongs = {"reload_command": "fpm-reload", "url": "opcache-reset"}
    belongs |= {"connect_to": "opcache-reset"}
    errors = [f"{where}: after_switch {mode} needs {key}" for key in needs if key not in php]
    for key, owner in belongs.items():
        if key in php and mode != "off" and owner != mode:
            errors.append(f"{where}.{key}: only used with after_switch {owner}, not {mode}")
    return errors


def refresh_pending(state: DeployState) -> bool:
    """The live release became live (deploy log) after the last refresh of it, or never had one."""
    live = current_release(state)
    if live is None:
        return False
    # A refresh must follow the newest event that made a release live.
    for e in reversed(deploy_log.parse(state.log)):
        if e.event == deploy_log.PHP_REFRESH:
            return e.release != live
        if e.event in deploy_log.MADE_LIVE:
            return True
    return False


def refresh_command(php: PhpRefresh, release_docroot: str) -> StringCommand:
    """The host command of one refresh; `release_docroot` is releases/<sha>/<docroot>."""
    if php.mode == "fpm-reload":
        return StringCommand(
            "timeout", str(php.timeout), "sh", "-c", QuoteString(php.reload_command or "false")
        )
    reset = script(
        "opcache_reset.sh",
        {
            "dir": release_docroot,
            "url": php.url or "",
            "to": php.connect_to,
            "secs": str(php.timeout),
            "php": _RESET_PHP,
            "prefix": FILE_PREFIX,
        },
    )
    # A subshell: its EXIT trap removes the file before the log line is written.
    return StringCommand("(", reset, ")")


def describe(php: PhpRefresh) -> str:
    if php.mode == "fpm-reload":
        return f"run {php.reload_command!r}"
    return f"reset OPcache through {php.url}/ (one-time file)"


@wanted_state
def php_refreshed(deploy: Deploy, php: PhpRefresh) -> Generator:
    """
    Ensure PHP has forgotten older releases since ``current`` last changed.

    + deploy: the host's Deploy settings
    + php: the client's ``php`` section (``PhpRefresh``)

    Runs the configured refresh (``fpm-reload`` or ``opcache-reset``) once after each switch,
    and logs it; a switch whose refresh failed is refreshed on the next run.

    **Example:**

    .. code:: python

        php_reload.php_refreshed(name="PHP refreshed", deploy=deploy, php=php)
    """
    state = deploy_state(deploy.layout, deploy.release)
    live = current_release(state)
    pending = refresh_pending(state)
    if preparing() and live != deploy.release:
        # Preparing, the switch has not happened yet: predict what it will leave behind.
        live, pending = deploy.release, True
    if not pending or live is None:
        return
    say(f"php after switch: {describe(php)} for {RELEASES_DIR}/{live}")
    yield refresh_and_log(php, state.root, live, deploy)


def refresh_and_log(php: PhpRefresh, root: str, live: str, deploy: Deploy) -> StringCommand:
    """One refresh for releases/`live` (just made live) and its line in the deploy log."""
    docroot = posixpath.join(root, RELEASES_DIR, live, deploy.layout.docroot)
    return chain(
        refresh_command(php, docroot),
        deploy_log.append_command(
            root, deploy_log.line(deploy_log.PHP_REFRESH, live, deploy.deployed_by, php.mode)
        ),
    )
