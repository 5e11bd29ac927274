"""The market monitor served by `quantdesk dashboard`, driven in a real headless Chromium.

Each server is a real subprocess on a free 127.0.0.1 port with its own QUANTDESK_HOME and
a real DuckDB store; a test waits for ``/liveness`` and then for the Bokeh document to
arrive over the websocket (its models only exist once it has), never for a fixed time.
One server per module where the tests can share it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ..conftest import free_port, make_bars, wait_for_http

# The document has arrived (over the websocket) once the chart's models exist.
DOC_READY_JS = """() => window.Bokeh !== undefined && Bokeh.documents.length > 0
    && Bokeh.documents[0].get_model_by_name('candles-closed') !== null"""

# Tabulator draws inside shadow roots: walk them to read the watchlist's price cells.
PRICES_JS = """() => {
  const out = {};
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('tabulator-row')) {
        const sym = el.querySelector('.tabulator-cell[tabulator-field="symbol"]');
        const px = el.querySelector('.tabulator-cell[tabulator-field="price"]');
        if (sym && px) out[sym.textContent.trim()] = px.textContent.trim();
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""

# Rows in a named ColumnDataSource of the chart (its data is a Map or a plain object).
ROWS_JS = """(name) => {
  const data = Bokeh.documents[0].get_model_by_name(name).data;
  return (data instanceof Map ? data.get('ts') : data.ts).length;
}"""

CHART_JS = """() => {
  const doc = Bokeh.documents[0];
  const fig = doc.get_model_by_name('candle-chart');
  const col = (name) => {
    const data = doc.get_model_by_name(name).data;
    const pick = (k) => Array.from(data instanceof Map ? data.get(k) : data[k]);
    return {ts: pick('ts'), open: pick('open'), high: pick('high'), low: pick('low'),
            close: pick('close'), volume: pick('volume')};
  };
  return {title: fig.title.text, closed: col('candles-closed'), open: col('candles-open')};
}"""


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QUANTDESK_HOME"] = str(home)
    env.pop("QUANTDESK_STORE", None)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _start(home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "dashboard", "--port", str(port), *args],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/liveness", proc)
    return proc, url


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A monitor on the simulator (6 symbols, 4 updates/s each) over an empty store."""
    home = tmp_path_factory.mktemp("sim_home")
    proc, url = _start(home, "--symbols", "AAA,BBB,CCC,DDD,EEE,FFF")
    yield url
    _stop(proc)


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(DOC_READY_JS, timeout=60_000)


def test_monitor_loads_cleanly_and_a_price_changes_within_3s(page, sim_server: str) -> None:
    _open(page, sim_server)
    page.wait_for_function(
        f"() => Object.values(({PRICES_JS})()).some((p) => p !== '' && p !== '-')",
        timeout=10_000,
    )
    before = page.evaluate(PRICES_JS)
    assert set(before) == {"AAA", "BBB", "CCC", "DDD", "EEE", "FFF"}
    # The spec: a price on the page changes within 3 s of the page being ready.
    page.wait_for_function(
        f"(before) => {{ const now = ({PRICES_JS})();"
        " return Object.keys(before).some((s) => now[s] !== before[s]); }",
        arg=before,
        timeout=3_000,
    )
    chart = page.evaluate(CHART_JS)
    assert chart["title"] == "AAA 5s"
    assert page.console_errors == []


def test_choosing_another_symbol_changes_the_chart_title_and_data(page, sim_server: str) -> None:
    _open(page, sim_server)
    page.wait_for_function(f"() => ({ROWS_JS})('candles-open') > 0", timeout=15_000)
    before = page.evaluate(CHART_JS)
    assert before["title"] == "AAA 5s"
    page.locator("select").first.select_option("DDD")
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('candle-chart').title.text === 'DDD 5s'",
        timeout=10_000,
    )
    page.wait_for_function(f"() => ({ROWS_JS})('candles-open') > 0", timeout=15_000)
    after = page.evaluate(CHART_JS)
    assert after["open"] != before["open"] or after["closed"] != before["closed"]
    assert page.console_errors == []


def test_a_fast_replay_draws_the_stored_bars(page, tmp_path: Path) -> None:
    from quantdesk.data import MarketStore

    home = tmp_path / "replay_home"
    store = MarketStore(home / "quantdesk.duckdb")
    bars = make_bars(["AAA", "BBB"], 300, seed=3)
    store.write_bars(bars, "1d")
    # 1e7 x real time: about 115 daily bars a second.
    proc, url = _start(home, "--feed", "replay", "--speed", "1e7")
    try:
        _open(page, url)
        page.wait_for_function(f"() => ({ROWS_JS})('candles-closed') >= 250", timeout=60_000)
        chart = page.evaluate(CHART_JS)
        # The watchlist ends on each symbol's last stored close.
        last = bars.groupby("symbol")["close"].last()
        expected = {s: f"{last[s]:,.2f}" for s in ("AAA", "BBB")}
        page.wait_for_function(
            f"(want) => {{ const now = ({PRICES_JS})();"
            " return Object.keys(want).every((s) => now[s] === want[s]); }",
            arg=expected,
            timeout=60_000,
        )
    finally:
        _stop(proc)
    assert chart["title"] == "AAA 1d"
    drawn = pd.DataFrame(chart["closed"])
    drawn["ts"] = pd.to_datetime(drawn["ts"], unit="ms", utc=True)
    stored = store.bars("AAA").set_index("ts").loc[drawn["ts"]]
    assert len(drawn) >= 250
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(drawn[column].to_numpy(), stored[column].to_numpy(), rtol=1e-12)
    assert page.console_errors == []


def test_basic_auth_refuses_strangers_and_lets_users_in(page, tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    creds = tmp_path / "users.json"
    creds.write_text('{"alice": "s3cret-pass"}')
    proc, url = _start(
        tmp_path / "auth_home",
        "--basic-auth",
        str(creds),
        "--cookie-secret",
        "a-long-random-cookie-secret-for-the-test",
        "--symbols",
        "AAA,BBB",
    )
    try:

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                return None

        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(f"{url}/", timeout=30)
        assert refused.value.code in (302, 401, 403)
        assert "/login" in (refused.value.headers.get("Location") or "/login")

        page.goto(f"{url}/")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "wrong")
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_url("**/login?error=*", timeout=30_000)
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "s3cret-pass")
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_function(DOC_READY_JS, timeout=60_000)
        assert page.evaluate(CHART_JS)["title"] == "AAA 5s"
    finally:
        _stop(proc)


def _run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quantdesk", "dashboard", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_non_loopback_bind_without_auth_exits_with_a_message(tmp_path: Path) -> None:
    done = _run_cli(tmp_path / "home", "--address", "0.0.0.0", "--port", str(free_port()))
    assert done.returncode != 0
    assert "refuses to listen on '0.0.0.0' without authentication" in done.stderr
    assert "--basic-auth FILE" in done.stderr


def test_a_missing_credentials_file_is_an_error_not_a_password(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-users.json"
    done = _run_cli(
        tmp_path / "home",
        "--basic-auth",
        str(missing),
        "--cookie-secret",
        "x" * 32,
        "--port",
        str(free_port()),
    )
    assert done.returncode != 0
    assert "does not exist" in done.stderr and str(missing) in done.stderr
