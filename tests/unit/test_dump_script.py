"""The remote dump script, run with the local sh and fake mysqldump/mariadb."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from operations.database import (
    Database,
)
from operations.states.dump import dump_command


def _db(**kw) -> Database:
    return Database(**{"name": "craft", "dir": "backups", "max_age": 3600, "keep": 3, **kw})


_FAKE_DUMP = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$FAKE_MODE:$*" in
  process:*--no-tablespaces*) ;;
  process:*) echo "mysqldump: Error: 'Access denied; you need (at least one of) the" \
    "PROCESS privilege(s) for this operation' when trying to dump tablespaces" >&2; exit 2;;
  routines:*--routines*) echo "mysqldump: Couldn't execute 'SHOW CREATE PROCEDURE p':" \
    "Access denied" >&2; exit 2;;
  crash:*) echo "-- MySQL dump"; echo "INSERT INTO t VALUES (1);"; exit 3;;
  notrailer:*) echo "-- MySQL dump"; exit 0;;
esac
echo "-- MySQL dump"
echo "CREATE TABLE t (id int);"
echo "-- Dump completed on 2024-01-01  0:00:00"
"""


_FAKE_CLIENT = """#!/bin/sh
echo "client $*" >> "$FAKE_LOG"
"""


def _run_script(
    tmp_path: Path, mode: str, cnf: bool = True, database: Database | None = None
) -> tuple[subprocess.CompletedProcess, Path]:
    bin_dir, root = tmp_path / "bin", tmp_path / "root"
    (root / ".atomic-deploy").mkdir(parents=True)
    bin_dir.mkdir()
    for name, text in (("mariadb-dump", _FAKE_DUMP), ("mariadb", _FAKE_CLIENT)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    cnf_path = root / ".atomic-deploy" / "mysqldump.cnf"
    if cnf:
        cnf_path.write_text("[client]\npassword=x\n")
    (root / "backups").mkdir(mode=0o755)
    (root / "backups" / ".tmp-craft-20200101T000000Z-abcdef1.sql.gz").write_text("partial")
    (root / "backups" / "craft-20200101T000000Z-abcdef1.sql.gz").write_text("old")
    command = dump_command(
        str(root),
        database or _db(),
        "craft-20240101T000000Z-abcdef1.sql.gz",
        "2024\tdump\tabcdef1\tme\tbackups/x",
        str(cnf_path) if cnf else None,
        prune=["craft-20200101T000000Z-abcdef1.sql.gz"],
        leftovers=[".tmp-craft-20200101T000000Z-abcdef1.sql.gz"],
    )
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_MODE": mode,
        "FAKE_LOG": str(tmp_path / "calls"),
    }
    proc = subprocess.run(
        ["sh", "-c", command.get_raw_value()], env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    return proc, root


def _calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_script_retries_without_tablespaces_when_process_is_missing(tmp_path):
    proc, root = _run_script(tmp_path, "process")
    assert proc.returncode == 0, proc.stderr
    assert "note the user lacks the PROCESS privilege: dumping again with --no-tablespaces" in (
        proc.stdout
    )
    dumps = _calls(tmp_path)[1:]
    assert len(dumps) == 2 and "--no-tablespaces" in dumps[1] and "--routines" in dumps[1]
    assert re.match(r"^--defaults-file=\S+mysqldump.cnf --single-transaction --skip-lock", dumps[1])
    final = root / "backups" / "craft-20240101T000000Z-abcdef1.sql.gz"
    assert stat.S_IMODE(final.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "backups").stat().st_mode) == 0o700
    # old pruned, leftover gone; the verified size recorded beside the dump
    assert sorted(os.listdir(root / "backups")) == [f".{final.name}.size", final.name]
    assert (root / "backups" / f".{final.name}.size").read_text().strip() == str(
        final.stat().st_size
    )
    assert not (root / ".atomic-deploy" / "mysqldump.cnf").exists()
    assert (root / ".atomic-deploy" / "log").read_text() == "2024\tdump\tabcdef1\tme\tbackups/x\n"
    assert f"done backups/{final.name} " in proc.stdout


def test_script_retries_without_routines_when_denied(tmp_path):
    proc, _ = _run_script(tmp_path, "routines")
    assert proc.returncode == 0, proc.stderr
    assert "dumping again without --routines" in proc.stdout
    assert "--routines" not in _calls(tmp_path)[-1]


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("crash", "mysqldump failed (exit 3)"),
        ("notrailer", "the dump lacks mysqldump's completion trailer"),
    ],
)
def test_script_keeps_nothing_of_a_failed_dump(tmp_path, mode, message):
    proc, root = _run_script(tmp_path, mode)
    assert proc.returncode == 1
    assert f"atomic-deploy: dump craft: {message}" in proc.stderr
    # no partial file, the old dump not pruned, no option file left
    assert sorted(os.listdir(root / "backups")) == ["craft-20200101T000000Z-abcdef1.sql.gz"]
    assert not (root / ".atomic-deploy" / "mysqldump.cnf").exists()
    assert not (root / ".atomic-deploy" / "log").exists()


def test_script_with_the_hosts_option_file_passes_only_non_secret_settings(tmp_path):
    database = _db(user="craft", socket="/run/my sql.sock", defaults_file="~/.my.cnf")
    proc, _ = _run_script(tmp_path, "ok", cnf=False, database=database)
    assert proc.returncode == 0, proc.stderr
    extra = f"--defaults-extra-file={tmp_path}/.my.cnf --user=craft --socket=/run/my sql.sock"
    assert all(call.removeprefix("client ").startswith(extra) for call in _calls(tmp_path))
