"""Small pieces the operations share: telling the user, refusing, and shell command shapes."""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable, Generator, Iterator

from pyinfra import host, logger
from pyinfra.api import OperationError, QuoteString, StringCommand, operation
from pyinfra.api.state import StateStage

from .facts import forget, mark_quiet
from .layout import LOG_FILE


def wanted_state(func: Callable[..., Generator]) -> Callable:
    """`@operation()` that also keeps the host's cached DeployState honest.

    When the operation yields a command the host is about to change, so the cache is dropped;
    when it yields nothing, following operations may reuse what it read.
    """

    @functools.wraps(func)
    def tracked(*args, **kwargs) -> Generator:
        changed = False
        for command in func(*args, **kwargs):
            if not changed and not preparing():
                forget(host.name)
            changed = True
            yield command
        if not changed and host.current_op_hash:
            mark_quiet(host.name, host.current_op_hash)

    return operation()(tracked)


def preparing() -> bool:
    """True while pyinfra prepares (computes the diff), False while it executes."""
    return host.state.current_stage == StateStage.Prepare


def say(message: str) -> None:
    """Tell the user, per host, a change this operation makes (shown by --dry too)."""
    host.log(message, log_func=logger.info)


def refuse(message: str) -> Iterator[StringCommand]:
    """Stop this host with `message`, before anything changes.

    While preparing, raising aborts the whole run before any host changes. Executing (`-y`
    skips preparing), a failing command fails this host; FAIL_PERCENT = 0 then stops the others.
    """
    if preparing():
        raise OperationError(f"{host.name}: {message}")
    # pyinfra prints a failed command's output, prefixed by the host: that is the message.
    yield StringCommand("echo", QuoteString(message), ">&2;", "exit", "1")


def atomic_link(path: str, target: str) -> StringCommand:
    """Point symlink `path` at `target` by rename(2): it is never missing, not even briefly.

    The new link is made under a temporary name in the same folder (same file system), then
    renamed over `path`. `mv -T` refuses to replace a directory, which is what we want.
    """
    folder, name = posixpath.split(path)
    tmp = posixpath.join(folder, f".{name}.atomic-deploy-tmp")
    return StringCommand(
        "rm", "-f", QuoteString(tmp),
        "&&", "ln", "-s", QuoteString(target), QuoteString(tmp),
        "&&", "mv", "-Tf", QuoteString(tmp), QuoteString(path),
    )  # fmt: skip


def append_log(root: str, line: str) -> StringCommand:
    """Append one line to the host's deploy log."""
    return StringCommand(
        "printf", "'%s\\n'", QuoteString(line), ">>", QuoteString(posixpath.join(root, LOG_FILE))
    )


def chain(*commands: StringCommand) -> StringCommand:
    """One remote command running `commands` in order, stopping at the first failure."""
    bits: list[object] = []
    for command in commands:
        if bits:
            bits.append("&&")
        bits.extend(["{", command, ";", "}"])
    return StringCommand(*bits)


def copy_contents(src: str, dest: str) -> StringCommand:
    """Copy what folder `src` holds into the existing folder `dest`, keeping attributes.

    Unlike `cp -a src/. dest`, this leaves `dest`'s own mode and owner alone.
    """
    return StringCommand(
        "find", QuoteString(src), "-mindepth", "1", "-maxdepth", "1",
        "-exec", "cp", "-a", "-t", QuoteString(dest), "{}", "+",
    )  # fmt: skip
