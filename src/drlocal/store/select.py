"""Which bucket a working folder uses, decided from `system.env` exactly as DRfC's activate.sh does.

* `DR_CLOUD` unset (a `drlocal init` folder): `<folder>/data/<bucket>/` on local disk, the store itself.
* `local` / `azure`: the local MinIO at `DR_LOCAL_S3_ENDPOINT_URL`, else `DR_MINIO_URL`, else
  http://localhost:9000, with the AWS profile `DR_LOCAL_S3_PROFILE`.
* `remote`: the MinIO at `DR_REMOTE_MINIO_URL`, same profile.
* `aws`: S3 with the profile `DR_LOCAL_S3_PROFILE` and region `DR_AWS_APP_REGION`.

For the last three drlocal works in a local copy, `data/s3-cache/<host>/<bucket>/`, and uploads it.

When the local MinIO does not answer (Docker stopped), `data/minio/<bucket>/` is used as plain
files: the layout of MinIO's old FS mode. A current MinIO (RELEASE.2022-10-29 or later) keeps
objects as `<key>/xl.meta` folders instead; such a folder can only be read through MinIO, so
drlocal says so and stops rather than guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drlocal.errors import DrlocalError
from drlocal.store.objects import LocalBucket, ObjectStore, S3Bucket, S3Settings, StoreUnavailable, env_flag
from drlocal.store.sync import BucketMirror

DEFAULT_MINIO = "http://localhost:9000"
DOCKER_MINIO = "http://minio:9000"  # what activate.sh exports for the containers; not reachable from the host


@dataclass
class StoreChoice:
    """The bucket of a working folder and where drlocal keeps its working copy of it."""

    kind: str  # "disk" | "minio-files" | "minio" | "remote" | "aws"
    bucket: str
    local_root: Path  # the bucket's folder on this machine (the store itself for disk kinds)
    remote: ObjectStore | None = None
    endpoint: str | None = None
    profile: str | None = None
    notes: list[str] = field(default_factory=list)
    _mirror: BucketMirror | None = None

    @property
    def is_drfc(self) -> bool:
        """A store DRfC configured (MinIO/S3 or its data/minio folder): write DRfC's files too."""
        return self.kind != "disk"

    def describe(self) -> str:
        if self.remote is None:
            return f"{self.local_root} (local disk)"
        return f"{self.remote.url}, working copy {self.local_root}"

    def url(self, key: str = "") -> str:
        """Where an object is, for messages."""
        if self.remote is None:
            return str(self.local_root / key)
        return f"s3://{self.bucket}/{key}"

    def mirror(self, say: Callable[[str], None] | None = None) -> BucketMirror | None:
        """The uploader for remote stores (one per choice), None for local disk."""
        if self.remote is None:
            return None
        if self._mirror is None:
            self._mirror = BucketMirror(self.remote, self.local_root, say=say,
                                        give_up_s=env_flag("DRLOCAL_S3_GIVE_UP_S", 600.0))
        elif say is not None:
            self._mirror.say = say
        return self._mirror

    def objects(self) -> ObjectStore:
        """The bucket itself (remote, or the local folder)."""
        return self.remote if self.remote is not None else LocalBucket(self.local_root)

    # ----- what commands use -----

    def prefix_objects(self, prefix: str) -> list[str]:
        """Keys under `<prefix>/` in the bucket (DRfC's "does this model exist" check)."""
        return [o.key for o in self.objects().list(prefix.strip("/") + "/")]

    def pull(self, prefix: str, patterns: list[str] | None = None) -> Path:
        """Bring `<prefix>/…` (only `patterns`, relative to it, if given) into the working copy; returns its folder.

        Files of an earlier run that are still waiting for upload go first."""
        mirror = self.mirror()
        if mirror is not None:
            mirror.flush(timeout=env_flag("DRLOCAL_S3_GIVE_UP_S", 600.0))
            mirror.pull(prefix, patterns)
        return self.local_root / prefix

    def publish(self, files: Any = (), pointers: Any = (), deletes: Any = ()) -> None:
        """Queue files of the working copy for upload (no-op for local disk): files, then pointers, then deletions."""
        mirror = self.mirror()
        if mirror is not None:
            mirror.publish(files, pointers, deletes)

    def publish_tree(self, folder: Path, pointer_names: tuple[str, ...] = (".coach_checkpoint",
                                                                          "deepracer_checkpoints.json")) -> None:
        """Queue every file under `folder` (pointer files last)."""
        if self.remote is None or not folder.exists():
            return
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
        self.publish([p for p in files if p.name not in pointer_names], [p for p in files if p.name in pointer_names])

    def wipe(self, prefix: str) -> int:
        """Delete every object under `<prefix>/` (DRfC's `dr-start-training -w`), here and in the working copy."""
        import shutil

        keys = self.prefix_objects(prefix)
        if self.remote is not None:
            mirror = self.mirror()
            if mirror is not None:
                mirror.flush(timeout=env_flag("DRLOCAL_S3_GIVE_UP_S", 600.0))
            self.remote.delete(keys)
        shutil.rmtree(self.local_root / prefix, ignore_errors=True)
        return len(keys)

    def finish(self, timeout: float | None = None) -> None:
        """Wait for the uploads of this command; one clear error if they cannot be done (files stay queued)."""
        if self._mirror is not None:
            mirror, self._mirror = self._mirror, None
            mirror.close(env_flag("DRLOCAL_S3_GIVE_UP_S", 600.0) if timeout is None else timeout)


