"""The one way the graders write a file: atomically, to a regular file only, with normal permissions.

Why one helper: every file the tools write (snapshots, results, gradebooks, feedback, summary) must
never be seen half-written, must never replace something that is not a regular file (a device such
as ``/dev/full``, a FIFO, a symbolic link that could point anywhere), and is meant to be shared, so
it gets the permissions any new file would (``0666`` minus the umask), not ``mkstemp``'s ``0600``.

``check_target`` is for commands that do expensive work before writing (``snapshot`` reads a whole
cluster): it refuses a bad target up front, with one line, by really creating and removing a
temporary file next to it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from functools import cache
from pathlib import Path

from graders.errors import InputError

_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


@cache
def file_mode() -> int:
    """0666 minus the process umask (read without changing it where Linux allows)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _refuse_special(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    except OSError as err:
        raise InputError(f"{path}: cannot be written ({err.strerror}); choose another file") from None
    if not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        fix = (f"give a file name such as {path / 'snapshot.yaml'}" if stat.S_ISDIR(st.st_mode) else
               "only regular files are written (and replaced whole); give a plain file path")
        raise InputError(f"{path}: is {kind}; {fix}")


def check_target(path: Path) -> Path:
    """Refuse, with one InputError line, a target that ``write`` would refuse or fail on: a special
    file, a missing or unwritable folder (tested by creating a temporary file there)."""
    _refuse_special(path)
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{path}: folder {parent} does not exist; create it first")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise InputError(f"{path}: cannot write in {parent} ({err.strerror}); choose a folder you can write to") \
            from None
    os.close(fd)
    os.unlink(tmp)
    return path


def write(path: Path, data: str | bytes, *, make_parents: bool = False) -> None:
    """Replace ``path`` whole (temp file in the same folder, fsync, rename). Raises InputError for a
    special file and OSError for the rest (the caller knows whether that is one line or a row)."""
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    _refuse_special(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    # The temporary name is chosen before the file exists, so an interruption at any point (even
    # right after it was created) still knows what to remove.
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), file_mode())
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), file_mode())  # exactly 0666 - umask, whatever the open applied
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
