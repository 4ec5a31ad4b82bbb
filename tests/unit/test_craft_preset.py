"""`preset: craft`: the preset's values count as the client's, the client's own keys win."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from operations import presets
from operations.config import ConfigError, host_data, load_client


def _load(tmp_path: Path, hosts: list | None = None, **keys: Any):
    (tmp_path / "site").mkdir(exist_ok=True)
    file = tmp_path / "client.yml"
    doc = {"source": "site", "preset": "craft", "hosts": hosts or [{"name": "web1"}], **keys}
    doc = {k: v for k, v in doc.items() if v is not None}  # None: leave the key out
    file.write_text(yaml.safe_dump(doc))
    return load_client(file)


def test_the_craft_preset_sets_up_a_craft_site(tmp_path):
    client = _load(tmp_path)
    assert client.docroot == "web"
    assert client.shared_dirs == ("storage",)
    assert client.shared_files == (".env",)
    assert client.writable_dirs == ("web/cpresources",)
    assert _load(tmp_path, craft={"allow_admin_changes": True}).writable_dirs == (
        "web/cpresources",
        "config/project",
    )
    [up] = client.hooks.before_switch
    assert (up.run, up.once, up.hosts) == ("$ATOMIC_PHP craft up --interactive=0", True, ())
    clears = [f"$ATOMIC_PHP craft clear-caches/{c}"
              for c in ("data", "compiled-classes", "compiled-templates")]  # fmt: skip
    for point in (client.hooks.after_switch, client.hooks.after_rollback):
        assert [(h.run, h.once, h.hosts) for h in point] == [(c, False, ()) for c in clears]
    assert client.hooks.on_failure == ()
    assert client.preset_differs == ()  # nothing overridden: the dry run says nothing


def test_a_key_the_client_gives_replaces_the_presets_and_the_dry_run_names_it(tmp_path):
    client = _load(
        tmp_path,
        shared_dirs=["storage", "web/uploads"],
        hooks={"after_switch": ["$ATOMIC_PHP craft clear-caches/all"]},
    )
    assert client.shared_dirs == ("storage", "web/uploads")  # replaced, not merged
    assert [h.run for h in client.hooks.after_switch] == ["$ATOMIC_PHP craft clear-caches/all"]
    # the other hook points keep the preset's
    assert [h.run for h in client.hooks.before_switch] == ["$ATOMIC_PHP craft up --interactive=0"]
    assert len(client.hooks.after_rollback) == 3
    assert client.preset_differs == (
        "shared_dirs: [storage, web/uploads] (the client file's; preset craft has [storage])",
        "hooks.after_switch: [$ATOMIC_PHP craft clear-caches/all] (the client file's; preset "
        "craft has [$ATOMIC_PHP craft clear-caches/data, $ATOMIC_PHP craft "
        "clear-caches/compiled-classes, $ATOMIC_PHP craft clear-caches/compiled-templates])",
    )
    # a key given with the preset's own value is not a difference
    assert _load(tmp_path, docroot="web").preset_differs == ()


def test_writable_dirs_follow_allow_admin_changes():
    assert presets.craft({})["writable_dirs"] == ["web/cpresources"]
    allowed = presets.craft({"allow_admin_changes": True})["writable_dirs"]
    assert allowed == ["web/cpresources", "config/project"]


def test_errors_still_name_the_client_file_and_key(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, docroot="../web")
    assert str(tmp_path / "client.yml") in str(info.value) and "docroot:" in str(info.value)
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, preset="wordpress")
    assert "preset: 'wordpress' is not one of ['craft']" in str(info.value)
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, preset=None, craft={"allow_admin_changes": True})
    assert "craft: these are options of the craft preset; add preset: craft" in str(info.value)
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, craft={"allow_admin_changes": "yes"})
    assert "craft.allow_admin_changes: 'yes' is not of type 'boolean'" in str(info.value)


def test_php_binary_per_host_reaches_the_hooks(tmp_path):
    client = _load(
        tmp_path,
        php_binary="/usr/bin/php8.2",
        hosts=[{"name": "web1"}, {"name": "web2", "php_binary": "/opt/php83/bin/php"}],
    )
    php = [host_data(client, h, "a" * 12)["hooks"].php_binary for h in client.hosts]
    assert php == ["/usr/bin/php8.2", "/opt/php83/bin/php"]
    assert _load(tmp_path).hooks.php_binary == "php"  # the schema's default
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, php_binary="php; rm -rf /")
    assert "php_binary: 'php; rm -rf /' must be a command name or path" in str(info.value)
