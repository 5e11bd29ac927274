"""A live feed writing candles while a dashboard and a notebook read the store, all at once.

Three real processes share one DuckDB file: the writer runs a simulator feed with a
CandleRecorder, a "dashboard" reader opens the store read-only and a "notebook" reader
opens it the default (read-write) way; both read ``MarketStore(path).bars(...)`` in a
loop.  They talk over stdin/stdout lines, so the test never waits on a clock: the
writer answers ``step`` once it has written more candles, and a reader answers
``report`` with a fresh read, which must already hold them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from quantdesk.data import MarketStore

STEPS, PER_STEP = 4, 20

WRITER = """
import json, sys, time
from quantdesk.data import MarketStore
from quantdesk.data.live import CandleRecorder, SimulatedFeed
store = MarketStore({path!r})
feed = SimulatedFeed(20, rate=20.0, interval=0.05, seed=1)
recorder = CandleRecorder("1s", store=store, batch_size=20, max_delay=0.2).attach(feed)
feed.start()
for line in sys.stdin:
    if line.strip() == "step":
        # Everything committed so far is counted first, so the target lies above any
        # count a reader saw before this step.
        recorder.flush(60)
        target = recorder.written + {per_step}
        deadline = time.monotonic() + 120  # bounds a hang only
        while recorder.written < target and time.monotonic() < deadline:
            time.sleep(0.01)
        print(json.dumps({{"written": recorder.written}}), flush=True)
    else:
        feed.stop()
        recorder.close()
        print(json.dumps({{"written": recorder.written, "write_errors": recorder.write_errors,
                          "feed": feed.status.summary()}}), flush=True)
        break
"""

READER = """
import json, sys, threading
from quantdesk.data import MarketStore
store = MarketStore({path!r}, read_only={read_only})
stop = threading.Event()
reads, errors, seen = [0], [], []

def count():
    return len(store.bars(timeframe="1s"))

def keep_reading():
    while not stop.is_set():
        try:
            seen.append(count())
            reads[0] += 1
        except Exception as exc:
            errors.append(repr(exc))

thread = threading.Thread(target=keep_reading)
thread.start()
for line in sys.stdin:
    if line.strip() == "report":
        print(json.dumps({{"count": count()}}), flush=True)
    else:
        break
stop.set()
thread.join()
print(json.dumps({{"reads": reads[0], "errors": errors,
                  "monotonic": seen == sorted(seen)}}), flush=True)
"""


class Child:
    """A python child process driven one line at a time."""

    def __init__(self, code: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            _, err = self.proc.communicate(timeout=60)
            raise AssertionError(f"child exited: {err[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def finish(self, command: str) -> tuple[dict[str, Any], str]:
        answer = self.ask(command)
        _, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err[-3000:]
        return answer, err


def test_feed_dashboard_and_notebook_share_the_store(tmp_path: Path) -> None:
    path = str(tmp_path / "live.duckdb")
    MarketStore(path)  # the schema, so the read-only reader can open the file
    writer = Child(WRITER.format(path=path, per_step=PER_STEP))
    readers: list[Child] = []
    try:
        written = [writer.ask("step")["written"]]  # 1s bars exist before readers ask
        readers = [
            Child(READER.format(path=path, read_only=True)),  # the dashboard
            Child(READER.format(path=path, read_only=False)),  # a notebook
        ]
        counts: list[list[int]] = [[], []]
        for _ in range(STEPS):
            written.append(writer.ask("step")["written"])
            for reader, seen in zip(readers, counts, strict=True):
                seen.append(reader.ask("report")["count"])
                assert seen[-1] >= written[-1]  # a reader sees what was written before it asked
        final, writer_err = writer.finish("stop")
        ends = [reader.finish("stop") for reader in readers]
    finally:
        for child in (writer, *readers):
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.communicate()

    assert final["write_errors"] == 0, final
    assert "lock" not in writer_err.lower(), writer_err[-3000:]
    for seen in counts:
        assert seen == sorted(seen) and len(set(seen)) == STEPS  # the count grows every step
    for end, err in ends:
        assert end["errors"] == [] and end["monotonic"], end
        assert end["reads"] >= STEPS  # it kept reading while the feed wrote
        assert "lock" not in err.lower(), err[-3000:]
    stored = MarketStore(path, read_only=True).bars(timeframe="1s")
    assert len(stored) == final["written"] >= written[-1]
    assert not stored.duplicated(["symbol", "ts"]).any()
    assert set(MarketStore(path, read_only=True).ingest_log()["source"]) == {"live:simulator"}
