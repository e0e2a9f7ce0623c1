"""`mash init [DIR]`: start a new newsletter in a folder.

Writes a commented feeds.yaml with no feeds yet (``mash feeds add URL`` fills it), the
editions/ folder and a .gitignore for what mash generates. Never overwrites a feeds.yaml.
"""

from __future__ import annotations

from pathlib import Path

from mash.config import load_config
from mash.errors import MashError
from mash.files import write_atomic

FEEDS_YAML = """\
# feeds.yaml: the newsletter's settings and the blogs it reads, written by `mash init`.
# Every key is explained in mash's README ("Config reference"). Paths are relative to
# this file's folder: data/ keeps the posts, output/ the built issues and the site.

newsletter:
  name: Monthly Mash
  editor: Your Name                 # who writes the essay and signs the issue
  editor_email: you@example.org     # output/YYYY-MM/issue.eml is addressed to you
  sender: newsletter@example.org    # the From address of every issue
  sender_name: Monthly Mash
  site_url: https://example.org/newsletter/   # where you will publish output/site/
  topic: customer service and the customer experience   # what the picks should be about
  # about: A line or two about you and the newsletter, shown in every issue.
  # postal_address: The address the footer shows (the law wants one in many places).
  # picks_max: 12                   # posts in the month's roundup
  # sections:                       # reword any part's heading: see the README
  #   title: {heading: "Monthly Mash and {theme}"}

# The blogs: `mash feeds add URL` adds one (its feed, or its home page), and
# `mash feeds import FILE.opml` a feed reader's export. `--house` marks your own blog.
feeds: []

# Sending (`mash send`) needs an SMTP server; the password only ever comes from the
# environment variable named here.
# smtp:
#   host: smtp.example.org
#   port: 587
#   user: newsletter@example.org
#   password_env: MASH_SMTP_PASSWORD
#   unsubscribe_url: https://example.org/newsletter/unsubscribe
"""

GITIGNORE = ("output/", "data/")

NEXT_STEPS = """\
mash feeds add https://blog.example.org/   # each blog you read: its feed or home page
mash fetch                                 # every day: store the blogs' new posts
mash draft && mash build                   # each month: pick and write, then build"""


def init_newsletter(folder: Path) -> tuple[Path, ...]:
    """Write a new newsletter into folder; return the files and folders written.

    Raises MashError when folder already has a feeds.yaml. An existing .gitignore
    gains the lines it lacks; editions/ is created when missing.
    """
    config = folder / "feeds.yaml"
    if config.exists():
        raise MashError(
            "a newsletter is already here: not overwriting its feeds.yaml "
            "(edit it, or run `mash init` in a new folder)",
            str(config),
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(config, FEEDS_YAML, check=load_config)
    editions = folder / "editions"
    editions.mkdir(exist_ok=True)
    return config, editions, _ignore_generated(folder / ".gitignore")


def _ignore_generated(path: Path) -> Path:
    """Add output/ and data/ to the folder's .gitignore, keeping what is there."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    have = {line.strip().strip("/") for line in text.splitlines()}
    missing = [entry for entry in GITIGNORE if entry.strip("/") not in have]
    if missing:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "".join(f"{entry}\n" for entry in missing)
        write_atomic(path, text)
    return path
