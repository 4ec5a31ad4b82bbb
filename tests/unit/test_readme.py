"""The README's configuration reference is the schema's, not a hand-kept copy."""

import re
from pathlib import Path

from operations.config import reference_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_config_reference_matches_schema():
    text = README.read_text()
    block = re.search(
        r"<!-- config-reference:.*?-->\n(.*?)\n<!-- /config-reference -->", text, re.S
    )
    assert block, "README lost its config-reference markers"
    assert block.group(1).strip() == reference_table(), (
        "README config table is out of date; regenerate with "
        "python3 -c 'from operations.config import reference_table; print(reference_table())'"
    )
