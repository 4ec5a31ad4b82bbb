"""The one way a shell script of operations/sh/ becomes a host command.

Scripts longer than a line live as .sh files beside the code (shellcheck reads them) and run
under `sh -c` on the host. Their inputs arrive as shell variables and positional parameters
set before the script's text, every value quoted: a path, a name or a message never becomes
shell syntax.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from importlib import resources

from pyinfra.api import QuoteString, StringCommand

from .pyinfra_adapter import assign

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.cache
def script_text(name: str) -> str:
    """The text of operations/sh/<name>, read once per process (package data)."""
    text = resources.files(__package__).joinpath("sh", name).read_text(encoding="utf-8")
    return text if text.endswith("\n") else text + "\n"


def script(
    name: str, variables: Mapping[str, str], args: Sequence[str] = ()
) -> StringCommand:
    """`v1='x'; v2='y'; set -- 'a1' 'a2' ; { <text of operations/sh/<name>> }`: one command.

    `set --` is always there, so a script never sees positional parameters it was not given;
    the braces (the text ends with a newline) let the command be followed by `;`, `&&` or `)`
    like any other, even after a comment on the script's last line.
    """
    parts: list[object] = []
    for var, value in variables.items():
        if not _NAME.fullmatch(var):
            raise ValueError(f"{var!r} is not a shell variable name")
        parts.append(StringCommand(assign(var, str(value)), ";", _separator=""))
    parts += ["set", "--", *map(QuoteString, args), ";", "{", script_text(name), "}"]
    return StringCommand(*parts)
