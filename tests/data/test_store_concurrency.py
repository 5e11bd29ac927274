"""One writer and two readers in separate processes work on one store at the same time.

This is the store's central promise (docs/architecture.md, "one writer, many readers"): an ingest
job, a notebook kernel and a dashboard all succeed, no lock error reaches them, no
write is lost, and readers only ever see whole ingests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from quantdesk.data import MarketStore

BATCHES, ROWS = 30, 250

WRITER = """
import json, sys
sys.path.insert(0, {tests!r})
from conftest import make_bars
from quantdesk.data import MarketStore
store = MarketStore({path!r})
reports = []
for i in range({batches}):
    bars = make_bars([f"S{{i:03d}}"], {rows}, seed=i)
    reports.append(store.write_bars(bars, "1d", source=f"batch{{i}}").inserted)
    if i % 5 == 0:  # re-ingest an earlier batch: must change nothing
        again = store.write_bars(make_bars([f"S{{i:03d}}"], {rows}, seed=i), "1d")
        assert again.inserted == 0 and again.updated == 0, again
open({done!r}, "w").close()
print(json.dumps({{"inserted": sum(reports)}}))
"""

READER = """
import json, os, time
from quantdesk.data import MarketStore
store = MarketStore({path!r}, read_only=True)
seen, reads = [], 0
while True:
    finished = os.path.exists({done!r})
    n = int(store.sql("SELECT count(*) AS n FROM bars")["n"].iloc[0])
    panel = store.panel("close")
    assert panel.notna().sum().sum() >= n, (panel.shape, n)
    seen.append(n)
    reads += 1
    if finished:
        break
print(json.dumps({{"seen": seen, "reads": reads}}))
"""


def test_ingest_while_two_processes_read(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.duckdb")
    done = str(tmp_path / "writer.done")
    MarketStore(path).create()  # create the schema so read-only readers can open the file
    tests_dir = str(Path(__file__).resolve().parents[1])
    fmt = {"path": path, "done": done, "tests": tests_dir, "batches": BATCHES, "rows": ROWS}

    def start(code: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code.format(**fmt))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    readers = [start(READER), start(READER)]
    writer = start(WRITER)
    results = []
    for proc in [writer, *readers]:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        assert "lock" not in err.lower(), err[-3000:]  # no lock error surfaced
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert results[0]["inserted"] == BATCHES * ROWS
    final = int(MarketStore(path).sql("SELECT count(*) AS n FROM bars")["n"].iloc[0])
    assert final == BATCHES * ROWS  # no write lost
    for reader in results[1:]:
        seen = reader["seen"]
        assert reader["reads"] >= 3
        assert seen == sorted(seen)  # never goes back in time
        assert all(n % ROWS == 0 for n in seen)  # whole ingests only, never a partial one
        assert seen[-1] == final
    # The readers really ran during the ingest: they saw intermediate states.
    assert max(len(set(r["seen"])) for r in results[1:]) >= 3
