"""A local working copy of a remote bucket, uploaded in order, safe against a server that goes away.

drlocal writes every file of a run to a local folder first (atomic, as SageMaker writes to
/opt/ml/model before its S3 upload) and `BucketMirror` uploads it:

* **In order, pointers last.** Each `publish(files, pointers)` call queues the files, then the
  pointer files (`.coach_checkpoint`, `deepracer_checkpoints.json`) with their content taken *at
  publish time*, so a reader of the bucket never sees a pointer to a checkpoint whose files are
  not all there, even while later checkpoints are being written locally.
* **Retries and buffering.** boto3 retries each request quickly; when the server still does not
  answer, the queue waits (backoff up to 15 s) and training goes on locally. The user is told
  once when the store goes away and once when it is back. A refusal (no such bucket, access
  denied) is one error at once while nothing has gone up yet; once the store has taken this
  run's uploads it is waited out like silence, because a server restarting answers that way
  for a moment. After `give_up_s` of continuous failure `failed` is set; the trainer then stops
  cleanly at the next iteration boundary.
* **Nothing lost.** The queue is persisted in `<working copy>/.drlocal-pending.json`; a later
  command on the same folder uploads what is left before anything else.
* **Pull.** `pull(prefix, patterns)` downloads only objects that changed (ETag manifest) and never
  overwrites a local file that is still waiting for upload.

Written by hand because the ordering/pointer rule is DeepRacer-specific; transfers are boto3's.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drlocal.errors import DrlocalError
from drlocal.store.local import atomic_write_json
from drlocal.store.objects import ObjectMissing, ObjectStore, StoreUnavailable

PENDING = ".drlocal-pending.json"
MANIFEST = ".drlocal-manifest.json"
INLINE_MAX = 256 * 1024  # pointer/JSON snapshots up to this size travel inside the queue


@dataclass
class _Op:
    op: str  # "put" | "delete"
    key: str
    data: str | None = None  # snapshot (text) for pointer files; None = read the local file at upload time

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "key": self.key, **({"data": self.data} if self.data is not None else {})}


class BucketMirror:
    """Uploads files of a local folder (`local_root` = the bucket's working copy) to `remote`."""

    def __init__(self, remote: ObjectStore, local_root: Path, *, say: Callable[[str], None] | None = None,
                 give_up_s: float = 600.0, max_backoff_s: float = 15.0) -> None:
        self.remote = remote
        self.local_root = Path(local_root)
        self.say = say or (lambda m: None)
        self.give_up_s = give_up_s
        self.max_backoff_s = max_backoff_s
        self._queue: list[_Op] = []
        self._busy = False
        self._cond = threading.Condition()
        self._closed = False
        self.failed: DrlocalError | None = None
        self.down_since: float | None = None
        self.uploaded = 0
        self._manifest = self._read_json(MANIFEST, {})
        leftover = self._read_json(PENDING, [])
        if leftover:
            self._queue = [_Op(d["op"], d["key"], d.get("data")) for d in leftover]
            self.say(f"{len(self._queue)} file(s) of an earlier run were not uploaded yet: uploading them first "
                     f"to {remote.url}")
        self._thread = threading.Thread(target=self._run, name="drlocal-upload", daemon=True)
        self._thread.start()

    # ----- bookkeeping -----

    def _read_json(self, name: str, default: Any) -> Any:
        p = self.local_root / name
        try:
            return json.loads(p.read_text()) if p.is_file() else default
        except (OSError, json.JSONDecodeError):
            return default

    def _save_pending(self) -> None:
        ops = [o.to_json() for o in self._queue]
        p = self.local_root / PENDING
        if ops:
            atomic_write_json(p, ops, indent=None)
        else:
            p.unlink(missing_ok=True)

    def key_of(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.local_root.resolve()).as_posix()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + int(self._busy)

    # ----- queueing -----

    def publish(self, files: Iterable[Path] = (), pointers: Iterable[Path] = (), deletes: Iterable[Path] = ()) -> None:
        """Queue `files`, then `pointers` (content snapshotted now), then deletions, in that order."""
        ops: list[_Op] = []
        for p in files:
            ops.append(_Op("put", self.key_of(p)))
        for p in pointers:
            p = Path(p)
            if p.is_file() and p.stat().st_size <= INLINE_MAX:
                ops.append(_Op("put", self.key_of(p), p.read_text(encoding="utf-8")))
            else:
                ops.append(_Op("put", self.key_of(p)))
        for p in deletes:
            ops.append(_Op("delete", self.key_of(p)))
        if not ops:
            return
        with self._cond:  # after a failure the queue still grows (on disk): callers stop at a safe point
            new_keys = {o.key for o in ops if o.op == "put" and o.data is None}
            # an older queued upload of the same file is superseded by this one (same bytes, read later)
            self._queue = [o for o in self._queue if not (o.op == "put" and o.data is None and o.key in new_keys)]
            self._queue += ops
            self._save_pending()
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued is uploaded (True), the mirror failed or `timeout` passed (False)."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while (self._queue or self._busy) and self.failed is None:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(timeout=0.2 if left is None else min(left, 0.2))
            return self.failed is None

    def close(self, timeout: float | None = None) -> None:
        """Flush, stop the thread; raise one clear error if files are left (they stay queued on disk)."""
        ok = self.flush(timeout)
        with self._cond:
            self._closed = True
            left = len(self._queue) + int(self._busy)
            self._cond.notify_all()
        self._thread.join(timeout=5)
        atomic_write_json(self.local_root / MANIFEST, self._manifest, indent=None)
        if not ok or left:
            reason = f" ({self.failed})" if self.failed else ""
            raise DrlocalError(
                f"{left} file(s) could not be uploaded to {self.remote.url}{reason}. They are kept in "
                f"{self.local_root} (listed in {PENDING}); nothing is lost.",
                hint="start the S3 server / MinIO again: the next drlocal command on this folder uploads them first "
                "(`drlocal summary` does it without training).",
            )

    # ----- the upload thread -----

    def _run(self) -> None:
        backoff = 0.5
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                if self._closed and self.failed is not None:
                    return
                op = self._queue[0]
                self._busy = True
            try:
                self._apply(op)
            except Exception as exc:
                refused = isinstance(exc, DrlocalError) and self.uploaded > 0
                if not isinstance(exc, StoreUnavailable) and not refused:
                    # a refusal before anything went up (no such bucket, access denied) or an unforeseen error:
                    # the waiting trainer must hear of it now
                    with self._cond:
                        self._busy = False
                        self.failed = exc if isinstance(exc, DrlocalError) else DrlocalError(
                            f"uploading {op.key} to {self.remote.url} failed: {type(exc).__name__}: {exc}")
                        self._cond.notify_all()
                    return
                # Not answering, or refusing after it took this run's uploads: a store that worked is assumed to
                # come back. A server going down or coming back can answer with a 4xx for a moment (CI once saw a
                # SeaweedFS restart end a run this way), and rotated credentials read as AccessDenied for a while;
                # training goes on locally meanwhile, and a refusal that lasts fails after give_up_s as silence does.
                if not self._wait_out(exc, refused):
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = 0.5
            with self._cond:
                self._busy = False
                if self._queue and self._queue[0] is op:
                    self._queue.pop(0)
                self.uploaded += 1
                self._save_pending()
                if self.down_since is not None:
                    gone = time.monotonic() - self.down_since
                    self.down_since = None
                    self.say(f"store back after {gone:.0f} s: uploading {len(self._queue) + 1} buffered file(s) "
                             f"to {self.remote.url}")
                self._cond.notify_all()

    def _wait_out(self, exc: BaseException, refused: bool) -> bool:
        """Record one failed attempt of an outage; False (with `failed` set) once it has lasted `give_up_s`."""
        now = time.monotonic()
        with self._cond:
            self._busy = False
            if self.down_since is None:
                self.down_since = now
                what = "store refusing uploads" if refused else "store not answering"
                self.say(f"[yellow]{what}[/]: {exc}. Training goes on; {len(self._queue)} file(s) wait in "
                         f"{self.local_root} and are retried.")
            if now - self.down_since > self.give_up_s:
                what = "has refused uploads" if refused else "has not answered"
                self.failed = DrlocalError(f"{self.remote.url} {what} for {self.give_up_s:.0f} s (last: {exc})")
                self._cond.notify_all()
                return False
            if self._closed:
                self._cond.notify_all()
                return False
        return True

    def _apply(self, op: _Op) -> None:
        if op.op == "delete":
            self.remote.delete([op.key])
            self._manifest.pop(op.key, None)
            return
        if op.data is not None:
            self.remote.put(op.key, op.data.encode("utf-8"))
        else:
            path = self.local_root / op.key
            if not path.is_file():  # pruned locally before its turn came: nothing to upload
                return
            self.remote.put(op.key, path)
        self._manifest[op.key] = ""  # our own upload: the next pull takes it as current if the size matches

    # ----- download -----

    def pull(self, prefix: str, patterns: Iterable[str] | None = None) -> list[str]:
        """Download objects under `prefix/` (optionally only keys matching fnmatch `patterns`, relative to
        the prefix) that changed since the last pull; returns the keys downloaded."""
        pats = list(patterns) if patterns is not None else None
        with self._cond:
            waiting = {o.key for o in self._queue}
        got = []
        base = prefix.strip("/") + "/" if prefix else ""
        remote_keys = set()
        for info in self.remote.list(base):
            rel = info.key[len(base):]
            if pats is not None and not any(fnmatch.fnmatch(rel, p) for p in pats):
                continue
            remote_keys.add(info.key)
            if info.key in waiting:
                continue
            local = self.local_root / info.key
            known = self._manifest.get(info.key)
            if local.is_file() and known in (info.etag, "") and local.stat().st_size == info.size:
                self._manifest[info.key] = info.etag
                continue
            try:
                self.remote.download(info.key, local)
            except ObjectMissing:
                continue
            self._manifest[info.key] = info.etag
            got.append(info.key)
        # files that came from the bucket earlier and are gone there now (pruned checkpoints)
        for key in [k for k in self._manifest if k.startswith(base) and k not in remote_keys and k not in waiting]:
            rel = key[len(base):]
            if pats is None or any(fnmatch.fnmatch(rel, p) for p in pats):
                (self.local_root / key).unlink(missing_ok=True)
                self._manifest.pop(key, None)
        atomic_write_json(self.local_root / MANIFEST, self._manifest, indent=None)
        return got
