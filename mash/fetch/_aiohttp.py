"""aiohttp imported without the two CA stores it loads at import and mash never uses.

``aiohttp.connector`` builds two default SSL contexts when it is imported, each
reading the system's CA store from disk: about 70 ms on this machine, a tenth of
an all-304 refresh of 1000 feeds (#8). mash passes its own context with every
https request (``AiohttpTransport._ssl_context``, httpx's CA choice), so aiohttp's
defaults are never used. While aiohttp is imported, OpenSSL's default CA paths
point at an empty file; the environment is restored at once. Were aiohttp's
defaults ever used, they would trust nothing: a failed certificate check, never
a silent pass.

The environment is only touched when no other thread can be loading CAs meanwhile:
this is the only thread, or the others are a process pool's (the pipeline's parse
workers are started before the fetch stage is imported, on a first run). Where
aiohttp is already imported, or other threads run, it is an ordinary import.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")


@contextmanager
def no_default_cas() -> Iterator[None]:
    """Point OpenSSL's default CA file and folder at nothing, for this block only."""
    saved = {name: os.environ.get(name) for name in CA_VARIABLES}
    os.environ.update(dict.fromkeys(CA_VARIABLES, os.devnull))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def only_pool_threads() -> bool:
    """Tell whether every other thread is a process pool's (they never load CAs).

    Known by their class and name in CPython's concurrent.futures and multiprocessing:
    should those change, this says False, and aiohttp loads its CAs as it would anyway.
    """
    others = [
        thread for thread in threading.enumerate() if thread is not threading.current_thread()
    ]
    pools = sys.modules.get("concurrent.futures.process")  # no pool without it: not imported
    manager = getattr(pools, "_ExecutorManagerThread", None)
    return all(
        (manager is not None and isinstance(thread, manager)) or thread.name == "QueueFeederThread"
        for thread in others
    )


if "aiohttp" not in sys.modules and only_pool_threads():
    with no_default_cas():
        import aiohttp  # noqa: F401
