"""Wanted state of restore_dump.py: the dump taken before a release is loaded into the database.

Never automatic: only restore_dump.py runs it, one host at a time (``--limit``), after the
usual confirmation (or ``-y``). The dump is the one the deploy log shows was written last
before the switch to ``<sha>``, so it holds the database as it was before that release (and
its migrations) went live.
"""

from __future__ import annotations

import posixpath
from collections.abc import Generator

from pyinfra import host

from .. import deploy_log
from ..common import refuse, say, wanted_state
from ..database import CNF_NAME, Database, format_age, password_for
from ..facts import deploy_state
from ..layout import LOG_FILE, META_DIR, RELEASES_DIR, Deploy
from ..shell import script
from .dump import connection_values, dump_folder, option_file_uploaded


def dump_before(log: list[str], release: str) -> str | None:
    """File name of the dump written before the newest switch to `release` (by the deploy log).

    A deploy dumps before every switch (with max_age set: only when the newest dump is older),
    so this is the newest "dump" event before that "switch" event, whichever release it was
    made for.
    """
    last_dump = found = None
    for e in deploy_log.parse(log):
        if e.event == deploy_log.DUMP:
            last_dump = posixpath.basename(e.detail)
        elif e.event == deploy_log.SWITCH and e.release == release:
            found = last_dump
    return found


def rolled_back_from(log: list[str]) -> str | None:
    """The release the newest rollback moved away from (its dump holds the older database)."""
    for e in reversed(deploy_log.parse(log)):
        if e.event == deploy_log.ROLLBACK:
            word = e.detail.removeprefix("named; left ").removeprefix("from ").split(" ", 1)[0]
            return word if word != "-" else None
    return None


@wanted_state
def dump_restored(deploy: Deploy, database: Database, release: str | None) -> Generator:
    """
    Ensure the dump taken before ``release`` was loaded into the host's database.

    + deploy: the host's Deploy settings
    + database: the host's Database settings
    + release: whose dump (None: the release the newest rollback moved away from)

    **Example:**

    .. code:: python

        restore.dump_restored(name="dump restored", deploy=deploy, database=db, release=None)
    """
    state = host.state
    targeted = [h.name for h in state.inventory if state.is_host_in_limit(h)]
    if len(targeted) > 1:
        yield from refuse(
            f"restore one host at a time: add --limit {targeted[0]} (dumps are per host, and a "
            "database several hosts share must be loaded once)"
        )
        return
    if release is None:
        release = rolled_back_from(deploy_state(deploy.layout, None).log)  # any read: the log
        if release is None:
            yield from refuse("no rollback in the deploy log: name the release whose dump to "
                              "load with --data 'release=\"<sha>\"'")  # fmt: skip
            return
    folder = dump_folder(deploy, database)
    name = dump_before(deploy_state(deploy.layout, None).log, release)
    dump = next((d for d in folder.dumps if d.name == name and d.intact), None)
    if dump is None:
        why = f"{database.dir}/{name} is gone or damaged" if name else "the deploy log names none"
        yield from refuse(f"no dump taken before {RELEASES_DIR}/{release} to load: {why}")
        return
    say(
        f"load {database.dir}/{name} ({format_age(folder.now - dump.mtime)} old, taken before "
        f"{RELEASES_DIR}/{release}) into database {database.name}: its current content is replaced"
    )
    password = password_for(host.name) if database.password_env else None
    if database.password_env and password is None:
        yield from refuse(f"no password for database {database.name}: set {database.password_env}")
        return
    root = folder.root
    meta = posixpath.join(root, META_DIR)
    cnf = posixpath.join(meta, CNF_NAME) if password is not None else ""
    if password is not None:
        yield from option_file_uploaded(meta, cnf, database, password)
    values = {
        "r": root,
        "file": posixpath.join(database.dir, name),
        "db": database.name,
        "cnf": cnf,
        **connection_values(database, plain=password is None),
        "logfile": LOG_FILE,
        "logline": deploy_log.line(
            deploy_log.RESTORE, release, deploy.deployed_by, f"{database.dir}/{name}"
        ),
    }
    yield script("restore.sh", values)
