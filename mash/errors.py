"""The one error hierarchy of mash.

MashError
 ├── ConfigError          bad feeds.yaml, edition or arguments (exit status 2)
 │    └── EditionError    an edition file's problems, each with file and line
 ├── FeedError(url)
 │    ├── FetchError      the feed could not be fetched
 │    └── ParseError      the bytes are not a usable feed
 ├── ExtractError(url)    a page could not be extracted
 ├── StoreError           the store (SQLite or PostgreSQL) failed, or is newer than mash
 │    └── StoreBusy       another run holds the store or one of its locks: try again later
 ├── RenderError(template)
 ├── MailboxError(where)  a bounce mailbox (mbox, Maildir, IMAP) could not be read
 ├── BuildError           an issue could not be built (exit status 1)
 │    └── DraftError      the built issue is still a draft: not sent without --force
 └── SendError(address)

Each error holds its subject, so ``str(e)`` reads ``message: 'subject': cause``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mash.records import Problem


class MashError(Exception):
    """Base of every error mash expects; anything else is a bug."""

    exit_status = 1

    def __init__(self, message: str, subject: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.subject = subject

    def __str__(self) -> str:
        text = self.message
        if self.subject is not None:
            text = f"{text}: {self.subject!r}"
        cause = self.__cause__
        if cause is not None:
            text = f"{text}: {type(cause).__name__}: {cause}"
        return text


class ConfigError(MashError):
    """A configuration file, edition file or argument is wrong."""

    exit_status = 2

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        where = path if line is None or path is None else f"{path}:{line}"
        super().__init__(message, None)
        self.path = path
        self.line = line
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class EditionError(ConfigError):
    """An edition file has problems; ``problems`` holds each, ``str(e)`` one a line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        first = problems[0]
        message = first.message + (f" ({first.hint})" if first.hint else "")
        super().__init__(message, first.file, first.line)
        self.problems = tuple(problems)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class FeedError(MashError):
    """A feed failed; ``kind`` is a short category (timeout, http-404, not-a-feed ...)."""

    def __init__(self, url: str, message: str, kind: str = "error") -> None:
        super().__init__(message, url)
        self.url = url
        self.kind = kind


class FetchError(FeedError):
    """The feed or page could not be fetched."""


class ParseError(FeedError):
    """The fetched bytes are not a usable feed."""


class ExtractError(MashError):
    """A page could not be extracted."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message, url)
        self.url = url


class StoreError(MashError):
    """The store failed or is newer than this code; ``subject`` names the store."""


class StoreBusy(StoreError):
    """Another run holds the store (or the lock asked for); the message says what to do."""


class RenderError(MashError):
    """A template could not be rendered."""

    def __init__(self, template: str, message: str) -> None:
        super().__init__(message, template)
        self.template = template


class MailboxError(MashError):
    """A bounce mailbox could not be read; ``where`` is its path or imaps://user@host/folder."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message, where)
        self.where = where


class BuildError(MashError):
    """The issue could not be built."""


class DraftError(BuildError):
    """The built issue is a draft (placeholder theme or essay); ``path`` is its edition file."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class SendError(MashError):
    """Mail could not be sent to an address."""

    def __init__(self, address: str, message: str) -> None:
        super().__init__(message, address)
        self.address = address
