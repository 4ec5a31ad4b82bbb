"""The configuration reference (docs/configuration.md) is the schema's, not a hand-kept copy."""

import re
import subprocess
from pathlib import Path

from operations.config import load_client, reference_table

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


def test_readme_minimal_client_file_is_accepted(tmp_path, monkeypatch):
    """The README's client file, saved where it says, loads as it stands."""
    home = tmp_path / "home"  # its ssh.key is ~/.ssh/id_ed25519: a real key must be there
    (home / ".ssh").mkdir(parents=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / ".ssh/id_ed25519")],
        check=True,
    )
    monkeypatch.setenv("HOME", str(home))
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("\n## A client file\n", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example, "README's 'A client file' lost its yaml example"
    site = tmp_path / "projects" / "client1-site"  # its source: ../../client1-site
    site.mkdir(parents=True)
    yml = tmp_path / "projects" / "atomic-deploy" / "inventories" / "client1.yml"
    yml.parent.mkdir(parents=True)
    (yml.parent / "secrets").mkdir()
    (yml.parent / "secrets" / "client1.env").write_text("CRAFT_ENVIRONMENT=production\n")
    yml.write_text(example.group(1))
    client = load_client(yml)
    assert client.source == site
    assert [h["hostname"] for h in client.hosts] == ["web1.client1.example"]
