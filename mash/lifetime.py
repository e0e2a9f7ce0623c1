"""What a run holds ends with it: its lock and its child processes (see #21).

- ``hold_lock``: an exclusive flock on a file beside the database, held by this process
  alone. An flock belongs to the open file, which a forked child shares; so every fork
  closes the child's copy at once (``os.register_at_fork``), and the kernel releases the
  lock the moment the run dies, whatever its children are doing. A second run is refused
  only by a live process, which the refusal names.
- ``die_with_parent``: called in a child as it starts; the kernel kills it when its parent
  dies (Linux's PR_SET_PDEATHSIG), and a parent already gone ends it at once.

Not done on other systems: there ``die_with_parent`` does nothing. Parse workers there
end when their run closes their queue; a run killed with SIGKILL leaves them idle until
they are stopped by hand.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# A lock whose recorded holder is dead is held by a child of that dead run (of a mash
# older than #21, or one not yet killed by the kernel): wait this long for it to go.
LEFTOVER_GRACE = 3.0

_held: set[int] = set()  # descriptors of the locks this process holds


class LockBusy(Exception):
    """The lock is held by another live process, named in ``holder`` ("pid 123 (...)")."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def _close_held_locks() -> None:
    """In a forked child: drop our copy of every lock's file, so only the run holds it."""
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_close_held_locks)


@contextlib.contextmanager
def hold_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` while the block runs; raise LockBusy when a
    live process holds it.

    The file records the holder's pid, for the refusal's message only: the lock itself
    is the kernel's, released when the holder dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _lock(fd, path)
    except BaseException:
        os.close(fd)
        raise
    owner = os.getpid()
    _held.add(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(owner).encode(), 0)
        yield
    finally:
        if os.getpid() == owner:  # a forked child has closed its copy: nothing to undo
            _held.discard(fd)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _lock(fd: int, path: Path) -> None:
    """Take the lock, waiting up to LEFTOVER_GRACE while it is held for a dead run."""
    deadline = time.monotonic() + LEFTOVER_GRACE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            recorded = _recorded_pid(fd)
            if _alive(recorded) or time.monotonic() >= deadline:
                raise LockBusy(_holder(path, recorded)) from None
            time.sleep(0.05)


def _recorded_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def _alive(pid: int | None) -> bool:
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _holder(path: Path, recorded: int | None) -> str:
    """Name a live process that holds ``path`` open ("pid 123"), preferring the recorded
    one; a dead recorded pid is never named."""
    if _alive(recorded):
        return f"pid {recorded}"
    others = [pid for pid in _processes_with_open(path) if pid != os.getpid()]
    if others:
        named = ", ".join(f"pid {pid} ({_command(pid)})" for pid in others[:3])
        return f"{named}, left over from a run that died"
    return "a process this user cannot see"


def _processes_with_open(path: Path) -> list[int]:
    """Return the pids that have ``path`` open, as far as /proc shows (Linux)."""
    try:
        target = path.stat()
        pids = sorted(int(d) for d in os.listdir("/proc") if d.isdigit())
    except OSError:
        return []
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    st = os.stat(f"/proc/{pid}/fd/{fd}")
                    if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                        found.append(pid)
                        break
    return found


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()[:80]


# --- children -------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` dies; exit now if it has already.

    Call it first thing in a child. The signal comes when the *thread* that forked us
    ends: mash forks from its main thread. Does nothing off Linux (see the module).
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_PDEATHSIG): {os.strerror(code)}")
    if os.getppid() != parent:  # the parent died before prctl: no signal will come
        os.kill(os.getpid(), signal.SIGKILL)


def start_worker() -> None:
    """In a pool worker, before its first job: die with the process that forked it (the
    forkserver, which dies with the run: see mash._forkserver)."""
    server = sys.modules.get("mash._forkserver")
    parent: int = server.SERVER if server is not None else os.getppid()
    if parent != os.getpid():  # else this worker imported mash._forkserver itself: tied
        die_with_parent(parent)
