"""How a release is made from deploy-cache/: `copy_mode` copy, hardlink or reflink.

copy      `cp -a`: an independent full copy (the default).
hardlink  `cp -al`: every file of the release is a hard link to deploy-cache/ (and so to the
          other releases made from it). Near-zero disk and time per release. The hazard: an
          in-place write to a file (an editor saving over it, `echo >>`) changes that inode,
          so every release and deploy-cache/ sharing it change with it. rsync never writes in
          place here (it writes a temporary file and renames it), so uploads are safe; a
          hot-fix on the server is not. Drift detection still names it: the manifest records
          size and mtime, and the edit changes both in the live release, so the next run
          rebuilds it (rsync re-sends the file, whose cached copy changed too).
reflink   `cp -a --reflink=always`: copy-on-write clones (btrfs, XFS with reflink). On file
          systems that can't (ext4, tmpfs) it falls back to `cp -a` and says so.
"""

from __future__ import annotations

from typing import Any

from pyinfra import logger
from pyinfra.api import QuoteString, StringCommand

from .shell import script

MODES = ("copy", "hardlink", "reflink")
FALLBACK_MARK = "atomic-deploy: reflink-unsupported"
FALLBACK_NOTICE = (
    "notice: copy_mode reflink: the file system under {dest} can't clone files "
    "(cp --reflink=always failed): copied instead, as with copy_mode copy"
)


def copy_command(mode: str, src: str, dest: str) -> StringCommand:
    """Command making folder `dest` (absent) a copy of folder `src` in the given mode."""
    source, target = QuoteString(src), QuoteString(dest)
    if mode == "hardlink":
        return StringCommand("cp", "-al", source, target)
    if mode == "reflink":
        return script("copy_reflink.sh", {"src": src, "dest": dest, "mark": FALLBACK_MARK})
    if mode != "copy":
        raise ValueError(f"copy_mode must be one of {', '.join(MODES)}, not {mode!r}")
    return StringCommand("cp", "-a", source, target)


def run_noting_fallback(state: Any, host: Any, command: StringCommand, dest: str) -> bool:
    """Run `command` (pyinfra FunctionCommand callback); say so if reflink fell back to copy."""
    ok, output = host.run_shell_command(command)
    if FALLBACK_MARK in output.stdout_lines:
        host.log_styled(FALLBACK_NOTICE.format(dest=dest), fg="yellow", log_func=logger.warning)
    if not ok:
        for line in output.stderr_lines[-20:]:
            host.log_styled(line, fg="red", log_func=logger.error)
    return ok


def run_showing_progress(state: Any, host: Any, command: StringCommand) -> bool:
    """Run `command` (pyinfra FunctionCommand callback) with its output shown as it comes: the
    copy's progress lines (sh/copy_listed.sh), and an error at once."""
    ok, _ = host.run_shell_command(command, print_output=True, print_input=state.print_input)
    return ok
