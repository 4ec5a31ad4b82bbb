"""docs/bad-input.md says each row is a test: every test it names exists, in the file named."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "bad-input.md"


def _legend(text: str) -> dict[str, Path]:
    """The letters the doc's test column uses: `U` = `tests/unit/...py`."""
    return {m[1]: REPO / m[2] for m in re.finditer(r"`([A-Z]+)` = `(tests/[^`]+\.py)`", text)}


def _test_cells(text: str) -> list[str]:
    """The last cell of every row of the tables whose last column is `test`."""
    cells, in_table = [], False
    for line in text.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        row = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if not in_table:  # the header row
            in_table = row[-1] == "test"
        elif not line.startswith("|---"):
            cells.append(row[-1])
    return cells


def test_every_test_the_bad_input_table_names_exists_in_its_file():
    text = DOC.read_text()
    legend = _legend(text)
    assert {"U", "C", "E"} <= legend.keys(), "the legend of test file letters is gone"
    assert not [p for p in legend.values() if not p.is_file()], "legend names a missing file"
    missing, checked = [], 0
    for cell in _test_cells(text):
        for part in cell.split(";"):  # "C `test_a`, `test_b`; E `test_c`"
            letters = re.match(r"\s*([A-Z]+(?:, [A-Z]+)*)\s", part)
            names = re.findall(r"`(test_\w+)", part)  # "`...[param]`" refers to the last name
            if not names:
                continue
            assert letters, f"no test file letter before {names} in: {cell}"
            files = [legend[letter] for letter in letters[1].split(", ")]
            source = "".join(f.read_text() for f in files)
            for name in names:
                checked += 1
                if not re.search(rf"^(async )?def {name}\(", source, re.M):
                    missing.append(f"{name} (in {', '.join(f.name for f in files)})")
    assert checked > 40  # the table was parsed, not skipped
    assert not missing, "docs/bad-input.md names tests that do not exist: " + "; ".join(missing)
