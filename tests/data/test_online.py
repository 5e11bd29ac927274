"""The optional online source fails fast and clearly without the extra or a network."""

from __future__ import annotations

import importlib.util
import socket
import time

import pytest

from quantdesk.data.online import SourceUnavailableError, check_reachable, fetch_yahoo


def test_missing_extra_or_network_fails_fast_with_instructions() -> None:
    t0 = time.monotonic()
    with pytest.raises(SourceUnavailableError) as info:
        fetch_yahoo("SPY", "2020-01-01", "2020-02-01")
    assert time.monotonic() - t0 < 10
    if importlib.util.find_spec("yfinance") is None:
        assert "quantdesk[online]" in str(info.value)
    else:
        assert "needs a network" in str(info.value)


def test_reachability_check_against_local_sockets() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    check_reachable("127.0.0.1", port, timeout=2)  # a listening port: no error
    server.close()
    with pytest.raises(SourceUnavailableError, match="needs a network"):
        check_reachable("127.0.0.1", port, timeout=2)  # closed now: refused at once
