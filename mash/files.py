"""The one atomic writer: a temporary file in the same folder, then ``os.replace``.

A reader never sees half a file, and a failed write leaves the old file as it was.
A leaf: imports nothing of ours.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

_PUBLIC = 0o666  # less the umask, as open() gives: 0o644 under the usual umask 022
_PRIVATE = 0o600  # personal data (the subscribers list): the owner only


def write_atomic(
    path: Path,
    content: bytes | str,
    *,
    private: bool = False,
    sync: bool = False,
    check: Callable[[Path], object] | None = None,
) -> Path:
    """Write content (str as UTF-8, newlines as given) to path atomically; return path.

    The file gets the mode a plain ``open()`` would give (0o666 less the umask), or
    0o600 when ``private``; ``sync`` flushes it to disk before it replaces path.
    ``check``, when given, is called with the temporary file before the replace: if it
    raises, path is left as it was. Creates the folder when missing.
    """
    data = content.encode() if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path, _PRIVATE if private else _PUBLIC)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _create_temp(path: Path, mode: int) -> tuple[int, Path]:
    """Create a new hidden file beside path; the kernel applies the umask to ``mode``.

    Not ``tempfile.mkstemp``: it always gives 0o600, and published files came out
    unreadable to the web server (see #20).
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {path}")
