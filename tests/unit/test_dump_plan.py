"""The database dump without a host: max_age, freshness, pruning, the option file, the config,
and the remote script itself run locally against fake mysqldump/mariadb binaries.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from dataclasses import replace
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
    DumpFile,
    DumpFolder,
    format_age,
    option_file,
    parse_dump_folder,
    parse_max_age,
    plan_dump,
)
from operations.states.dump import dump_command

DAY = 86400


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 2 * DAY), ("0s", 0)]
)
def test_max_age_parses_a_number_and_a_unit(text, seconds):
    assert parse_max_age(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1.5h", "1 h", "-1h", "1w", "1h30m", "1H"])
def test_max_age_refuses_anything_else(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_max_age(text)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(-5, "0 s"), (45, "45 s"), (12 * 60, "12 min"), (26 * 3600, "26 h"), (3 * DAY, "3 d")],
)
def test_age_in_words(seconds, words):
    assert format_age(seconds) == words


def _db(**kw) -> Database:
    return Database(**{"name": "craft", "dir": "backups", "max_age": 3600, "keep": 3, **kw})


def _folder(*ages: int, now: int = 1_000_000, leftovers=()) -> DumpFolder:
    dumps = [
        DumpFile(f"craft-202401{i + 1:02d}T000000Z-abcdef1.sql.gz", now - age, 100, 100)
        for i, age in enumerate(ages)
    ]
    return DumpFolder(now=now, folder="ok", mode="700", dumps=dumps, leftovers=list(leftovers))


def test_no_dump_yet_means_a_new_dump():
    plan = plan_dump(DumpFolder(), _db())
    assert plan.new_dump and plan.message == "dump craft: no dump yet -> new dump"
    assert plan.prune == []


def test_a_dump_younger_than_max_age_is_fresh():
    plan = plan_dump(_folder(12 * 60, 30 * 3600), _db())
    assert not plan.new_dump
    assert plan.message == "dump craft: fresh (12 min old)"


def test_a_dump_exactly_max_age_old_is_stale():
    plan = plan_dump(_folder(26 * 3600), _db())
    assert plan.new_dump
    assert plan.message == "dump craft: newest is 26 h old (fresh is < 1 h) -> new dump"
    assert plan_dump(_folder(3600), _db()).new_dump


def test_a_new_dump_counts_towards_keep():
    ages = (2 * 3600, 3 * 3600, 4 * 3600, 5 * 3600)
    plan = plan_dump(_folder(*ages), _db(keep=3))
    assert plan.new_dump
    # the new one plus the two newest old ones are kept
    assert plan.prune == [
        "craft-20240103T000000Z-abcdef1.sql.gz",
        "craft-20240104T000000Z-abcdef1.sql.gz",
    ]


def test_pruning_without_a_new_dump_keeps_keep_and_never_the_newest():
    plan = plan_dump(_folder(60, 2 * DAY, 3 * DAY), _db(keep=1))
    assert not plan.new_dump
    assert plan.prune == [
        "craft-20240102T000000Z-abcdef1.sql.gz",
        "craft-20240103T000000Z-abcdef1.sql.gz",
    ]
    # keep 1 and a new dump: the old ones go (the script prunes only once the new one is in)
    stale = plan_dump(_folder(2 * DAY, 3 * DAY), _db(keep=1))
    assert stale.new_dump and len(stale.prune) == 2


def test_the_fact_output_keeps_only_this_databases_dumps_and_leftovers():
    lines = [
        "root /srv/site",
        "now 1000",
        "tool mariadb-dump",
        "tool gzip",
        "folder ok 700",
        "file 900 10 craft-20240101T000000Z-abcdef123456.sql.gz",
        "file 900 10 craft-20240101T000000Z.sql.gz",
        "file 900 0 craft-20240102T000000Z-abcdef1.sql.gz",  # empty: not a dump
        "file 900 10 craft_old-20240101T000000Z-abcdef1.sql.gz",  # another database
        "file 900 10 craft-latest.sql.gz",  # the user's own
        "file 900 10 .tmp-craft-20240103T000000Z-abcdef1.sql.gz",
        "file 900 10 .tmp-craft-20240103T000000Z-abcdef1.sql.gz.err",
        "file 900 10 .tmp-other-20240103T000000Z-abcdef1.sql.gz",
        "recorded 10 craft-20240101T000000Z.sql.gz",
        "cnf stale",
    ]
    folder = parse_dump_folder(lines, _db())
    assert folder.root == "/srv/site" and folder.now == 1000 and folder.mode == "700"
    assert folder.tools == {"mariadb-dump", "gzip"} and folder.stale_cnf
    assert [(d.name, d.intact) for d in folder.dumps] == [
        ("craft-20240101T000000Z-abcdef123456.sql.gz", False),  # no size recorded
        ("craft-20240101T000000Z.sql.gz", True),
    ]
    assert folder.leftovers == [
        ".tmp-craft-20240103T000000Z-abcdef1.sql.gz",
        ".tmp-craft-20240103T000000Z-abcdef1.sql.gz.err",
    ]


def test_option_file_survives_quotes_backslashes_and_comment_signs(tmp_path):
    password = "a\"b\\c d#e$f'g\tz;x"
    cnf = tmp_path / "my.cnf"
    cnf.write_text(option_file(_db(user="craft", host="db.example", port=3306), password))
    out = subprocess.run(
        ["my_print_defaults", f"--defaults-file={cnf}", "client"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert out == ["--user=craft", f"--password={password}", "--host=db.example", "--port=3306"]


# --------------------------------------------------------------------------- config


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


# --------------------------------------------------------------------------- the remote script

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


def test_documented_database_table_matches_the_schema():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    pattern = r"<!-- database-reference:.*?-->\n(.*?)\n<!-- /database-reference -->"
    block = re.search(pattern, doc, re.S)
    assert block, "docs/configuration.md lost its database-reference markers"
    assert block.group(1).strip() == database_reference_table(), (
        "docs/configuration.md database table is out of date; regenerate with python3 -c 'from "
        "operations.config import database_reference_table as t; print(t())'"
    )


def test_a_damaged_newest_dump_is_not_counted_as_fresh():
    folder = _folder(60, 2 * DAY)
    folder.dumps[0] = replace(folder.dumps[0], size=50)  # cut short since it was verified
    plan = plan_dump(folder, _db(keep=5))
    assert plan.new_dump
    assert plan.message == (
        "dump craft: newest is 2 d old (fresh is < 1 h) (craft-20240101T000000Z-abcdef1.sql.gz: "
        "damaged or cut short since it was made, not counted) -> new dump"
    )


def test_the_newest_complete_dump_is_never_pruned_even_behind_damaged_ones():
    folder = _folder(60, 120, 30 * 60)
    folder.dumps[:2] = [replace(d, size=1) for d in folder.dumps[:2]]
    plan = plan_dump(folder, _db(keep=1))
    assert not plan.new_dump  # the complete one is 30 min old: fresh
    assert plan.prune == []  # the damaged ones are newer: they wait for a newer complete dump
    folder.dumps[2] = replace(folder.dumps[2], mtime=folder.now - 2 * DAY)
    plan = plan_dump(folder, _db(keep=1))
    assert plan.new_dump  # after it, everything older goes, damaged or not
    assert len(plan.prune) == 3
