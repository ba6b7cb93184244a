"""Errors that are answers to a user's mistake: the CLI and the DAGs show their message, not a trace."""

from __future__ import annotations


class SegmailError(Exception):
    """A problem the user can fix; its message says what and where."""


class FileRejected(SegmailError):
    """The whole file cannot be imported (unreadable, not CSV, missing required columns)."""


class NotFound(SegmailError):
    pass


class AlreadyExists(SegmailError):
    pass
