"""What a run holds ends with it: the lock and the child processes (mash.lifetime, #21).

Real processes: a run is a Python subprocess, killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mash import lifetime
from mash.errors import MashError
from mash.lifetime import LockBusy, hold_lock
from mash.store import open_store
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")

# A run that takes the fetch lock, forks a child that does not exec (as the fetch helper
# is forked), and waits; the child calls die_with_parent only when asked.
RUN_THAT_FORKS = """
import os, sys, time
from pathlib import Path
from mash.lifetime import die_with_parent
from mash.store import open_store
with open_store(Path(sys.argv[1])) as store, store.lock("fetch"):
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        if sys.argv[2] == "tied":
            die_with_parent(parent)
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextlib.contextmanager
def _run_that_forks(db: Path, how: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start RUN_THAT_FORKS; yield it and its child's pid; kill both at the end."""
    run = subprocess.Popen(
        [sys.executable, "-c", RUN_THAT_FORKS, str(db), how],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert run.stdout is not None
    child = int(run.stdout.readline())
    try:
        yield run, child
    finally:
        for pid in (run.pid, child):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        run.communicate()


def test_a_forked_child_does_not_keep_the_run_lock(tmp_path: Path) -> None:
    """The run is killed, its child lives on: the next run takes the lock at once."""
    db = tmp_path / "mash.db"
    with _run_that_forks(db, "untied") as (run, child):
        refused = f"another `mash fetch` is running \\(pid {run.pid}\\)"
        with open_store(db) as store, pytest.raises(MashError, match=refused), store.lock("fetch"):
            pass
        run.kill()
        run.wait()
        assert _alive(child)
        started = time.monotonic()
        with open_store(db) as store, store.lock("fetch"):
            assert time.monotonic() - started < 1  # no wait: nobody holds it
        assert _alive(child)


def test_a_child_tied_to_its_run_dies_with_it(tmp_path: Path) -> None:
    with _run_that_forks(tmp_path / "mash.db", "tied") as (run, child):
        time.sleep(0.2)  # the child has called prctl
        assert _alive(child)
        run.kill()
        run.wait()
        killed = time.monotonic()
        while _alive(child) and time.monotonic() - killed < 5:
            time.sleep(0.02)
        assert not _alive(child)
        assert time.monotonic() - killed < 2


def test_a_child_whose_parent_is_already_gone_ends_at_once() -> None:
    """The race: the parent died before the child asked to die with it."""
    code = "from mash.lifetime import die_with_parent; die_with_parent(1); print('alive')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == -signal.SIGKILL
    assert "alive" not in done.stdout


# A process that holds a lock file open and locked, which records a pid now dead: the
# state a mash older than #21 left, when a killed run's child kept the lock.
LEFTOVER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, sys.argv[2].encode())
print("locked", flush=True)
time.sleep(60)
"""


def _leftover(path: Path) -> tuple[int, subprocess.Popen[str]]:
    """Start LEFTOVER on ``path``; return the dead pid it records, and the process."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    command = [sys.executable, "-c", LEFTOVER, str(path), str(dead.pid)]
    leftover = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert leftover.stdout is not None and leftover.stdout.readline() == "locked\n"
    return dead.pid, leftover


def test_the_refusal_names_a_live_holder_never_a_dead_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mash.db.fetch.lock"
    dead, leftover = _leftover(path)
    try:
        monkeypatch.setattr(lifetime, "LEFTOVER_GRACE", 0.3)
        with pytest.raises(LockBusy) as refused, hold_lock(path):
            pass
        assert refused.value.holder.startswith(f"pid {leftover.pid} (")
        assert str(dead) not in refused.value.holder
    finally:
        leftover.kill()
        leftover.communicate()
    with hold_lock(path):  # its holder gone, the lock is free
        assert path.read_text() == str(os.getpid())
    assert path.read_text() == ""


def test_a_leftover_that_ends_within_the_grace_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "mash.db.fetch.lock"
    dead, leftover = _leftover(path)
    killer = threading.Timer(0.5, leftover.kill)  # as the kernel kills a tied child
    killer.start()
    try:
        with hold_lock(path):
            assert not _alive(leftover.pid)
    finally:
        killer.join()
        leftover.communicate()
