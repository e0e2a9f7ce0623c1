"""aiohttp imported without the two CA stores it loads at import and mash never uses.

``aiohttp.connector`` builds two default SSL contexts when it is imported, each
reading the system's CA store from disk: about 70 ms on this machine, a tenth of
an all-304 refresh of 1000 feeds (#8). mash passes its own context with every
https request (``AiohttpTransport._ssl_context``, httpx's CA choice), so aiohttp's
defaults are never used. While aiohttp is imported, OpenSSL's default CA paths
point at an empty file; the environment is restored at once. Were aiohttp's
defaults ever used, they would trust nothing: a failed certificate check, never
a silent pass.

The environment is only touched while this is the process's only thread, so no
other thread can load CAs meanwhile. Where aiohttp is already imported, or
threads run, it is an ordinary import.
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


if "aiohttp" not in sys.modules and threading.active_count() == 1:
    with no_default_cas():
        import aiohttp  # noqa: F401
