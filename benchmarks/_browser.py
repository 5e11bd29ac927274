"""The headless Chromium every browser benchmark launches, with the tests' flags.

``tests/conftest.py`` launches the same browser with the same flags for the tests.
"""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags the closed network refuses Chromium's own
# connections at every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
