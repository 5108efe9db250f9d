"""How the S3 store classifies a server's error answers, through boto3's own upload path.

`upload_file` does not raise the server's answer: it wraps it in boto3's S3UploadFailedError. A 500 from a MinIO
or SeaweedFS that is shutting down (or whose disk is full) must still count as "not answering, retry later", and
the upload thread must survive it; a 403 must stay one clear access error. A real SeaweedFS answers 500 only at
moments a test cannot pick, so the server here is a small HTTP endpoint that answers as told (S3's XML error
body), in front of boto3 and botocore as they are.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from drlocal.errors import DrlocalError
from drlocal.store.objects import S3Bucket, S3Settings, StoreUnavailable
from drlocal.store.sync import PENDING, BucketMirror

ERRORS = {500: "InternalError", 403: "AccessDenied", 404: "NoSuchBucket"}


class Answers:
    """What the endpoint answers: `ok_first` 200s, then `fail` requests with `status`, then 200s; records the
    requests."""

    def __init__(self, status: int = 500, fail: int = 10**9, ok_first: int = 0) -> None:
        self.status, self.fail, self.ok_first = status, fail, ok_first
        self.requests: list[tuple[str, str]] = []
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()


def serve(answers: Answers) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with answers.lock:
                answers.requests.append(("PUT", self.path))
                failing = answers.ok_first < len(answers.requests) <= answers.ok_first + answers.fail
                if not failing:
                    answers.objects[self.path] = body
            if failing:
                code = ERRORS[answers.status]
                xml = f"<Error><Code>{code}</Code><Message>as told</Message></Error>".encode()
                self.send_response(answers.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(xml)))
                self.end_headers()
                self.wfile.write(xml)
                return
            self.send_response(200)
            self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    servers: list[ThreadingHTTPServer] = []

    def make(answers: Answers) -> S3Bucket:
        server = serve(answers)
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        return S3Bucket(S3Settings(bucket="bucket", endpoint_url=url, region="us-east-1", max_attempts=1))

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def _checkpoint_files(root: Path, count: int) -> list[Path]:
    (root / "model").mkdir(parents=True)
    files = [root / "model" / f"{k}_Step-{k}.ckpt.index" for k in range(count)]
    for k, f in enumerate(files):
        f.write_bytes(bytes([k]) * 1000)
    return files


def test_a_500_through_upload_file_is_store_unavailable(endpoint, tmp_path: Path) -> None:
    answers = Answers(500)
    bucket = endpoint(answers)
    f = tmp_path / "1_Step-10.ckpt.index"
    f.write_bytes(b"x" * 2000)
    with pytest.raises(StoreUnavailable, match="InternalError"):
        bucket.put("model/1_Step-10.ckpt.index", f)  # upload_file: the answer comes wrapped
    with pytest.raises(StoreUnavailable, match="InternalError"):
        bucket.put("model/deepracer_checkpoints.json", b"{}")  # upload_fileobj: the answer itself
    assert {m for m, _ in answers.requests} == {"PUT"}


def test_a_403_through_upload_file_is_one_clear_access_error(endpoint, tmp_path: Path) -> None:
    bucket = endpoint(Answers(403))
    f = tmp_path / "model.pb"
    f.write_bytes(b"x" * 100)
    with pytest.raises(DrlocalError, match="access denied") as err:
        bucket.put("model/model.pb", f)
    assert "DR_LOCAL_S3_PROFILE" in err.value.hint


def test_the_upload_thread_waits_out_500s_and_uploads(endpoint, tmp_path: Path) -> None:
    answers = Answers(500, fail=3)
    bucket = endpoint(answers)
    root = tmp_path / "bucket"
    files = _checkpoint_files(root, 2)
    messages: list[str] = []
    mirror = BucketMirror(bucket, root, say=messages.append, give_up_s=60, max_backoff_s=0.5)
    t0 = time.monotonic()
    mirror.publish(files)
    assert mirror.flush(timeout=30), mirror.failed
    mirror.close(timeout=5)
    assert time.monotonic() - t0 < 30
    assert mirror.failed is None and mirror.uploaded == 2
    assert any("store not answering" in m for m in messages) and any("store back" in m for m in messages)
    assert answers.objects == {f"/bucket/model/{f.name}": f.read_bytes() for f in files}
    assert not (root / PENDING).exists()


def test_a_refusal_before_any_upload_stops_the_mirror_at_once(endpoint, tmp_path: Path) -> None:
    # a wrong key or a missing bucket at the start of a run is one clear error, not ten minutes of retries
    bucket = endpoint(Answers(403))
    root = tmp_path / "bucket"
    files = _checkpoint_files(root, 2)
    mirror = BucketMirror(bucket, root, give_up_s=60, max_backoff_s=0.5)
    t0 = time.monotonic()
    mirror.publish(files)
    assert not mirror.flush(timeout=30)
    assert time.monotonic() - t0 < 10
    assert isinstance(mirror.failed, DrlocalError) and "access denied" in str(mirror.failed)
    with pytest.raises(DrlocalError, match="2 file\\(s\\) could not be uploaded"):
        mirror.close(timeout=1)
    assert (root / PENDING).is_file()  # both files stay queued for the next command


@pytest.mark.parametrize("status", [403, 404])
def test_a_refusal_after_uploads_is_waited_out_like_an_outage(endpoint, tmp_path: Path, status: int) -> None:
    # the store took this run's first file, then refuses (a server coming back answers 4xx for a moment, keys being
    # rotated read as AccessDenied): training goes on and the files go up once it takes them again
    answers = Answers(status, fail=3, ok_first=1)
    bucket = endpoint(answers)
    root = tmp_path / "bucket"
    files = _checkpoint_files(root, 3)
    messages: list[str] = []
    mirror = BucketMirror(bucket, root, say=messages.append, give_up_s=60, max_backoff_s=0.5)
    mirror.publish(files)
    assert mirror.flush(timeout=30), mirror.failed
    mirror.close(timeout=5)
    assert mirror.failed is None and mirror.uploaded == 3
    said = {403: "access denied", 404: "the bucket does not exist"}[status]
    assert any("store refusing uploads" in m and said in m for m in messages)
    assert any("store back" in m for m in messages)
    assert len(answers.requests) == 3 + 3  # each file once, plus the three refused attempts
    assert answers.objects == {f"/bucket/model/{f.name}": f.read_bytes() for f in files}
    assert not (root / PENDING).exists()


def test_a_refusal_that_lasts_fails_after_give_up_with_the_answer(endpoint, tmp_path: Path) -> None:
    bucket = endpoint(Answers(404, ok_first=1))
    root = tmp_path / "bucket"
    files = _checkpoint_files(root, 2)
    mirror = BucketMirror(bucket, root, give_up_s=1.5, max_backoff_s=0.3)
    mirror.publish(files)
    t0 = time.monotonic()
    assert not mirror.flush(timeout=30)
    assert 1.5 <= time.monotonic() - t0 < 15
    msg = str(mirror.failed)
    assert "has refused uploads for 2 s" in msg and "the bucket does not exist" in msg
    with pytest.raises(DrlocalError, match="1 file\\(s\\) could not be uploaded"):
        mirror.close(timeout=1)
