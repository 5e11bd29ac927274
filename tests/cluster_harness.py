"""A real Dask cluster and a real S3-compatible object store, started as a user would.

- :class:`ObjectStore`: ``moto_server`` (moto's server mode) in a subprocess on a free
  port: an S3 endpoint that s3fs talks to over HTTP.  Clients find it through fsspec's
  configuration (``FSSPEC_S3_ENDPOINT_URL``) and take credentials from the standard
  ``AWS_*`` variables, as a deployment would: nothing in a URL or a task carries them.
- :class:`DaskCluster`: ``dask scheduler`` and ``dask worker`` processes (the CLI entry
  points), each in its own temporary working directory, with an environment in which
  the market store's path (``QUANTDESK_HOME``, ``QUANTDESK_STORE``, ``QUANTDESK_MODELS``)
  lies under a regular file: a worker that tried to open or create the DuckDB file (or
  the model registry) would fail, so a job that passes never touched them.

The fixtures ``object_store`` and ``dask_cluster`` (tests/conftest.py) are module-scoped: a
test module shares one cluster.  Every process starts in its own session and is
ended by its process group at teardown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import quantdesk

BIN = Path(sys.executable).parent
# Where the workers import quantdesk from: the checkout under test, not an install.
SRC = Path(quantdesk.__file__).resolve().parents[1]
# Helper modules the workers may import (top-level names, see cluster_gate.py).
HELPERS = Path(__file__).resolve().parent / "cluster_helpers"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "quantdesk-test-key",
    "AWS_SECRET_ACCESS_KEY": "quantdesk-test-secret-8c41f2",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Set to 1 in every worker's environment (one worker process per core).
THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
START_TIMEOUT = 180.0  # bounds a hang only; each start waits for its own event


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    try:
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        out.close()  # the child holds its own copy


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process we started, and its process group (a nanny's worker)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
    # The group may outlive its leader (a nanny's worker, a resource tracker).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait(check: Any, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Poll ``check()`` until it is true; fail with the log when ``proc`` exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while not check():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)


@dataclass
class ObjectStore:
    """An S3 endpoint served by ``moto_server``, with one bucket made for the tests."""

    folder: Path
    bucket: str = "quantdesk-snapshots"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Return the variables a client needs: the endpoint (fsspec config), credentials."""
        return {"FSSPEC_S3_ENDPOINT_URL": self.endpoint, **CREDENTIALS}

    def url(self, name: str) -> str:
        """Return ``s3://bucket/name``."""
        return f"s3://{self.bucket}/{name}"

    @classmethod
    def attach(cls, endpoint: str) -> ObjectStore:
        """Return a new bucket on a server already running at ``endpoint``."""
        store = cls(Path(tempfile.gettempdir()), bucket=f"qd-{uuid.uuid4().hex[:8]}")
        store.port = int(endpoint.rsplit(":", 1)[1])
        store.make_bucket()
        return store

    def make_bucket(self) -> None:
        import fsspec

        fs = fsspec.filesystem(
            "s3",
            endpoint_url=self.endpoint,
            key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            skip_instance_cache=True,
        )
        fs.mkdir(self.bucket)

    def start(self) -> ObjectStore:
        self.port = free_port()
        log = self.folder / "moto.log"
        argv = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = _start(argv, self.folder, dict(os.environ), log)

        def up() -> bool:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2).close()
                return True
            except OSError:
                return False

        _wait(up, self.proc, log, "moto_server")
        self.make_bucket()
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


