"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, a temporary folder.

`Cluster.start()` runs `initdb` into a new temporary folder and starts `postgres` on a
free loopback port (and a unix socket in the folder), trust authentication for the
loopback only, durability off (it is thrown away). The server is a child of the test
process that the kernel kills when the tests end, however they end (PR_SET_PDEATHSIG),
and `stop()` shuts it down and deletes the folder. As root (CI, `make test`) the server
runs as the `postgres` user the Debian package creates, since PostgreSQL refuses root.

`MASH_TEST_DATABASE_URL` names an existing server instead (a database the tests may
create databases in); then nothing is started.
"""

from __future__ import annotations

import functools
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from mash.lifetime import die_with_parent

ENV_URL = "MASH_TEST_DATABASE_URL"


class Unavailable(Exception):
    """PostgreSQL cannot be had here; the message says why (the tests skip with it)."""


def server_binaries() -> Path | None:
    """Return the folder of Debian's `initdb`/`postgres`/`psql`, newest version, or None."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not versions:
        return None
    newest = max(versions, key=lambda p: int(Path(p).parts[-3]))
    return Path(newest).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _remove_abandoned(min_age: float = 600.0) -> None:
    """Delete the folders of clusters whose session was killed (their server died with it)."""
    for folder in Path(tempfile.gettempdir()).glob("mash-pg-*"):
        try:
            if time.time() - folder.stat().st_mtime < min_age:
                continue  # another session may be starting it right now
            pid_file = folder / "data" / "postmaster.pid"
            pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else 0
            if pid:
                os.kill(pid, 0)  # alive: ProcessLookupError otherwise
                continue
        except ProcessLookupError:
            pass
        except (OSError, ValueError, IndexError):
            continue
        shutil.rmtree(folder, ignore_errors=True)


class Cluster:
    """One PostgreSQL server in a temporary folder, for one test session."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.admin_url = os.environ.get(ENV_URL, "")
        self._databases = 0

    def start(self) -> None:
        if self.admin_url:
            return
        binaries = server_binaries()
        if binaries is None:
            raise Unavailable(
                "PostgreSQL's server is not installed (Debian: apt-get install postgresql; "
                "`make test` does it as root)"
            )
        user = None
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no `postgres` user") from None
        _remove_abandoned()
        self.folder = Path(tempfile.mkdtemp(prefix="mash-pg-"))
        data = self.folder / "data"
        if user is not None:
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        uid, gid = (user.pw_uid, user.pw_gid) if user else (None, None)
        groups: list[int] | None = [] if user else None
        initdb = subprocess.run(
            [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            capture_output=True, check=False, user=uid, group=gid, extra_groups=groups,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise Unavailable(f"initdb failed: {initdb.stderr.decode(errors='replace')[-500:]}")
        self.port = _free_port()
        log = open(self.folder / "server.log", "wb")  # noqa: SIM115 (the server's whole life)
        self.process = subprocess.Popen(
            [str(binaries / "postgres"), "-D", str(data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=functools.partial(die_with_parent, os.getpid()),  # noqa: PLW1509
            user=uid, group=gid, extra_groups=groups,
        )  # fmt: skip
        log.close()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise Unavailable(f"postgres exited at start: {self._log_tail()}")
            if self._psql("postgres", "SELECT 1", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise Unavailable(f"postgres did not accept connections in {timeout:.0f} s")

    def _log_tail(self) -> str:
        assert self.folder is not None
        return (self.folder / "server.log").read_text(errors="replace")[-800:]

    def _psql(
        self, database: str, sql: str, *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        binaries = server_binaries()
        psql = str(binaries / "psql") if binaries else "psql"
        url = self.admin_url.rsplit("/", 1)[0] + "/" + database
        done = subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {done.stderr.strip()}")
        return done

    def create_database(self) -> str:
        """Create an empty database; return its URL."""
        self._databases += 1
        name = f"mash_test_{os.getpid()}_{self._databases}"
        self._psql("postgres", f"CREATE DATABASE {name}")
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
