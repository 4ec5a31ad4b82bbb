"""Wanted state: the shared `.env` defines every key the new release's `.env.example` does.

A release that needs a new setting (Craft's `CRAFT_SECURITY_KEY`, a new API key) must not go
live on a host whose `shared/.env` lacks it: the deploy stops before any host switches,
naming the host and the missing keys. Only key names ever leave the host (the EnvKeys fact
reads them there); values are never read into this process, printed or logged.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Generator
from dataclasses import dataclass, field

from pyinfra import host
from pyinfra.api import FactBase, QuoteString, StringCommand

from ..common import preparing, say, wanted_state
from ..facts import deploy_state
from ..layout import RELEASES_DIR, SHARED_DIR, Deploy
from ..plan import current_release
from ..shell import script

ENV_FILE = ".env"  # the shared file checked (when it is one of shared_files)
ENV_EXAMPLE = ".env.example"  # in the release: the keys it needs
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=")
_SHOWN_AT_MOST = 30


def env_keys(text: str) -> list[str]:
    """Key names of a dotenv text, in order, each once; never a value.

    The same rules as operations/sh/env_keys.sh (which reads the files on the hosts): blank
    lines and `#` comments skipped, `export KEY=value` counts as KEY, and the further lines
    of a quoted value that spans lines are skipped.
    """
    keys: list[str] = []
    quote = ""
    for line in text.splitlines():
        if quote:
            if quote in line:
                quote = ""
            continue
        line = line.lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"^export[ \t]+", "", line)
        match = _KEY.match(line)
        if not match:
            continue
        if match.group(1) not in keys:
            keys.append(match.group(1))
        value = line[match.end() :].lstrip(" \t")
        if value[:1] in ('"', "'") and value[0] not in value[1:]:
            quote = value[0]
    return keys


@dataclass
class EnvFiles:
    """What EnvKeys read: each file's state (missing, empty, unreadable, file) and key names."""

    env: str = "missing"
    example: str = "missing"
    env_keys: list[str] = field(default_factory=list)
    example_keys: list[str] = field(default_factory=list)


def parse_env_keys(lines: list[str]) -> EnvFiles:
    """The output lines of env_keys.sh as an EnvFiles."""
    out = EnvFiles()
    for line in lines:
        which, _, rest = line.partition(" ")
        if which not in ("env", "example"):
            continue
        if rest.startswith("key "):
            keys = out.env_keys if which == "env" else out.example_keys
            if rest[4:] not in keys:
                keys.append(rest[4:])
        else:
            setattr(out, which, rest)
    return out


class EnvKeys(FactBase):
    """Key names of the shared .env and of the release's .env.example (one round trip)."""

    def command(self, env, example=""):
        return script("env_keys.sh", {"env": env, "example": example})

    @staticmethod
    def default() -> EnvFiles:
        return EnvFiles()

    def process(self, output: list[str]) -> EnvFiles:
        return parse_env_keys(output)


def missing_keys(env: EnvFiles) -> list[str]:
    """The example's keys the .env does not define, in the example's order."""
    have = set(env.env_keys)
    return [key for key in env.example_keys if key not in have]


def _local(path: str) -> tuple[str, list[str]]:
    """(state, keys) of a file on this machine, like env_keys.sh reports one on a host."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return "missing", []
    except OSError:
        return "unreadable", []
    if not data:
        return "empty", []
    return "file", env_keys(data.decode("utf-8", "replace"))


def _names(keys: list[str]) -> str:
    rest = len(keys) - _SHOWN_AT_MOST
    return ", ".join(keys[:_SHOWN_AT_MOST]) + (f" and {rest} more" if rest > 0 else "")


@wanted_state
def env_keys_defined(deploy: Deploy) -> Generator:
    """
    Ensure ``shared/.env`` is not empty and defines every key of the release's
    ``.env.example``; otherwise stop this host's deploy (before any host switches).

    + deploy: the host's Deploy settings (its shared files include ``.env``)

    Registered with the switch barrier (deploy.py), after the release is populated, so no
    host switches when one host lacks a key. A host already on the release (a rerun)
    switches nothing, so it is not checked (and costs no read). Says which keys are missing,
    by name only. A missing ``shared/.env`` is left to shared_files_present, which names it.
    The dry run reads ``.env.example`` from the upload when the release is not on the host yet, and
    ``shared/.env`` from its shared_sources file when the client names one (it is uploaded
    before this check).

    **Example:**

    .. code:: python

        env_guard.env_keys_defined(name=".env defines the release's keys", deploy=deploy)
    """
    sha = deploy.release
    state = deploy_state(deploy.layout, sha)
    if current_release(state) == sha:
        return  # nothing switches here (a rerun): the guard protects switches; no extra read
    root = state.root
    env_path = posixpath.join(root, SHARED_DIR, ENV_FILE)
    on_host = state.complete(sha) or not preparing()
    example = posixpath.join(root, RELEASES_DIR, sha, ENV_EXAMPLE) if on_host else ""
    read: EnvFiles = host.get_fact(EnvKeys, env=env_path, example=example)
    if not on_host:  # a dry run before the release exists: the upload holds its example
        read.example, read.example_keys = _local(os.path.join(deploy.source, ENV_EXAMPLE))
    source = dict(deploy.shared_sources).get(ENV_FILE)
    if preparing() and source:  # shared_files_uploaded puts this file there first
        read.env, read.env_keys = _local(source)
    if read.env == "missing":
        return  # shared_files_present stops the deploy, naming the file and how to provide it
    index = [path for _, path in deploy.layout.shared_paths].index(ENV_FILE)
    if preparing() and state.complete(sha) and state.mergeable.get(index):
        return  # shared_linked moves the release's own .env there first: checked when it ran
    where = f"{SHARED_DIR}/{ENV_FILE} on {host.name} ({root})"
    if read.env != "file" or not read.env_keys:
        what = "cannot be read" if read.env == "unreadable" else "is empty (no KEY=value line)"
        problem = f"{where} {what}: the site would go live without its settings"
    else:
        missing = missing_keys(read)
        if not missing:
            return
        problem = (
            f"{where} does not define {_names(missing)}, which the release's {ENV_EXAMPLE} "
            f"defines: add {'it' if len(missing) == 1 else 'them'} to {SHARED_DIR}/{ENV_FILE}"
            + (f" (from {source})" if source else "")
        )
    message = f"{problem}, so no host switches"
    if preparing():  # not refuse(): every host should say whether it would stop
        say(f"the deploy would stop here: {message}")
    yield StringCommand("echo", QuoteString(f"the deploy stops: {message}"), ">&2;", "exit", "1")