@dataclass
class DaskCluster:
    """A ``dask scheduler`` and ``dask worker`` processes, started from the CLI."""

    folder: Path
    worker_env: dict[str, str]
    n_workers: int = 2
    scheduler: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    address: str = ""
    no_store: Path = field(init=False)

    def __post_init__(self) -> None:
        # A regular file: nothing can be opened or created under it, even by root.
        self.no_store = self.folder / "not-a-folder"
        self.no_store.write_text("the workers' store lies under this file: unreachable\n")

    def environment(self, cwd: Path) -> dict[str, str]:
        """Return a worker's environment: its own folders, no reachable store."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANTDESK_", "AWS_"))}
        env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(SRC), str(HELPERS)]),
                "QUANTDESK_HOME": str(self.no_store / "home"),
                "QUANTDESK_STORE": str(self.no_store / "quantdesk.duckdb"),
                "QUANTDESK_MODELS": str(self.no_store / "models"),
                # This process's compiled kernels (sweeps), as a worker's own disk would
                # keep them between runs; else a folder of its own.
                "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR") or str(cwd / "numba"),
                # A worker's own cache of the snapshot's files (the default lies under
                # QUANTDESK_HOME, which is unreachable here).
                "QUANTDESK_SNAPSHOT_CACHE": str(cwd / "snapshot-cache"),
                "HOME": str(cwd),
                **dict.fromkeys(THREADS, "1"),
            }
        )
        env.update(self.worker_env)
        return env

    def start(self) -> DaskCluster:
        sched_dir = self.folder / "scheduler"
        sched_dir.mkdir()
        scheduler_file = sched_dir / "scheduler.json"
        log = sched_dir / "scheduler.log"
        argv = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
        self.scheduler = _start(argv, sched_dir, self.environment(sched_dir), log)
        _wait(scheduler_file.exists, self.scheduler, log, "dask scheduler")
        for i in range(self.n_workers):
            self.add_worker(f"worker-{i}", scheduler_file)
        from distributed import Client

        with Client(scheduler_file=str(scheduler_file), timeout="60s") as client:
            self.address = client.scheduler.address
            deadline = time.monotonic() + START_TIMEOUT
            while len(client.scheduler_info()["workers"]) < self.n_workers:
                for proc, name in zip(self.workers, self.worker_names, strict=True):
                    if proc.poll() is not None:
                        text = (self.folder / name / "worker.log").read_text()[-4000:]
                        raise RuntimeError(f"dask worker {name} exited:\n{text}")
                if time.monotonic() > deadline:
                    raise TimeoutError("the dask workers did not register")
                time.sleep(0.05)
        return self

    @property
    def worker_names(self) -> list[str]:
        return [f"worker-{i}" for i in range(len(self.workers))]

    def add_worker(self, name: str, scheduler_file: Path) -> None:
        cwd = self.folder / name
        cwd.mkdir()
        argv = [str(BIN / "dask"), "worker", "--scheduler-file", str(scheduler_file)]
        argv += ["--nthreads", "1", "--no-dashboard", "--name", name]
        argv += ["--local-directory", str(cwd / "dask-scratch"), "--memory-limit", "4GiB"]
        self.workers.append(_start(argv, cwd, self.environment(cwd), cwd / "worker.log"))

    def logs(self) -> str:
        """Return every process's output so far (scheduler and workers)."""
        paths = [self.folder / "scheduler" / "scheduler.log"]
        paths += [self.folder / name / "worker.log" for name in self.worker_names]
        return "\n".join(p.read_text(errors="replace") for p in paths if p.exists())

    def stop(self) -> None:
        for proc in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            _stop(proc)


@contextlib.contextmanager
def running_object_store() -> Iterator[ObjectStore]:
    with tempfile.TemporaryDirectory(prefix="qd-moto-") as folder:
        server = ObjectStore(Path(folder), bucket=f"qd-{uuid.uuid4().hex[:8]}")
        try:
            yield server.start()
        finally:
            server.stop()


@contextlib.contextmanager
def running_cluster(worker_env: dict[str, str], n_workers: int = 2) -> Iterator[DaskCluster]:
    with tempfile.TemporaryDirectory(prefix="qd-dask-") as folder:
        cluster = DaskCluster(Path(folder), worker_env, n_workers)
        try:
            yield cluster.start()
        finally:
            cluster.stop()


@contextlib.contextmanager
def client_environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables in this (the client's) process for the block, then restore them.

    fsspec reads its ``FSSPEC_*`` configuration when it is imported; the endpoint is
    also put into ``fsspec.config.conf`` for a process that imported it already.
    """
    import fsspec.config

    saved = {k: os.environ.get(k) for k in values}
    conf = {k: dict(v) for k, v in fsspec.config.conf.items()}
    os.environ.update(values)
    if "FSSPEC_S3_ENDPOINT_URL" in values:
        fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = values["FSSPEC_S3_ENDPOINT_URL"]
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        fsspec.config.conf.clear()
        fsspec.config.conf.update(conf)
