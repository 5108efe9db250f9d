"""Reading DRfC's `run.env` / `system.env`: bash-style KEY=VALUE files.

DRfC sources these with bash, so users write quotes, comments, `export` and `$VAR` /
`${VAR}` references. python-dotenv expands only `${VAR}`, so this small DeepRacer-specific
reader handles both forms and keeps line numbers for error messages.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from drlocal.errors import DrlocalError, read_user_text

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class EnvValue:
    value: str
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def _expand(text: str, known: dict[str, EnvValue], environ: Mapping[str, str] | None = None) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in known:
            return known[name].value
        return (os.environ if environ is None else environ).get(name, "")

    return _REF.sub(sub, text)


def parse_env_file(
    path: str | Path, known: dict[str, EnvValue] | None = None, environ: Mapping[str, str] | None = None,
) -> dict[str, EnvValue]:
    """Parse one env file; `known` values (from earlier files) resolve `$VAR` references, then `environ`
    (default os.environ), as bash would.

    Single quotes are literal, double quotes and bare words expand references; a `#` outside
    quotes starts a comment. Raises DrlocalError naming the file and line of a malformed entry.
    """
    path = Path(path)
    out: dict[str, EnvValue] = dict(known or {})
    for n, raw in enumerate(read_user_text(path, "the env file").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise DrlocalError(
                f"{path}:{n}: cannot parse {raw.strip()!r}.", hint="each line must be KEY=VALUE (bash syntax)."
            )
        key, rest = m.group(1), m.group(2)
        try:
            lexer = shlex.shlex(rest, posix=True, punctuation_chars=False)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            parts: list[str] = []
            # expand references per token, except in single-quoted tokens
            for token in lexer:
                parts.append(token)
        except ValueError as exc:
            raise DrlocalError(f"{path}:{n}: {exc} in {raw.strip()!r}.", hint="close the quote.") from None
        value = " ".join(parts)
        stripped = rest.strip()
        if not stripped.startswith("'"):
            value = _expand(value, out, environ)
        out[key] = EnvValue(value, str(path), n)
    return out


def read_env_files(*paths: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, EnvValue]:
    """Read env files in order (later ones override and may reference earlier ones); missing files are skipped.
    `$VAR` references to names no file sets resolve from `environ` (default os.environ)."""
    values: dict[str, EnvValue] = {}
    for p in paths:
        if Path(p).is_file():
            values = parse_env_file(p, values, environ)
    return values
