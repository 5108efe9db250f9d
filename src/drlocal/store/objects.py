"""One interface over a bucket: a folder on local disk, or an S3 bucket (AWS S3, MinIO, any S3 server).

DeepRacer keeps every model as objects under `<bucket>/<prefix>/…` (contract §9). drlocal trains
into a local folder with that layout (fast, atomic writes, works offline) and, when the bucket is
remote, mirrors it with `store.sync.BucketMirror`. Both sides speak this small protocol:

    get(key) -> bytes, put(key, bytes | Path), list(prefix) -> [ObjectInfo], delete(keys), exists(key)

Keys are bucket-relative, '/'-separated, without a leading '/'. `S3Bucket` uses boto3 (the
maintained AWS SDK) with short per-attempt timeouts and its standard retry mode; large files go
up as multipart uploads. Errors that mean "the server is not answering" (connection refused,
timeouts, HTTP 5xx, throttling) are raised as `StoreUnavailable`, so callers can buffer and retry;
anything else (no such bucket, access denied) is a `DrlocalError` that names the bucket and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from drlocal.errors import DrlocalError
from drlocal.store.local import atomic_write_bytes

#: Files larger than this go up in parts of this size (S3's minimum part is 5 MiB).
MULTIPART_CHUNK = 8 * 1024 * 1024


class StoreUnavailable(Exception):
    """The store did not answer (connection refused, timeout, 5xx): worth retrying later."""


class ObjectMissing(KeyError):
    """No object under that key."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # S3 ETag, or "<mtime_ns>-<size>" for local files


class ObjectStore(Protocol):
    """What drlocal needs of a bucket."""

    url: str  # for messages: "s3://bucket (http://localhost:9000)" or a folder path

    def get(self, key: str) -> bytes: ...

    def download(self, key: str, dest: Path) -> None: ...

    def put(self, key: str, data: bytes | Path) -> None: ...

    def list(self, prefix: str) -> list[ObjectInfo]: ...

    def delete(self, keys: Iterable[str]) -> None: ...

    def exists(self, key: str) -> bool: ...


