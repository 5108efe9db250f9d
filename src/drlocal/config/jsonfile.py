"""Reading a user's JSON config file with errors that name the file, line and fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drlocal.errors import DrlocalError, read_user_text


def read_json_object(source: str | Path | dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    """(where, data) for a path or an already-parsed dict; `kind` names the file in messages."""
    if isinstance(source, dict):
        return kind, source
    path = Path(source)
    if not path.is_file():
        raise DrlocalError(f"{path}: {kind}.json not found.", hint="check the path or run `drlocal init`.")
    try:
        data = json.loads(read_user_text(path, f"{kind}.json"))
    except json.JSONDecodeError as exc:
        raise DrlocalError(
            f"{path}, line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg}).",
            hint="fix the JSON syntax (trailing commas and comments are not allowed).",
        ) from None
    if not isinstance(data, dict):
        raise DrlocalError(f"{path}: expected a JSON object, got {type(data).__name__}.")
    return str(path), data


def format_validation_errors(where: str, errors: list[dict[str, Any]], skip_loc: tuple[str, ...] = ()) -> str:
    """One line per pydantic error: `key = value: rule`, under a `where: N invalid value(s):` header."""
    lines = [f"{where}: {len(errors)} invalid value(s):"]
    for e in errors:
        loc = ".".join(str(p) for p in e["loc"] if p not in skip_loc)
        value = e.get("input")
        shown = json.dumps(value) if isinstance(value, str | int | float | bool | type(None)) else repr(value)[:60]
        lines.append(f"  - {loc or '(file)'} = {shown}: {e['msg']}")
    return "\n".join(lines)
