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


class InvalidActionError(DrlocalError, ValueError):
    """An action the simulator cannot execute: NaN/inf, a wrong shape or type, an index out of range."""

    __str__ = DrlocalError.__str__


class NonFiniteStateError(DrlocalError, FloatingPointError):
    """A car's state or an observation became NaN/inf: stopping beats training on NaN."""

    __str__ = DrlocalError.__str__


def read_user_text(path: object, what: str = "the file") -> str:
    """A user's text file as str: UTF-8 (a leading byte-order mark is dropped), or one DrlocalError naming the
    file and the line of the first byte that is not UTF-8, or why it could not be read."""
    from pathlib import Path

    p = Path(str(path))
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DrlocalError(f"{p}: cannot read {what}: {exc.strerror or exc}.",
                           hint="check that the file exists and is readable.") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DrlocalError(f"{p}:{line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}).",
                           hint=f"save {what} as UTF-8 plain text.") from None