def join(*parts: str) -> str:
    """Join key parts with '/', dropping empty parts and stray slashes."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class LocalBucket:
    """A folder that stands for a bucket: `<root>/<key>`. Writes are atomic (temp file + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root.resolve() not in (p, *p.parents):
            raise DrlocalError(f"object key {key!r} points outside {self.root}.")
        return p

    def get(self, key: str) -> bytes:
        p = self._path(key)
        if not p.is_file():
            raise ObjectMissing(key)
        return p.read_bytes()

    def download(self, key: str, dest: Path) -> None:
        atomic_write_bytes(dest, self.get(key))

    def put(self, key: str, data: bytes | Path) -> None:
        atomic_write_bytes(self._path(key), data.read_bytes() if isinstance(data, Path) else data)

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            files = [base]
        elif base.is_dir():
            files = [p for p in base.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]
        else:
            return []
        out = []
        root = self.root.resolve()  # `base` is resolved (absolute) whatever the folder was given as
        for p in sorted(files):
            st = p.stat()
            out.append(ObjectInfo(p.relative_to(root).as_posix(), st.st_size, f"{st.st_mtime_ns}-{st.st_size}"))
        return out

    def delete(self, keys: Iterable[str]) -> None:
        for k in keys:
            self._path(k).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


@dataclass(frozen=True)
class S3Settings:
    """Where a bucket lives and how to sign requests (as DRfC resolves them from system.env)."""

    bucket: str
    endpoint_url: str | None = None  # None = AWS S3
    profile: str | None = None  # a profile of ~/.aws/credentials or ~/.aws/config
    region: str | None = None
    connect_timeout: float = 3.0
    read_timeout: float = 30.0
    max_attempts: int = 3  # boto3's own quick retries per request; sync.py retries for longer


def _profile_exists(name: str) -> bool:
    import botocore.session

    return name in botocore.session.Session().available_profiles


def s3_client(settings: S3Settings) -> Any:
    """A boto3 S3 client: the profile if it exists (else the default credential chain), path-style
    addressing for non-AWS endpoints (MinIO/SeaweedFS buckets are not DNS names)."""
    import boto3
    from botocore.config import Config

    profile = settings.profile if settings.profile and _profile_exists(settings.profile) else None
    session = boto3.session.Session(profile_name=profile, region_name=settings.region or None)
    cfg = Config(
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        s3={"addressing_style": "path"} if settings.endpoint_url else {},
        signature_version="s3v4",
    )
    region = settings.region or session.region_name or "us-east-1"
    return session.client("s3", endpoint_url=settings.endpoint_url or None, region_name=region, config=cfg)


def _is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        return status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout", "ServiceUnavailable")
    import urllib3.exceptions

    return isinstance(exc, ConnectionError | TimeoutError | urllib3.exceptions.HTTPError)


def _answer_of(wrapped: BaseException) -> BaseException:
    """The botocore error behind boto3's S3UploadFailedError (raised inside its `except ClientError`), else itself."""
    from botocore.exceptions import BotoCoreError, ClientError

    seen: BaseException | None = wrapped
    while seen is not None:
        if isinstance(seen, ClientError | BotoCoreError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return wrapped


def _is_missing(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code", "")
    return code in ("404", "NoSuchKey", "NotFound")


class S3Bucket:
    """A bucket behind the S3 API."""

    def __init__(self, settings: S3Settings, client: Any | None = None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        where = settings.endpoint_url or "AWS S3"
        self.url = f"s3://{settings.bucket} ({where})"
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client(self.settings)
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            try:
                return fn(*args, **kw)
            except S3UploadFailedError as wrapped:
                # upload_file wraps the server's answer (a 500 while MinIO shuts down, a 403, ...) in its own
                # exception type; classify the answer itself, or a passing 5xx would look fatal
                raise _answer_of(wrapped) from None
        except NoCredentialsError:
            raise DrlocalError(
                f"{self.url}: no credentials for {what}.",
                hint=f"create the profile {self.settings.profile or 'default'} (`aws configure --profile "
                f"{self.settings.profile or 'default'}`) or set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.",
            ) from None
        except (ClientError, BotoCoreError, OSError, S3UploadFailedError) as exc:
            if _is_missing(exc):
                raise ObjectMissing(what) from None
            if _is_transient(exc):
                raise StoreUnavailable(f"{self.url}: {what}: {exc}") from exc
            raise self._fatal(what, exc) from None

    def _fatal(self, what: str, exc: BaseException) -> DrlocalError:
        from botocore.exceptions import ClientError

        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        if code == "NoSuchBucket":
            return DrlocalError(f"{self.url}: the bucket does not exist ({what}).",
                                hint=f"create it (`aws s3 mb s3://{self.bucket}` with your endpoint/profile) or fix "
                                "DR_LOCAL_S3_BUCKET in system.env.")
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            return DrlocalError(f"{self.url}: access denied ({what}: {code}).",
                                hint=f"check the keys of profile {self.settings.profile or 'default'} "
                                "(DR_LOCAL_S3_PROFILE / DR_UPLOAD_S3_PROFILE in system.env).")
        return DrlocalError(f"{self.url}: {what} failed: {exc}")

    def get(self, key: str) -> bytes:
        resp = self._call(f"get {key}", self.client.get_object, Bucket=self.bucket, Key=key)
        try:
            return resp["Body"].read()
        except OSError as exc:  # connection dropped mid-body
            raise StoreUnavailable(f"{self.url}: get {key}: {exc}") from exc

    def download(self, key: str, dest: Path) -> None:
        atomic_write_bytes(dest, self.get(key))

    def put(self, key: str, data: bytes | Path) -> None:
        from boto3.s3.transfer import TransferConfig

        cfg = TransferConfig(multipart_threshold=MULTIPART_CHUNK, multipart_chunksize=MULTIPART_CHUNK,
                             max_concurrency=2, use_threads=True)
        if isinstance(data, Path):
            self._call(f"put {key}", self.client.upload_file, str(data), self.bucket, key, Config=cfg)
        else:
            import io

            self._call(f"put {key}", self.client.upload_fileobj, io.BytesIO(data), self.bucket, key, Config=cfg)

    def list(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        token = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kw["ContinuationToken"] = token
            resp = self._call(f"list {prefix or '/'}", self.client.list_objects_v2, **kw)
            for o in resp.get("Contents", []):
                out.append(ObjectInfo(o["Key"], int(o["Size"]), str(o.get("ETag", "")).strip('"')))
            if not resp.get("IsTruncated"):
                return out
            token = resp.get("NextContinuationToken")

    def delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i: i + 1000]]
            self._call("delete", self.client.delete_objects, Bucket=self.bucket, Delete={"Objects": chunk,
                                                                                       "Quiet": True})

    def exists(self, key: str) -> bool:
        try:
            self._call(f"head {key}", self.client.head_object, Bucket=self.bucket, Key=key)
            return True
        except ObjectMissing:
            return False

    def check(self) -> None:
        """Raise StoreUnavailable / DrlocalError unless the bucket answers (a HEAD on the bucket)."""
        self._call("head-bucket", self.client.head_bucket, Bucket=self.bucket)


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not url.startswith("s3://") or len(url) <= 5:
        raise DrlocalError(f"{url!r} is not an S3 URL.", hint="write it as s3://bucket/prefix.")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


def env_flag(name: str, default: float) -> float:
    """A numeric tuning knob from the environment (e.g. DRLOCAL_S3_GIVE_UP_S), with a default."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default
