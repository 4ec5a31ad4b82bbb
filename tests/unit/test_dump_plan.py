"""The dump decisions: max_age, freshness, what is kept and pruned, the fact output."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

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
