"""One writer per campaign store: an advisory lock held by the process that writes it.

Two processes that evaluate into one store would each hand out the same pending points and
evaluate the campaign twice. The first process to write takes an exclusive ``flock`` on a
file beside the store (``STORE-lock``) and records who it is there; another process that
tries to write is refused with the holder's pid, host and start time. The operating system
drops the lock when the holder exits, however it exits (``kill -9`` included), so a stale
lock never blocks a resume. Within one process the lock is shared: stores opened twice by
the same program do not lock each other out.

``flock`` works on local file systems and, through the lock manager, on NFS; on systems
without ``fcntl`` (Windows) no lock is taken.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from .exceptions import StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["StoreLock"]

_HELD: dict[str, list[int]] = {}  # lock file -> [fd, holders, pid] of this process
_GUARD = threading.Lock()


class StoreLock:
    """The writer's lock of the campaign store at ``store_path``."""

    def __init__(self, store_path: str | Path) -> None:
        self.store_path = Path(store_path)
        self.path = Path(f"{store_path}-lock")
        self._key = str(self.path.resolve())
        self.held = False

    def acquire(self) -> None:
        """Take the lock (again, if this process holds it); refuse if another one does."""
        if self.held or fcntl is None:
            self.held = True
            return
        with _GUARD:
            entry = _HELD.get(self._key)
            if entry is not None and _owner_is(entry, os.getpid()):
                entry[1] += 1
                self.held = True
                return
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(f"cannot lock campaign store {str(self.store_path)!r}: cannot "
                                 f"create {str(self.path)!r} ({exc.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                raise StoreError(
                    f"campaign store {str(self.store_path)!r} is in use by {holder}; one "
                    "process writes a store at a time: wait for it to finish, or stop it "
                    "and rerun to resume") from None
            _write_holder(fd)
            _HELD[self._key] = [fd, 1, os.getpid()]
            self.held = True

    def release(self) -> None:
        """Give the lock back (the last holder in this process unlocks the file)."""
        if not self.held:
            return
        self.held = False
        if fcntl is None:
            return
        with _GUARD:
            entry = _HELD.get(self._key)
            if entry is None or not _owner_is(entry, os.getpid()):
                return
            entry[1] -= 1
            if entry[1] == 0:
                del _HELD[self._key]
                fcntl.flock(entry[0], fcntl.LOCK_UN)
                os.close(entry[0])


def _owner_is(entry: list[int], pid: int) -> bool:
    return entry[2] == pid  # a forked child does not share its parent's registry entry


def _write_holder(fd: int) -> None:
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "command": " ".join(sys.argv)[:200]})
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return (f"process {info['pid']} on {info['host']} (since {info['since']}: "
                f"{info['command']})")
    except (OSError, ValueError, KeyError):
        return "another process"
