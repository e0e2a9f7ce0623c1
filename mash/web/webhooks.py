"""Bounce and complaint webhooks of the sending services, on `mash server` (#16)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mash.records import Config


def handlers(config: Config, environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the webhook handlers whose secrets are set, by service name."""
    return {}
