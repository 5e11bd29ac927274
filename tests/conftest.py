"""Shared fixtures: every test gets its own QUANTDESK_HOME and a real DuckDB store file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings as hypothesis_settings

# Property tests draw the same examples on every machine ("derandomize"), so `make test`
# passes or fails the same way everywhere; `HYPOTHESIS_PROFILE=explore pytest ...` draws
# fresh random examples to hunt for new failures (add each one found as a plain test).
hypothesis_settings.register_profile("repeatable", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "qd_home"
    monkeypatch.setenv("QUANTDESK_HOME", str(home))
    monkeypatch.setenv("QUANTDESK_REPORTS", str(tmp_path / "reports"))
    monkeypatch.delenv("QUANTDESK_STORE", raising=False)
    yield home


@pytest.fixture
def store(tmp_path: Path):
    from quantdesk.data import MarketStore

    # An empty store whose file exists: opening alone never creates one.
    return MarketStore(tmp_path / "store.duckdb").create()


def make_bars(
    symbols: list[str], days: int, seed: int = 0, start: str = "2020-01-02"
) -> pd.DataFrame:
    """Return valid random daily long bars (a small helper for store tests)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=days, tz="UTC").as_unit("ns")
    frames = []
    for sym in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
        open_ = close * np.exp(rng.normal(0, 0.003, days))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, days))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, days))
        volume = rng.integers(1_000, 100_000, days).astype(float)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": sym,
                    "ts": dates,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# -- real servers and a real headless Chromium (issues 12 and 13) -------------------------

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags, a machine with no internet refuses
# Chromium's own connections (updates, safe browsing) at every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# Bokeh 3 draws inside shadow roots: walk every element's shadowRoot to find canvases.
CANVAS_SIZES_JS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'CANVAS') out.push([el.width, el.height]);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, proc=None, timeout: float = 120.0, ok=(200,)) -> int:
    """Poll ``url`` until it answers with a status in ``ok``; return that status.

    Fails at once (with the server's output) when ``proc`` exits first, so a server that
    cannot start is reported, not waited for.  ``timeout`` only bounds a hang.
    """
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"server exited with {proc.returncode} before {url} answered:\n{out}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status in ok:
                    return int(resp.status)
                last = resp.status
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return int(exc.code)
            last = exc
        except OSError as exc:
            last = exc
        time.sleep(0.1)  # polling interval of a liveness probe, not a synchronisation
    pytest.fail(f"{url} did not answer within {timeout:g} s (last: {last!r})")


@pytest.fixture(scope="session")
def browser():
    """A real headless Debian Chromium driven by Playwright (never `playwright install`)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium); "
            "browser tests never skip silently"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser page whose console errors and page errors are collected.

    ``page.console_errors`` lists them; a screenshot of the page at the end of the test
    goes to ``test-artifacts/<test name>.png`` (git-ignored).
    """
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    pg.console_errors = errors
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)
    # A crashed page has no screenshot; the test itself already says why.
    with contextlib.suppress(Exception):
        pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


# -- a real S3-compatible object store (issue 26) --------------------------------------

#: Credentials of the local S3 server: the tests look for the secret in logs and files.
S3_KEY_ID = "QDTESTKEYID0000000001"
S3_SECRET = "s3cr3t-snapshot-value-7731-do-not-log"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start moto's S3-compatible server as its own process (a real HTTP server, as
    ``moto_server`` runs it, see tests/cluster_harness.py); yield its endpoint URL."""
    from .cluster_harness import running_object_store

    with running_object_store() as server:
        yield server.endpoint


@pytest.fixture
def s3_bucket(s3_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Return ``s3://<a new bucket>`` on the local server; the endpoint and credentials are
    in the environment only (AWS_*), as a user would set them, and no AWS config file of
    the machine is read."""
    import uuid

    from fsspec.core import url_to_fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    bucket = f"qd-{uuid.uuid4().hex[:16]}"
    fs, _ = url_to_fs(f"s3://{bucket}", skip_instance_cache=True)
    fs.mkdir(bucket)
    return f"s3://{bucket}"


# -- a real Dask cluster reading the S3 server (issue 26), one per test module -----------


@pytest.fixture(scope="module")
def object_store(s3_server: str):
    """A bucket of its own on the S3 server for the module; this process is its client
    (endpoint from fsspec's configuration, credentials from AWS_* variables)."""
    from .cluster_harness import ObjectStore, client_environment

    server = ObjectStore.attach(s3_server)
    with client_environment(server.env):
        yield server


@pytest.fixture(scope="module")
def dask_cluster(object_store):
    """A ``dask scheduler`` and two ``dask worker`` processes whose only data is S3."""
    from .cluster_harness import running_cluster

    with running_cluster(object_store.env) as cluster:
        yield cluster
