"""The optional online source fails fast and clearly without the extra or a network."""

from __future__ import annotations

import socket
import sys
import types

import pytest

from quantdesk.data.sources import online
from quantdesk.data.sources.online import SourceUnavailableError, check_reachable, fetch_yahoo


# The marks bound a hang (a resolver or a connect without a timeout); none asserts a speed.
@pytest.mark.timeout(60)
def test_missing_extra_fails_with_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import yfinance` raise ImportError, installed or not.
    monkeypatch.setitem(sys.modules, "yfinance", None)
    with pytest.raises(SourceUnavailableError, match=r"quantdesk\[online\]"):
        fetch_yahoo("SPY", "2020-01-01", "2020-02-01")


@pytest.mark.timeout(60)
def test_unreachable_host_fails_with_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the extra importable and the host unreachable: a clear error, never a hang.

    ``.invalid`` never resolves (RFC 6761), on a machine with a network or without, so
    the outcome does not depend on where the suite runs.
    """
    monkeypatch.setitem(sys.modules, "yfinance", types.ModuleType("yfinance"))
    monkeypatch.setattr(online, "YAHOO_HOST", "quantdesk-test.invalid")
    with pytest.raises(SourceUnavailableError, match="needs a network") as info:
        fetch_yahoo("SPY", "2020-01-01", "2020-02-01")
    assert "quantdesk ingest sample" in str(info.value)


def test_reachability_check_against_local_sockets() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    # A listening port: no error.  The timeout is an upper bound; the connect is immediate.
    check_reachable("127.0.0.1", port, timeout=30)
    server.close()
    with pytest.raises(SourceUnavailableError, match="needs a network"):
        check_reachable("127.0.0.1", port, timeout=2)  # closed now: refused at once
