"""User-facing errors: one message that names the file and the fix, never a traceback wall."""

from __future__ import annotations


class DrlocalError(Exception):
    """An error caused by user input (a file, a name, a value) rather than by a bug in drlocal.

    The CLI prints ``str(error)`` and ``hint`` and exits with status 1, without a traceback.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = Exception.__str__(self)  # not KeyError's quoting, for subclasses that mix it in
        return f"{base}\n  fix: {self.hint}" if self.hint else base


class UnknownTrackError(DrlocalError, KeyError):
    """A track name that is neither bundled nor a path to an existing `.npy` route file."""

    __str__ = DrlocalError.__str__  # KeyError would quote the message