def _get(run: Any, name: str, default: Any = None) -> Any:
    v = getattr(run, name, default)
    return default if v in (None, "") else v


def minio_format(minio_dir: Path) -> str | None:
    """'xl' or 'fs' from MinIO's `.minio.sys/format.json`, None when there is none."""
    p = minio_dir / ".minio.sys" / "format.json"
    if not p.is_file():
        return None
    try:
        fmt = str(json.loads(p.read_text()).get("format", ""))
    except (OSError, json.JSONDecodeError, AttributeError):
        return "xl"
    return "fs" if fmt == "fs" else "xl"


def _host(endpoint: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", re.sub(r"^\w+://", "", endpoint)).strip("_") or "s3"


def _tcp_reachable(endpoint: str, timeout: float = 1.5) -> OSError | None:
    """None when something accepts connections at the endpoint's host:port, else the error."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(endpoint)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname or "localhost", port), timeout=timeout):
            return None
    except OSError as exc:
        return exc


def _probe(settings: S3Settings) -> tuple[S3Bucket, Exception | None]:
    """Is the server there? (a TCP connect first: no credentials are needed to learn that MinIO is stopped)"""
    if settings.endpoint_url:
        err = _tcp_reachable(settings.endpoint_url)
        if err is not None:
            return S3Bucket(settings), StoreUnavailable(f"{settings.endpoint_url}: {err}")
    quick = S3Settings(settings.bucket, settings.endpoint_url, settings.profile, settings.region,
                       connect_timeout=1.5, read_timeout=5.0, max_attempts=1)
    bucket = S3Bucket(settings)
    try:
        S3Bucket(quick).check()
    except StoreUnavailable as exc:
        return bucket, exc
    return bucket, None


def open_store(root: Path, run: Any, *, probe: bool = True) -> StoreChoice:
    """The StoreChoice of a working folder with run settings `run` (a RunConfig)."""
    bucket = _get(run, "bucket", "bucket")
    cloud = str(_get(run, "cloud", "") or "").lower()
    profile = _get(run, "local_s3_profile")
    region = _get(run, "aws_region")
    if not cloud:
        return StoreChoice("disk", bucket, root / "data" / bucket)
    if cloud not in ("local", "azure", "remote", "aws"):
        raise DrlocalError(f"DR_CLOUD={cloud!r} is not one of local, azure, remote, aws.",
                           hint="set DR_CLOUD in system.env as DRfC's init.sh does, or remove it for local disk.")
    if cloud == "aws":
        endpoint = None
    elif cloud == "remote":
        endpoint = _get(run, "remote_minio_url")
        if not endpoint:
            raise DrlocalError("DR_CLOUD=remote but DR_REMOTE_MINIO_URL is not set.",
                               hint="set DR_REMOTE_MINIO_URL=http://host:9000 in system.env.")
    else:
        minio_url = _get(run, "minio_url")  # DRfC's MinIO seen from this machine; activate.sh's container URL
        endpoint = minio_url if minio_url and minio_url != DOCKER_MINIO else (
            _get(run, "local_s3_endpoint_url") or DEFAULT_MINIO)
    settings = S3Settings(bucket, endpoint, profile, region)
    cache = root / "data" / "s3-cache" / (_host(endpoint) if endpoint else "aws") / bucket
    if not probe:
        return StoreChoice(cloud if cloud != "azure" else "minio", bucket, cache, S3Bucket(settings), endpoint,
                           profile)
    s3, down = _probe(settings)
    where = endpoint or f"AWS S3 ({region or 'default region'})"
    if down is None:
        kind = {"local": "minio", "azure": "minio"}.get(cloud, cloud)
        return StoreChoice(kind, bucket, cache, s3, endpoint, profile)
    if cloud in ("remote", "aws"):
        raise DrlocalError(f"the bucket s3://{bucket} at {where} does not answer ({down}).",
                           hint="check the network and DR_REMOTE_MINIO_URL / DR_AWS_APP_REGION in system.env.")
    # DR_CLOUD=local|azure with MinIO down: DRfC's data folder as plain files
    minio_dir = root / "data" / "minio"
    fmt = minio_format(minio_dir)
    if fmt == "xl":
        raise DrlocalError(
            f"MinIO at {endpoint} is not answering, and {minio_dir} is in MinIO's current format (each object is a "
            "folder holding xl.meta, since MinIO RELEASE.2022-10-29), which only MinIO itself can read.",
            hint="start MinIO (in your DRfC folder `source bin/activate.sh` starts it; or `docker start` its "
            "container), then run drlocal again: it reads and writes the bucket through MinIO's S3 API.",
        )
    if minio_dir.is_dir():
        note = (f"MinIO at {endpoint} is not answering: using {minio_dir / bucket} as plain files (the layout of "
                "MinIO's old FS mode). A MinIO older than RELEASE.2022-10-29 started later serves these files; a "
                "newer one does not list files written here: when it runs, copy them in with `drlocal upload` or "
                "`aws s3 sync`.")
        return StoreChoice("minio-files", bucket, minio_dir / bucket, endpoint=endpoint, profile=profile,
                           notes=[note])
    note = (f"MinIO at {endpoint} is not answering and there is no data/minio folder: using drlocal's local folder "
            f"{root / 'data' / bucket}.")
    return StoreChoice("disk", bucket, root / "data" / bucket, endpoint=endpoint, notes=[note])


def store_of(job: Any) -> StoreChoice:
    """The job's bucket (opened on first use and kept on the job)."""
    choice = getattr(job, "store", None)
    if choice is None:
        choice = open_store(job.root, job.run)
        job.store = choice
    return choice
