"""Where runs are kept: the DeepRacer S3 layout (contract §9) on local disk, written atomically.

The names below load `drlocal.store.local` (and with it torch) on first use, so that light readers such as
`drlocal.store.layout` (imported by the CLI's argument checks) stay light."""

from typing import Any

__all__ = ["ModelStore", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from drlocal.store import local

        return getattr(local, name)
    raise AttributeError(f"module 'drlocal.store' has no attribute {name!r}")
