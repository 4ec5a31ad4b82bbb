#!/usr/bin/env bash
# Prepare this machine for the test suite. Idempotent, non-interactive, run as root.
# Installs packages, the Python project, and a `deploy` user. Starts no services:
# the pytest fixtures start their own sshd's (and later mariadb/nginx/php-fpm).
set -euo pipefail

cd "$(dirname "$0")/.."
cd "$(pwd -P)"  # pip records the physical path

if [ "$(id -u)" != 0 ]; then
    echo "test-env: must run as root (installs packages and creates the deploy user)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# php-fpm pulls in php8.2-opcache and php8.2-cli; curl is what the opcache-reset step uses;
# the shellcheck package lints the host scripts (operations/sh/) and these
packages=(openssh-server openssh-client rsync git mariadb-server mariadb-client nginx php-fpm curl
          shellcheck)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "test-env: installing ${missing[*]}"
    # Without systemd, postinst scripts would start nginx/mariadb/php-fpm via init.d
    # (port 80, a system mariadbd). A policy-rc.d that exits 101 forbids that; only
    # add one for the install if the machine has none, and remove it afterwards.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" </dev/null
else
    echo "test-env: apt packages present"
fi

# `pip install -e` costs ~10 s even when nothing changed, so skip it when a stamp says it ran for
# this exact pyproject.toml and the editable install still points here with every requirement
# (test extra included) satisfied. The stamp lives in the interpreter's prefix.
stamp="$(python3 -P -c 'import sys; print(sys.prefix)')/.atomic-deploy-test-env"
want="$PWD $(sha256sum pyproject.toml | cut -d' ' -f1)"
installed() {
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] || return 1
    python3 -P - "$PWD" <<'PY'
import importlib.metadata as md, json, sys, tomllib
from pathlib import Path

root = Path(sys.argv[1])
try:
    from packaging.requirements import Requirement  # comes with pytest

    dist = md.distribution("atomic-deploy")
    assert json.loads(dist.read_text("direct_url.json") or "{}").get("url") == root.as_uri()
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    for r in map(Requirement, project["dependencies"] + project["optional-dependencies"]["test"]):
        assert r.specifier.contains(md.version(r.name), prereleases=True), r
except (AssertionError, ImportError, KeyError, md.PackageNotFoundError):
    sys.exit(1)
PY
}
if installed; then
    echo "test-env: python package and test extras already installed"
else
    echo "test-env: pip install -e '.[test]'"
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]'
    echo "$want" >"$stamp"
fi

if ! id deploy >/dev/null 2>&1; then
    echo "test-env: creating user deploy"
    useradd --create-home --shell /bin/bash deploy
fi
# Keep the account usable even if it pre-existed with other settings.
[ "$(getent passwd deploy | cut -d: -f7)" = /bin/bash ] || usermod --shell /bin/bash deploy
home=$(getent passwd deploy | cut -d: -f6)
[ -d "$home" ] || install -d -o deploy -g deploy -m 755 "$home"
# useradd leaves the password field as "!" (locked); with `UsePAM no` sshd then refuses even
# key logins ("account is locked"). "*" means "no password" without locking the account.
case "$(getent shadow deploy | cut -d: -f2)" in
    '!'*) echo "test-env: unlocking deploy for key logins"; usermod -p '*' deploy ;;
esac

# sshd's privilege-separation dir lives on /run (tmpfs) and host keys may be missing in images.
mkdir -p /run/sshd
ssh-keygen -A
echo "test-env: ready"
