"""The configuration reference (docs/configuration.md) is the schema's, not a hand-kept copy."""

import re
from pathlib import Path

from operations.config import reference_table

CONFIGURATION_DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_config_reference_matches_schema():
    text = CONFIGURATION_DOC.read_text()
    block = re.search(
        r"<!-- config-reference:.*?-->\n(.*?)\n<!-- /config-reference -->", text, re.S
    )
    assert block, "docs/configuration.md lost its config-reference markers"
    assert block.group(1).strip() == reference_table(), (
        "docs/configuration.md config table is out of date; regenerate with "
        "python3 -c 'from operations.config import reference_table; print(reference_table())'"
    )
