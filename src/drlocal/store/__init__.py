"""Where runs are kept: the DeepRacer S3 layout (contract §9) on local disk, written atomically."""

from drlocal.store.local import ModelStore, atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["ModelStore", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]
