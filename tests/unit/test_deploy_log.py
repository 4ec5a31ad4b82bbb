"""The deploy log's one format: lines written, lines read back, lines from hosts as they are."""

import subprocess

from operations import deploy_log
from operations.deploy_log import Event, line, parse
from operations.states.switch import move_current

WHEN = 1767323045  # 2026-01-02T03:04:05Z
DIGESTED = "0123456789ab-89abcdef"  # a release that is not exactly a commit


def test_a_line_reads_back_as_the_event_written():
    text = line(deploy_log.SWITCH, DIGESTED, "ann@laptop", "from 0123456789ab", when=WHEN)
    assert text == (
        "2026-01-02T03:04:05Z\tswitch\t0123456789ab-89abcdef\tann@laptop\tfrom 0123456789ab"
    )
    assert parse([text]) == [
        Event("2026-01-02T03:04:05Z", "switch", DIGESTED, "ann@laptop", "from 0123456789ab")
    ]


def test_tabs_in_who_or_detail_do_not_shift_the_fields():
    text = line(deploy_log.HOOK_FAILED, "abcdef1", "a\tb", "after_switch: x\ty", when=WHEN)
    assert parse([text]) == [
        Event("2026-01-02T03:04:05Z", "hook-failed", "abcdef1", "a b", "after_switch: x y")
    ]


def test_malformed_lines_are_skipped_and_short_ones_padded():
    lines = [
        "",
        "garbage",
        "2026-01-02T03:04:05Z\tswitch",  # cut short
        "2026-01-02T03:04:05Z\tswitch\tnot-a-sha\tme\tfrom -",
        "2026-01-02T03:04:05Z\tswitch\tABCDEF1\tme",  # upper case: not a release name
        "2026-01-02T03:04:05Z\tswitch\tabcdef1\n\tme",  # "$" would let a final newline pass
        "2026-01-02T03:04:05Z\tpopulated\tabcdef1",
        "2026-01-02T03:04:05Z\tprune\tabcdef2\tme\tdetail\textra",
    ]
    assert parse(lines) == [
        Event("2026-01-02T03:04:05Z", "populated", "abcdef1", "", ""),
        Event("2026-01-02T03:04:05Z", "prune", "abcdef2", "me", "detail"),
    ]


def test_the_append_command_quotes_the_line_and_the_path(tmp_path):
    root = tmp_path / "it's $(root)"
    (root / ".atomic-deploy").mkdir(parents=True)
    text = line(deploy_log.ROLLBACK, DIGESTED, "me; rm -rf /", "from `x` $(y) 'z'", when=WHEN)
    command = deploy_log.append_command(str(root), text).get_raw_value()
    for _ in range(2):
        subprocess.run(["sh", "-c", command], check=True)
    written = (root / ".atomic-deploy" / "log").read_text()
    assert written == f"{text}\n{text}\n"
    assert parse(written.splitlines())[0].detail == "from `x` $(y) 'z'"


def test_moving_current_renames_a_link_then_logs_the_move(tmp_path):
    root = tmp_path / "site root"
    for name in ("0123456789ab", DIGESTED):
        (root / "releases" / name).mkdir(parents=True)
    (root / ".atomic-deploy").mkdir()
    (root / "current").symlink_to("releases/0123456789ab")
    text = line(deploy_log.SWITCH, DIGESTED, "me", "from 0123456789ab", when=WHEN)
    command = move_current(str(root), DIGESTED, text).get_raw_value()
    subprocess.run(["sh", "-c", command], check=True)
    assert (root / "current").readlink().as_posix() == f"releases/{DIGESTED}"
    assert (root / ".atomic-deploy" / "log").read_text() == text + "\n"
    # A step of a larger change (the live rebuild): the move alone, nothing logged.
    bare = move_current(str(root), "0123456789ab").get_raw_value()
    subprocess.run(["sh", "-c", bare], check=True)
    assert (root / "current").readlink().as_posix() == "releases/0123456789ab"
    assert (root / ".atomic-deploy" / "log").read_text() == text + "\n"
