"""Wanted state: a complete dump of the site's database, made before the switch (by default
by the run that switches), and optionally a verified copy of it off the server."""

from __future__ import annotations

import io
import posixpath
import time
from collections.abc import Generator, Iterator

from pyinfra import host, logger
from pyinfra.api import (
    FactBase,
    FileUploadCommand,
    FunctionCommand,
    QuoteString,
    State,
    StringCommand,
)
from pyinfra.api.command import PyinfraCommand
from pyinfra.api.host import Host

from .. import deploy_log, dump_download
from ..common import chain, refuse, say, wanted_state
from ..database import (
    CNF_NAME,
    Database,
    DumpFolder,
    Switch,
    option_file,
    parse_dump_folder,
    password_for,
    plan_dump,
)
from ..facts import deploy_state
from ..layout import LOG_FILE, META_DIR, Deploy
from ..plan import current_release
from ..shell import script


class DumpFacts(FactBase):
    """The dump folder in one round trip: host clock, dumps (mtime, size), leftovers, tools."""

    def command(self, root, folder, meta, cnf, defaults_file):
        values = {"r": root or "", "dir": folder, "meta": meta, "cnf": cnf}
        return script("dump_fact.sh", {**values, "df": defaults_file or ""})

    @staticmethod
    def default() -> list[str]:
        return []

    def process(self, output: list[str]) -> list[str]:
        return output


def dump_folder(deploy: Deploy, database: Database) -> DumpFolder:
    """Read the current host's dump folder (one remote command)."""
    lines = host.get_fact(
        DumpFacts,
        root=deploy.layout.root,
        folder=database.dir,
        meta=META_DIR,
        cnf=CNF_NAME,
        defaults_file=database.defaults_file,
    )
    return parse_dump_folder(lines, database)


def dump_command(
    root: str,
    database: Database,
    final: str,
    logline: str,
    cnf: str | None,
    prune: list[str] = (),
    leftovers: list[str] = (),
) -> StringCommand:
    """The remote command that writes, verifies and renames one dump (see sh/dump.sh)."""
    values = {
        "r": root,
        "dir": database.dir,
        "logfile": LOG_FILE,
        "db": database.name,
        "final": final,
        "cnf": cnf or "",
        **connection_values(database, plain=cnf is None),
        "logline": logline,
    }
    return script("dump.sh", values, [f"l:{n}" for n in leftovers] + [f"p:{n}" for n in prune])


def connection_values(database: Database, plain: bool) -> dict[str, str]:
    """Shell variables df, dbu, dbh, dbp, dbs for the client programs (see sh/dump.sh).

    `plain`: no option file was uploaded, so the non-secret settings go on argv; otherwise
    they are in the uploaded file and these stay empty.
    """
    return {
        "df": database.defaults_file or "",
        "dbu": (database.user or "") if plain else "",
        "dbh": (database.host or "") if plain else "",
        "dbp": str(database.port or "") if plain else "",
        "dbs": (database.socket or "") if plain else "",
    }


def run_dump(state: State, host: Host, command: StringCommand, database_name: str) -> bool:
    """Run the dump command and tell the user its notes and warnings (shown even on success)."""
    ok, output = host.run_shell_command(
        command, print_output=state.print_output, print_input=state.print_input
    )
    label = f"dump {database_name}"
    for line in output.stdout_lines:
        tag, _, text = line.partition(" ")
        if tag == "warn":
            host.log_styled(f"{label}: warning: {text}", fg="yellow", log_func=logger.warning)
        elif tag == "note":
            host.log(f"{label}: {text}", log_func=logger.info)
        elif tag == "done":
            path, _, size = text.rpartition(" ")
            host.log(f"{label}: wrote {path} ({size} bytes)", log_func=logger.info)
    if not ok:
        for line in output.stderr_lines:
            host.log_styled(line, fg="red", log_func=logger.error)
    return ok


def option_file_uploaded(
    meta: str, cnf: str, database: Database, password: str
) -> Iterator[PyinfraCommand]:
    """Commands that put the credentials into `cnf` (in `meta`) without them touching argv.

    The file exists with mode 0600 before the password is written into it (SFTP keeps an
    existing file's mode), inside the 0700 .atomic-deploy/; the scripts that use it remove it.
    """
    q_meta, q_cnf = QuoteString(meta), QuoteString(cnf)
    yield StringCommand(
        "mkdir", "-p", q_meta, "&&", "chmod", "700", q_meta,
        "&&", "rm", "-f", q_cnf, "&&", "(", "umask", "077", "&&", ":", ">", q_cnf, ")",
    )  # fmt: skip
    yield FileUploadCommand(io.StringIO(option_file(database, password)), cnf)


def dump_file_name(database: Database, sha: str, when: float | None = None) -> str:
    """<db>-<UTC YYYYmmddTHHMMSSZ>-<sha>.sql.gz: sorts by time, names the release it preceded."""
    return f"{database.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(when))}-{sha}.sql.gz"


