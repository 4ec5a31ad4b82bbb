"""Presets: the client-file values a kind of site needs, applied before the schema's defaults.

`preset: craft` in a client file stands for the keys below, as Craft CMS's own deployment
docs and Deployer's recipe/craftcms.php set them up. They are plain data: `apply` puts them
into the client file's mapping where the client did not give the key, then the file is
validated as if the client had written them, so an error still names the client file and key.

How the client's keys combine with a preset's (docs/craft.md, "Overriding the preset"):
* a top-level key the client gives replaces the preset's value (a list is not merged);
* inside `hooks`, each hook point the client gives replaces the preset's list for that point;
  the other points keep the preset's.
"""

from __future__ import annotations

import copy
from typing import Any

# $ATOMIC_PHP is the host's php_binary (hooks get it in their environment), so a host with
# several PHP versions runs Craft with the one the client names.
CRAFT_CACHE_CLEARS = [
    "$ATOMIC_PHP craft clear-caches/data",
    "$ATOMIC_PHP craft clear-caches/compiled-classes",
    "$ATOMIC_PHP craft clear-caches/compiled-templates",
]
CRAFT_UP = "$ATOMIC_PHP craft up --interactive=0"  # migrations and project config


def craft(options: dict[str, Any]) -> dict[str, Any]:
    """The craft preset's keys; `options` is the client's `craft:` section (as written)."""
    writable = ["web/cpresources"]  # Craft publishes control-panel assets there at runtime
    if options.get("allow_admin_changes") is True:
        writable.append("config/project")  # the control panel writes project config there
    return {
        "docroot": "web",
        "shared_dirs": ["storage"],
        "shared_files": [".env"],
        "writable_dirs": writable,
        "hooks": {
            # once: every host shares the database; on the first targeted host by name
            "before_switch": [{"run": CRAFT_UP, "once": True}],
            "after_switch": list(CRAFT_CACHE_CLEARS),
            "after_rollback": list(CRAFT_CACHE_CLEARS),
        },
    }


PRESETS = {"craft": craft}


def apply(raw: dict[str, Any], supported: set[str]) -> tuple[dict[str, Any], list[str]]:
    """(`raw` with its preset's keys filled in, one line per key the client set differently).

    `supported`: the schema's top-level keys; a preset key the schema lacks is left out (so a
    preset never makes a valid client file invalid). An unknown or missing preset leaves
    `raw` as it is (the schema names an unknown one).
    """
    name = raw.get("preset")
    if not isinstance(name, str) or name not in PRESETS:
        return raw, []
    options = raw.get("craft") if isinstance(raw.get("craft"), dict) else {}
    doc = copy.deepcopy(raw)
    differs = []
    for key, value in PRESETS[name](options).items():
        if key not in supported:
            continue
        if key == "hooks" and isinstance(doc.get("hooks", {}), dict):
            hooks = doc.setdefault("hooks", {})
            for point, commands in value.items():
                if point not in hooks:
                    hooks[point] = commands
                elif hooks[point] != commands:
                    differs.append(_line(name, f"hooks.{point}", hooks[point], commands))
        elif key not in doc:
            doc[key] = value
        elif doc[key] != value:
            differs.append(_line(name, key, doc[key], value))
    return doc, differs


def _line(preset: str, key: str, value: Any, instead_of: Any) -> str:
    return f"{key}: {_show(value)} (the client file's; preset {preset} has {_show(instead_of)})"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict) and "run" in value:  # a hook entry
        where = " (once)" if value.get("once") else ""
        hosts = f" (on {', '.join(map(str, value['hosts']))})" if value.get("hosts") else ""
        return f"{value['run']}{where}{hosts}"
    return str(value)
