"""The issues and page_views tables: each built issue's volume and picks, and the page
views imported from an analytics export."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from mash.errors import StoreError
from mash.store._base import Engine
from mash.urls import redact_url, url_key


class IssuesMixin:
    engine: Engine

    def volume_for(self, month: str, start: int) -> int:
        """Return the month's volume: kept once given; else one more than the latest before."""
        row = self.engine.one("SELECT volume FROM issues WHERE month = ?", (month,))
        if row:
            return int(row["volume"])
        before = self.engine.one(
            "SELECT max(volume) AS volume FROM issues WHERE month < ?", (month,)
        )
        latest = before["volume"] if before else None
        later = self.engine.one(
            "SELECT month, volume FROM issues WHERE month > ? ORDER BY month LIMIT 1", (month,)
        )
        volume = int(latest) + 1 if latest is not None else start
        if later is not None and volume >= later["volume"]:
            # say what to do: an earlier month built for the first time after a later one
            hint = (
                f"; set newsletter.volume_start to {later['volume'] - 1} to number it "
                f"{later['volume'] - 1}"
                if latest is None and later["volume"] > 1
                else ""
            )
            raise StoreError(
                f"cannot number {month}: volume {volume} is already {later['month']}'s; "
                f"build the months in order{hint}"
            )
        return volume

    def save_issue(
        self, month: str, volume: int, title: str, picks: Sequence[str], now: datetime
    ) -> None:
        """Record a built issue: its volume and the posts it featured."""
        with self.engine.transaction():
            self.engine.execute(
                """INSERT INTO issues(month, volume, title, built_at, picks) VALUES (?,?,?,?,?)
                   ON CONFLICT(month) DO UPDATE SET title = excluded.title,
                   built_at = excluded.built_at, picks = excluded.picks""",
                (month, volume, title, now, json.dumps(list(picks))),
            )

    def featured_before(self, month: str, issues: int = 1000) -> list[tuple[str, list[str]]]:
        """Return (month, featured URLs) of the issues before month, newest first."""
        rows = self.engine.query(
            "SELECT month, picks FROM issues WHERE month < ? ORDER BY month DESC LIMIT ?",
            (month, issues),
        )
        return [(r["month"], json.loads(r["picks"])) for r in rows]

    def built_months(self) -> list[str]:
        return [r["month"] for r in self.engine.query("SELECT month FROM issues ORDER BY month")]

    # --- page views -------------------------------------------------------------------

    def save_page_views(
        self, rows: Sequence[tuple[str, int]], month: str, source: str, house: Sequence[str]
    ) -> tuple[int, list[str]]:
        """Match (path or URL, views) rows to stored posts and keep them for month.

        A path matches a post whose URL has that path; when several blogs have it, the
        house blog's post wins. Returns the number matched and the pages not matched.
        """
        house_keys = {redact_url(url) for url in house}
        by_path: dict[str, list[tuple[bool, str]]] = {}
        for r in self.engine.query("SELECT url_key, feed_url FROM posts"):
            key = r["url_key"]
            path = "/" + key.split("/", 1)[1] if "/" in key else "/"
            by_path.setdefault(path.rstrip("/") or "/", []).append(
                (r["feed_url"] in house_keys, key)
            )
        matched, missing, values = 0, [], []
        for page, views in rows:
            if page.startswith(("http://", "https://")):
                keys = [url_key(page)]
                exists = self.engine.one("SELECT 1 AS found FROM posts WHERE url_key = ?", keys)
                keys = keys if exists else []
            else:
                path = url_key("http://x" + page.split("?")[0]).split("/", 1)
                found = sorted(by_path.get(("/" + path[1]).rstrip("/") or "/", []), reverse=True)
                keys = [found[0][1]] if found else []
            if not keys:
                missing.append(page)
                continue
            matched += 1
            values.append((keys[0], month, views, source))
        with self.engine.transaction():
            self.engine.executemany(
                """INSERT INTO page_views(url_key, month, views, source) VALUES (?,?,?,?)
                   ON CONFLICT(url_key, month) DO UPDATE SET views = excluded.views,
                   source = excluded.source""",
                values,
            )
        return matched, missing
