"""The static web site of the issues: home, issue pages, archive, about, Atom feed, sitemap.

The site is plain files with relative links, so any static host serves it, from a
subfolder too (see #7). Modules: ``pages`` renders one page, ``build`` writes the whole
site, ``feed`` the Atom feed and sitemap, ``issue_json`` reads and writes issue.json,
``serve`` previews a built site on 127.0.0.1.
"""

from __future__ import annotations

from mash.site.build import SiteReport, build_site
from mash.site.common import issue_url, month_label
from mash.site.issue_json import issue_from_json, issue_to_json
from mash.site.pages import render_issue_page
from mash.site.serve import preview_server, serve_site

__all__ = [
    "SiteReport",
    "build_site",
    "issue_from_json",
    "issue_to_json",
    "issue_url",
    "month_label",
    "preview_server",
    "render_issue_page",
    "serve_site",
]
