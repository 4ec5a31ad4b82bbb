#!/usr/bin/env bash
# The README's first command: a real deploy of example-site/ into .demo/ of this checkout.
# Installs what the machine lacks (python3-venv, rsync, git; with apt-get as root or through
# passwordless sudo), installs this project into .venv/ of the checkout, then runs
# `.venv/bin/pyinfra -y inventories/local.py deploy.py` (extra arguments go to pyinfra).
# Idempotent: a second run reuses .venv/ and finds the demo already deployed.
set -euo pipefail

cd "$(dirname "$0")/.."
cd "$(pwd -P)"  # pip records the physical path of an editable install

venv=.venv

# Debian's python3 has no venv/ensurepip without python3-venv (which also brings python3 onto
# a bare image); rsync uploads the release, git names it after the checkout's HEAD.
missing_packages() {
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || echo python3-venv
    command -v rsync >/dev/null || echo rsync
    command -v git >/dev/null || echo git
}

cannot_install() {
    echo "demo: ${missing[*]} missing: as root, run apt-get install ${missing[*]}; then run this again" >&2
    exit 1
}

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null || cannot_install
    if [ "$(id -u)" = 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)  # only without a password prompt: the command must not hang in CI
    else
        cannot_install
    fi
    echo "demo: installing ${missing[*]} with apt-get"
    # A fresh image has no package lists yet, so update first.
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" </dev/null
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "demo: still missing ${missing[*]} after apt-get install (not on PATH?)" >&2
        exit 1
    fi
fi

# `python3 -m venv` on an existing folder repairs it (e.g. a run interrupted before pip was in
# place) and never deletes anything, so it is only skipped when the venv already has pip.
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "demo: creating $venv with $(command -v python3)"
    python3 -m venv "$venv"
fi

# `pip install -e .` takes seconds even when nothing changed: skip it when a stamp says it ran
# for this checkout and this exact pyproject.toml, and pyinfra is still there.
stamp="$venv/.atomic-deploy-demo"
want="$PWD $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -x "$venv/bin/pyinfra" ]; then
    echo "demo: atomic-deploy already installed in $venv"
else
    echo "demo: pip install -e . into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e .
    echo "$want" >"$stamp"
fi

echo "demo: $venv/bin/pyinfra -y inventories/local.py deploy.py${*:+ $*}"
exec "$venv/bin/pyinfra" -y inventories/local.py deploy.py "$@"
