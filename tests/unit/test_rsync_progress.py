"""rsync `--info=progress2` parsing for the upload's progress lines (operations/rsync.py)."""

import re

from operations.rsync import Progress, parse_progress

# What rsync 3.2+ writes to a pipe: records separated by carriage returns, a newline at the end.
STREAM = (
    "\r              0   0%    0.00kB/s    0:00:00  "
    "\r     32,768,000   3%   31.25MB/s    0:00:31 (xfr#120, ir-chk=1020/2140)"
    "\r    524,288,000  45%  100.00MB/s    0:00:05 (xfr#15,230, to-chk=14,383/29,613)"
)


def test_last_record_wins_with_files_and_checked_counts() -> None:
    progress = parse_progress(STREAM)
    plain = re.sub(r"(\d),(\d)", r"\1\2", STREAM)  # numbers without thousands separators
    assert parse_progress(plain) == progress
    assert progress == Progress(524_288_000, 45, 15230, 14383, 29613)
    assert str(progress) == "upload: 524.3 MB sent (45%), 15,230 files, 15,230/29,613 checked"


def test_record_without_file_counts() -> None:
    assert parse_progress("\r  1,000   1%  1.00kB/s  0:00:01  ") == Progress(1000, 1)


def test_incomplete_tail_falls_back_to_the_previous_record() -> None:
    text = "\r     32,768,000   3%   31.25MB/s    0:00:31 (xfr#120, ir-chk=1020/2140)\r   52"
    assert parse_progress(text) == Progress(32_768_000, 3, 120, 1020, 2140)


def test_no_progress_yet() -> None:
    assert parse_progress("") is None
    assert parse_progress("sending incremental file list\n") is None
