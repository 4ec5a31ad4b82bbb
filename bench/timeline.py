"""Bench-only launcher: `python bench/timeline.py OUT.json <pyinfra arguments>` runs the pyinfra
CLI exactly as `python -m pyinfra` does and writes where its time went to OUT.json.

Production code has no switch for this: the launcher wraps a few pyinfra CLI steps and two of
the tool's functions (by module attribute, for this process only) and adds a pyinfra callback
handler (public API) for operation times. Phases, in seconds:

    start      the interpreter's start before this file runs (process age, /proc)
    imports    importing pyinfra's CLI and the tool's operations package
    inventory  loading the inventory: client file, schema, git, staging the upload set
    stage      ... of which staging the upload set (operations/upload.py prepare)
    connect    opening the SSH connections
    prepare    loading deploy.py: preparing the operations (facts read on the way)
    execute    running the operations; per operation below, rsync and facts apart
    facts      each fact (remote read) by name: count, seconds
    ops        each operation by name: seconds (its remote commands, the copy included)
    rsync      the upload (operations/rsync.py upload, a local rsync over ssh)
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections import defaultdict

T0 = time.monotonic()


def _process_age() -> float:
    """Seconds since this process started (before the interpreter's own start-up)."""
    ticks = os.sysconf("SC_CLK_TCK")
    start = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])  # noqa: SIM115
    uptime = float(open("/proc/uptime").read().split()[0])  # noqa: SIM115
    return max(uptime - start / ticks, 0.0)


OUT = sys.argv.pop(1)
times: dict = {"start": _process_age(), "facts": defaultdict(lambda: [0, 0.0]),
               "ops": defaultdict(float), "rsync": 0.0}  # fmt: skip

import pyinfra_cli.cli as cli  # noqa: E402 - timed
from pyinfra.api import facts as pyinfra_facts  # noqa: E402
from pyinfra.api import host as pyinfra_host  # noqa: E402
from pyinfra.api.state import BaseStateCallback  # noqa: E402
from pyinfra_cli.main import main  # noqa: E402

sys.path.insert(0, os.getcwd())  # as pyinfra does for the deploy directory
import operations.config  # noqa: E402
import operations.rsync  # noqa: E402

times["imports"] = time.monotonic() - T0


def timed(module, name: str, key: str, *, add: bool = False):
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            spent = time.monotonic() - start
            times[key] = times.get(key, 0.0) + spent if add else spent

    setattr(module, name, wrapper)


timed(cli, "make_inventory", "inventory")
timed(cli, "connect_all", "connect")
timed(cli, "_prepare_deploy_operations", "prepare")
timed(cli, "run_ops", "execute")
timed(operations.config, "prepare", "stage", add=True)
_upload = operations.rsync.upload


def upload(state, host, *args, **kwargs):  # pyinfra passes state and host by these names
    start = time.monotonic()
    try:
        return _upload(state, host, *args, **kwargs)
    finally:
        times["rsync"] += time.monotonic() - start


operations.rsync.upload = upload

_get_fact = pyinfra_facts.get_fact


def get_fact(state, host, cls, *args, **kwargs):
    start = time.monotonic()
    try:
        return _get_fact(state, host, cls, *args, **kwargs)
    finally:
        entry = times["facts"][cls.__name__]
        entry[0] += 1
        entry[1] += time.monotonic() - start


pyinfra_facts.get_fact = pyinfra_host.get_fact = get_fact  # Host.get_fact calls the latter
started: dict = {}


class OpTimes(BaseStateCallback):
    @staticmethod
    def operation_host_start(state, host, op_hash):
        started[(host.name, op_hash)] = time.monotonic()

    @staticmethod
    def operation_host_success(state, host, op_hash, retry_attempt=0):
        OpTimes._done(state, host, op_hash)

    @staticmethod
    def operation_host_error(state, host, op_hash, retry_attempt=0, max_retries=0):
        OpTimes._done(state, host, op_hash)

    @staticmethod
    def _done(state, host, op_hash):
        begin = started.pop((host.name, op_hash), None)
        if begin is not None:
            name = ", ".join(state.get_op_meta(op_hash).names) or op_hash[:8]
            name = re.sub(r"\b[0-9a-f]{12}\b", "<sha>", name)  # one row across releases
            times["ops"][name] += time.monotonic() - begin


_State = cli.State


class State(_State):
    def init(self, *args, **kwargs):  # the CLI makes a State, then init()s it
        super().init(*args, **kwargs)
        self.add_callback_handler(OpTimes())


cli.State = State


def write() -> None:
    times["total"] = time.monotonic() - T0 + times["start"]
    with open(OUT, "w") as f:
        json.dump(times, f)


sys.argv[0] = "pyinfra"
try:
    main()
finally:
    write()