@wanted_state
def fresh_dump_present(deploy: Deploy, database: Database) -> Generator:
    """
    Ensure that, before ``current`` switches, a complete dump of the database is in the dump
    folder: one made by this run when it switches the host to another release (the default),
    or, with ``max_age`` set, one younger than ``max_age``.

    + deploy: the host's Deploy settings (root, release, deployed_by)
    + database: the host's Database settings (host data, see config.host_data)

    Whether this run switches is read from the host before the switch: ``current`` against
    the release being deployed. A rerun of the live release dumps nothing (without max_age).
    When a dump is due, ``mysqldump --single-transaction --skip-lock-tables`` (with triggers,
    routines and events where the user may dump them; ``--no-tablespaces`` when the user lacks
    PROCESS) is compressed into ``<dir>/.tmp-<name>``, checked (mysqldump's exit status, the
    gzip stream, the ``-- Dump completed`` trailer) and only then renamed into place, mode
    0600 in a 0700 folder. A failed dump leaves no file and fails the host, which stops the
    deploy before the switch. With ``password_env`` the password travels by SFTP into
    ``.atomic-deploy/mysqldump.cnf`` (created 0600 before it is written, removed afterwards):
    never in argv or output. Dumps beyond ``keep`` and leftovers of interrupted dumps are
    removed; tables that are not InnoDB are named in a warning. With ``download``, the new
    dump (or the newest one, when it has no local copy) is then copied to the local folder
    (see dump_download.py); a failed download fails the host before the switch, too.

    **Example:**

    .. code:: python

        dump.fresh_dump_present(name="fresh dump of craft", deploy=deploy, database=database)
    """
    folder = dump_folder(deploy, database)
    label = f"dump {database.name}"
    if not {"mysqldump", "mariadb-dump"} & folder.tools or "gzip" not in folder.tools:
        yield from refuse(f"{label}: mysqldump and gzip must be installed on the host")
        return
    if folder.defaults_file == "missing":
        yield from refuse(f"{label}: defaults_file {database.defaults_file} is not a readable file")
        return
    if folder.folder == "notdir":
        yield from refuse(f"{label}: {database.dir} exists but is not a folder")
        return
    password = password_for(host.name) if database.password_env else None
    if database.password_env and password is None:
        yield from refuse(
            f"{label}: no password for this host: load the inventory through "
            "operations.config.inventory_hosts, which reads password_env"
        )
        return

    live = current_release(deploy_state(deploy.layout, None))
    plan = plan_dump(folder, database, Switch(host.name, live, deploy.release))
    root = folder.root
    meta = posixpath.join(root, META_DIR)
    cnf = posixpath.join(meta, CNF_NAME)
    say(plan.message)
    if plan.leftovers:
        say(f"{label}: remove leftovers of interrupted dumps: {', '.join(plan.leftovers)}")
    if plan.prune:
        say(f"{label}: remove {', '.join(plan.prune)} (keep {database.keep})")

    if not plan.new_dump:
        steps = []
        doomed = [posixpath.join(root, database.dir, n) for n in plan.leftovers + plan.prune]
        doomed += [posixpath.join(root, database.dir, f".{n}.size") for n in plan.prune]
        if doomed:
            steps.append(StringCommand("rm", "-f", "--", *map(QuoteString, doomed)))
        if folder.stale_cnf:
            say(f"{label}: remove the option file left by an interrupted dump")
            steps.append(StringCommand("rm", "-f", "--", QuoteString(cnf)))
        if folder.mode and folder.mode != "700":
            say(f"{label}: {database.dir}/ mode {folder.mode} -> 700")
            folder_path = QuoteString(posixpath.join(root, database.dir))
            steps.append(StringCommand("chmod", "700", folder_path))
        # said before the first yield: a dry run looks no further than that
        job = newest_copy_job(folder, database) if database.download_dir else None
        if steps:
            yield chain(*steps)
        if job:
            yield FunctionCommand(dump_download.download, (job, label), {})
        return

    final = dump_file_name(database, deploy.release)
    detail = f"{database.dir}/{final}"
    logline = deploy_log.line(deploy_log.DUMP, deploy.release, deploy.deployed_by, detail)
    job = None
    if database.download_dir:
        job = copy_job(posixpath.join(root, database.dir, final), database, "the new dump")
    if password is not None:
        yield from option_file_uploaded(meta, cnf, database, password)
    elif folder.stale_cnf:
        yield StringCommand("rm", "-f", "--", QuoteString(cnf))
    command = dump_command(
        root,
        database,
        final,
        logline,
        cnf if password is not None else None,
        prune=[n for n in plan.prune if n != final],  # not the new one (same release, same second)
        leftovers=plan.leftovers,
    )
    yield FunctionCommand(run_dump, (command, database.name), {})
    if job:  # only once the dump is verified and in place (a failed dump stops the op)
        yield FunctionCommand(dump_download.download, (job, label), {})


def newest_copy_job(folder: DumpFolder, database: Database) -> dump_download.Download | None:
    """The download of the newest complete dump, when the local folder has no copy of it."""
    complete = [d for d in folder.dumps if d.intact]
    if not complete:
        return None
    newest = max(complete, key=lambda d: (d.mtime, d.name))
    if dump_download.copy_name(host.name, newest.name) in dump_download.list_folder(
        database.download_dir
    ):
        return None
    remote = posixpath.join(folder.root, database.dir, newest.name)
    return copy_job(remote, database, f"{database.dir}/{newest.name} (no local copy yet)")


def copy_job(remote: str, database: Database, what: str) -> dump_download.Download:
    """The download of the dump at `remote` to the local folder, keeping download.keep copies
    (said now, for the dry run)."""
    label = f"dump {database.name}"
    folder = database.download_dir
    name = dump_download.copy_name(host.name, posixpath.basename(remote))
    copies = dump_download.local_copies(dump_download.list_folder(folder), host.name, database)
    prune = dump_download.to_prune(copies, name, host.name, database)
    say(f"{label}: download {what} to {folder}/")
    if prune:
        say(f"{label}: remove local copies {', '.join(prune)} (keep {database.download_keep})")
    return dump_download.Download(remote, folder, name, tuple(prune), tuple(copies.leftovers))
