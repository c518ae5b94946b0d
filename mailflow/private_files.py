"""Files and folders only the service account can read (0600 / 0700), whatever the umask.

Everything mailflow writes to disk may hold personal data (the database, mail, outgoing
notices) or a secret (the reply-token key), so each is created owner-only. Existing files and
folders are left as the administrator set them: only what mailflow creates is tightened.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_private_dir(path: Path) -> None:
    """Create `path` and any missing parents as 0700 (an existing folder is left alone)."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made by another process meanwhile
            continue
        os.chmod(d, DIR_MODE)  # mkdir's mode is masked by the umask: 0o777 would give 0000


def create_private_file(path: Path) -> None:
    """Create an empty 0600 file at `path` unless one exists (e.g. a SQLite database)."""
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def _private_temp(directory: Path, data: bytes) -> str:
    """A 0600 temporary file in `directory` holding `data`, flushed to disk."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")  # mkstemp creates it 0600
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def fsync_dir(directory: Path) -> None:
    """Make a rename or link inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` (0600) so a reader sees the old file or the whole new one."""
    make_private_dir(path.parent)
    tmp = _private_temp(path.parent, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def create_private_once(path: Path, data: bytes) -> bool:
    """Create `path` (0600) holding `data` only if it does not exist yet; True if this call made it.

    The content is written and synced under a temporary name, then hard-linked into place:
    linking fails if the name exists, so of several processes racing exactly one wins, and
    nobody ever reads a half-written file.
    """
    make_private_dir(path.parent)
    tmp = _private_temp(path.parent, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return True
