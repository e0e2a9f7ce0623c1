"""The layout's promises (STYLE: imports go one way)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_public_server_never_loads_fetch_extract_or_rank() -> None:
    """`mash server` faces the internet: it must not carry the fetch side's code."""
    code = (
        "import json, sys; import mash.web.server, mash.web.webhooks, mash.web.subscribe; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    heavy = ("mash.fetch", "mash.extract", "mash.rank", "trafilatura", "feedparser")
    assert [m for m in loaded if m.startswith(heavy)] == []
    assert "mash.pipeline.mailing" in loaded  # it does load the subscriber flows
