"""Atomic file writes: a reader sees the old file or the complete new one, never
half of it. Used for checkpoints, metrics, downloads, IDX files, images and graphs."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def check_replaceable(path: str | os.PathLike) -> None:
    """An OSError unless `path` is new or a regular file (a symbolic link is judged by
    what it points to): an atomic write replaces the file, and must not replace a
    device node, a FIFO or a directory with one."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise OSError(e.errno, f"cannot check what {os.fspath(path)} is: {e.strerror}", os.fspath(path)) from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise OSError(errno.EEXIST, f"{os.fspath(path)} is {kind}, not a regular file: give a new path or a regular "
                                    "file to replace", os.fspath(path))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary binary file beside `path`; when the block ends normally it
    is fsynced and moved over `path` in one `os.replace`. If the block raises
    (KeyboardInterrupt included), the temporary file is removed and `path` is
    left as it was. `path` must be new or a regular file (`check_replaceable`)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {path.parent} does not exist")
    check_replaceable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=_SUFFIX)
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable; not supported everywhere
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    remove_stale_temporaries(path)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the hidden `.<name>.<pid>.*.tmp` files beside `path` that writers which
    no longer run (killed mid-write) left behind; a live writer's file is kept.
    Returns what was removed."""
    path = Path(path)
    removed = []
    with contextlib.suppress(OSError):
        for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{_SUFFIX}"):
            pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
            if pid.isdigit() and not _running(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                    removed.append(tmp)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or a name not of our making
        pass
    return True


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_write(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically (e.g. a metrics file read while training runs)."""
    atomic_write_bytes(path, text.encode(encoding))
