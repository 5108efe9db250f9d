"""The test S3 server (tests/s3server.py) is a real, signature-checking S3 with what drlocal needs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

MB = 1024 * 1024


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_put_get_list_overwrite_delete(s3_server):
    s3 = s3_server.client()
    bucket = s3_server.make_bucket()
    keys = ["model/model_metadata.json", "model/0_Step-1.ckpt.pt", "model/sub/deep.txt", "logs/run.log"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    assert s3.get_object(Bucket=bucket, Key="logs/run.log")["Body"].read() == b"logs/run.log"

    listed = s3.list_objects_v2(Bucket=bucket, Prefix="model/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(k for k in keys if k.startswith("model/"))
    top = s3.list_objects_v2(Bucket=bucket, Prefix="model/", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["model/sub/"]
    assert {o["Key"] for o in top["Contents"]} == {"model/model_metadata.json", "model/0_Step-1.ckpt.pt"}
    page = s3.list_objects_v2(Bucket=bucket, Prefix="model/", MaxKeys=2)
    assert page["IsTruncated"] and len(page["Contents"]) == 2
    rest = s3.list_objects_v2(Bucket=bucket, Prefix="model/", ContinuationToken=page["NextContinuationToken"])
    assert len(rest["Contents"]) == 1

    s3.put_object(Bucket=bucket, Key="logs/run.log", Body=b"second version")
    assert s3.get_object(Bucket=bucket, Key="logs/run.log")["Body"].read() == b"second version"
    assert s3.head_object(Bucket=bucket, Key="logs/run.log")["ContentLength"] == len(b"second version")

    s3.delete_object(Bucket=bucket, Key="logs/run.log")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="logs/run.log")
    assert _error(exc) == ("NoSuchKey", 404)
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:2]]})
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["model/sub/deep.txt"]


def test_missing_bucket_is_refused(s3_server):
    with pytest.raises(ClientError) as exc:
        s3_server.client().put_object(Bucket="no-such-bucket-drlocal", Key="a", Body=b"x")
    assert _error(exc) == ("NoSuchBucket", 404)


def test_multipart_upload_file(s3_server, tmp_path):
    s3 = s3_server.client()
    bucket = s3_server.make_bucket()
    data = os.urandom(12 * MB + 12345)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB, max_concurrency=2)
    s3.upload_file(str(src), bucket, "model/big.bin", Config=cfg)
    head = s3.head_object(Bucket=bucket, Key="model/big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart ETag: md5-of-part-md5s, then the part count
    dst = tmp_path / "back.bin"
    s3.download_file(bucket, "model/big.bin", str(dst), Config=cfg)  # ranged GETs in parallel
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_signatures_are_checked(s3_server):
    bucket = s3_server.make_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="k", Body=b"v")
    with pytest.raises(ClientError) as exc:
        s3_server.client(secret_key="not-the-secret").get_object(Bucket=bucket, Key="k")
    assert _error(exc) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as exc:
        s3_server.client(access_key="AKIAUNKNOWN", secret_key="x").list_buckets()
    assert _error(exc) == ("InvalidAccessKeyId", 403)
    from botocore import UNSIGNED
    from botocore.config import Config

    anonymous = boto3.session.Session().client(
        "s3", endpoint_url=s3_server.endpoint, region_name="us-east-1", config=Config(signature_version=UNSIGNED)
    )
    with pytest.raises(ClientError) as exc:
        anonymous.get_object(Bucket=bucket, Key="k")
    assert _error(exc) == ("AccessDenied", 403)


def test_profiles_in_shared_files(s3_server, monkeypatch):
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    bucket = s3_server.make_bucket()
    # DRfC style: profile `minio` has the keys, the endpoint is given explicitly.
    minio = boto3.session.Session(profile_name="minio").client("s3", endpoint_url=s3_server.endpoint)
    minio.put_object(Bucket=bucket, Key="a.txt", Body=b"via minio")
    # profile `upload` carries endpoint_url itself: code written for real AWS lands on the test server.
    upload = boto3.session.Session(profile_name="upload").client("s3")
    assert upload.meta.endpoint_url == s3_server.endpoint
    assert upload.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"via minio"


def test_env_reaches_a_subprocess(s3_server):
    bucket = s3_server.make_bucket()
    code = (
        "import sys, boto3\n"
        "s3 = boto3.session.Session(profile_name='upload').client('s3')\n"
        "s3.put_object(Bucket=sys.argv[1], Key='from-child.txt', Body=b'child')\n"
    )
    env = s3_server.subprocess_env()
    subprocess.run([sys.executable, "-c", code, bucket], env=env, check=True, timeout=60)
    body = s3_server.client().get_object(Bucket=bucket, Key="from-child.txt")["Body"].read()
    assert body == b"child"


def test_deepracer_utils_reads_from_it(s3_server, monkeypatch):
    from deepracer.logs import S3FileHandler
    from deepracer.logs.misc import LogFolderType

    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    s3 = s3_server.client()
    bucket = s3_server.make_bucket()
    prefix = "rl-deepracer-sagemaker"
    csv = b"episode,steps,X,Y\n0,1,0.5,0.6\n"
    s3.put_object(Bucket=bucket, Key=f"{prefix}/training-simtrace/0-iteration.csv", Body=csv)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/model/model_metadata.json", Body=b"{}")

    # DRfC's local way: profile `minio` for the keys, the endpoint passed in.
    fh = S3FileHandler(bucket=bucket, prefix=prefix, s3_endpoint_url=s3_server.endpoint, profile="minio")
    assert sorted(fh.list_files()) == [
        f"{prefix}/model/model_metadata.json",
        f"{prefix}/training-simtrace/0-iteration.csv",
    ]
    assert fh.get_file(f"{prefix}/training-simtrace/0-iteration.csv") == csv
    assert fh.determine_root_folder_type() == LogFolderType.DRFC_MODEL_SINGLE_WORKERS
    # The endpoint can also come from the profile (endpoint_url in the config file).
    fh2 = S3FileHandler(bucket=bucket, prefix=prefix + "/", profile="upload")
    assert fh2.get_file(f"{prefix}/model/model_metadata.json") == b"{}"


def test_restart_keeps_objects_and_endpoint(s3_server):
    s3 = s3_server.client()
    bucket = s3_server.make_bucket()
    s3.put_object(Bucket=bucket, Key="before/restart.txt", Body=b"persisted")
    endpoint, pid = s3_server.endpoint, s3_server.pid
    t0 = time.monotonic()
    try:
        s3_server.stop()
        stopped = time.monotonic() - t0
        assert not s3_server.running
        with pytest.raises(Exception):  # noqa: B017 - any connection error: nothing listens now
            s3_server.client(config=_no_retry()).list_buckets()
    finally:
        s3_server.start()
    total = time.monotonic() - t0
    print(f"\nS3 restart: stop {stopped:.2f} s, start {s3_server.last_start_seconds:.2f} s, total {total:.2f} s")
    assert s3_server.endpoint == endpoint and s3_server.pid != pid
    assert s3.get_object(Bucket=bucket, Key="before/restart.txt")["Body"].read() == b"persisted"
    s3.put_object(Bucket=bucket, Key="after/restart.txt", Body=b"new")
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]} == {
        "before/restart.txt",
        "after/restart.txt",
    }


def _no_retry():
    from botocore.config import Config

    return Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1, "mode": "standard"})
