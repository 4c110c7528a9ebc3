"""Errors the CLI turns into one line on stderr and a nonzero exit code."""

from __future__ import annotations


class ScreenerError(Exception):
    """Base class: a failure the user can act on; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class InputError(ScreenerError):
    """Bad input (unknown element, unreadable file, impossible setting): nothing was written."""

    exit_code = 2


class NoDatabaseError(InputError):
    """A command that needs stored data found no database (a fresh data directory)."""
