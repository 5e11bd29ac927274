"""The streaming scan: a rule set on each new candle, with a short window per symbol.

:class:`StreamingScan` keeps, for every symbol it has seen, its last ``lookback + 1``
bars (the most any rule looks back, plus the bar itself) in preallocated arrays, and
evaluates the rule set on the symbols of each closed candle only.  History is never
rescanned: a candle costs the same on day one and after a year.  Because the rules
sum their windows in a fixed order (:mod:`quantdesk.screener.rules`), the streaming
alerts equal the batch :func:`~quantdesk.screener.batch.scan` of the same bars.

A live pane calls :meth:`StreamingScan.update` with each batch of closed candles and
shows what it returns; :func:`recent_alerts` reads the stored ones.

Examples
--------
>>> stream = StreamingScan(["gap_up"])
>>> ts = pd.Timestamp("2024-01-02", tz="UTC")
>>> bar = dict(high=10.0, low=10.0, volume=1e6)
>>> stream.update(pd.DataFrame([dict(symbol="A", ts=ts, open=10.0, close=10.0, **bar)])).empty
True
>>> nxt = dict(symbol="A", ts=ts + pd.Timedelta(days=1), open=10.6, close=10.7, **bar)
>>> stream.update(pd.DataFrame([nxt]))[["symbol", "rule", "trigger_price"]].to_dict("records")
[{'symbol': 'A', 'rule': 'gap_up', 'trigger_price': 10.6}]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantdesk.data.schemas import parse_timeframe
from quantdesk.screener.batch import _alerts_frame, empty_alerts, evaluate
from quantdesk.screener.rulesets import RulesLike, resolve_rules

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore

__all__ = ["StreamingScan", "recent_alerts"]

_NAT = np.iinfo(np.int64).min


class StreamingScan:
    """A rule set evaluated incrementally on closed candles, symbol by symbol.

    Parameters
    ----------
    rules
        As for :func:`~quantdesk.screener.batch.scan`: names, rule objects or a YAML file.
    timeframe
        The candles' bar length (recorded in each alert's metadata).
    new_only
        Alert only when a symbol newly enters a rule's scan.
    """

    def __init__(self, rules: RulesLike, *, timeframe: str = "1d", new_only: bool = False) -> None:
        self.rules = resolve_rules(rules)
        self.timeframe = parse_timeframe(timeframe).name
        self.new_only = new_only
        self.fields = sorted(set().union(*(r.fields for r in self.rules)) | {"close"})
        self.window = max(r.lookback for r in self.rules) + 1
        self._columns: dict[str, int] = {}
        self._names: list[str] = []
        self._capacity = 0
        self._buffers = {f: np.empty((self.window, 0)) for f in self.fields}
        self._last_ts = np.empty(0, dtype=np.int64)
        self._fired = np.empty((len(self.rules), 0), dtype=bool)

    def __repr__(self) -> str:
        names = ", ".join(r.name for r in self.rules)
        return f"StreamingScan([{names}], {len(self._names)} symbols, window {self.window})"

    @property
    def symbols(self) -> list[str]:
        """Return the symbols seen so far, in the order first seen."""
        return list(self._names)

    def _grow(self, names: list[str]) -> None:
        for name in names:
            self._columns[name] = len(self._names)
            self._names.append(name)
        need = len(self._names)
        if need <= self._capacity:
            return
        capacity = max(need, 2 * self._capacity, 64)
        for f, buf in self._buffers.items():
            wider = np.full((self.window, capacity), np.nan)
            wider[:, : buf.shape[1]] = buf
            self._buffers[f] = wider
        last = np.full(capacity, _NAT, dtype=np.int64)
        last[: len(self._last_ts)] = self._last_ts
        self._last_ts = last
        fired = np.zeros((len(self.rules), capacity), dtype=bool)
        fired[:, : self._fired.shape[1]] = self._fired
        self._fired = fired
        self._capacity = capacity

    def update(self, candles: pd.DataFrame) -> pd.DataFrame:
        """Return the alerts of newly closed candles (long: ``symbol, ts`` and the fields).

        Candles are taken in time order; a candle not newer than its symbol's last one
        (a repeat) is ignored.  Columns the rules read (``open``, ``volume``, and
        ``regime`` or ``sentiment`` for those rules) must be present.
        """
        missing = [c for c in ("symbol", "ts", *self.fields) if c not in candles.columns]
        if missing:
            raise ValueError(f"candles lack column(s) {missing} that the rules read")
        if candles.empty:
            return empty_alerts()
        stamps = _stamps(candles["ts"])
        names = np.asarray(candles["symbol"].to_numpy(), dtype=object)
        # Column by column: a list selection of columns costs more than the whole step.
        values = np.column_stack([candles[f].to_numpy(dtype=np.float64) for f in self.fields])
        if len(stamps) > 1 and (np.diff(stamps) < 0).any():
            order = np.argsort(stamps, kind="stable")
            stamps, names, values = stamps[order], names[order], values[order]
        frames = []
        # One step per distinct bar time (usually one): never a loop over symbols.
        bounds = np.flatnonzero(np.diff(stamps)) + 1 if len(stamps) > 1 else np.empty(0, int)
        for lo, hi in zip([0, *bounds], [*bounds, len(stamps)], strict=True):
            step = self._step(names[lo:hi], values[lo:hi], int(stamps[lo]))
            if step is not None:
                frames.append(step)
        if not frames:
            return empty_alerts()
        return pd.concat(frames, ignore_index=True)

    def warm(self, bars: pd.DataFrame) -> None:
        """Feed history (long bars) through the scan without returning its alerts."""
        self.update(bars)

    def _step(self, names: np.ndarray, values: np.ndarray, stamp: int) -> pd.DataFrame | None:
        """Push one bar time's candles into the windows; return their alerts (None: none)."""
        columns = self._columns
        new = [n for n in dict.fromkeys(names.tolist()) if n not in columns]
        if new:
            self._grow([str(n) for n in new])
        cols = np.fromiter((columns[n] for n in names), dtype=np.int64, count=len(names))
        fresh = self._last_ts[cols] < stamp
        if not fresh.all():
            cols, values = cols[fresh], values[fresh]
        if not len(cols):
            return None
        if len(cols) > 1:
            _, first = np.unique(cols, return_index=True)  # one candle per symbol per bar
            if len(first) < len(cols):
                keep = np.sort(first)
                cols, values = cols[keep], values[keep]
        self._last_ts[cols] = stamp
        data: dict[str, np.ndarray] = {}
        for j, f in enumerate(self.fields):
            buf = self._buffers[f]
            window = buf[:, cols]
            window[:-1] = window[1:]
            window[-1] = values[:, j]
            buf[:, cols] = window
            data[f] = window
        frames = []
        for i, (rule, (out, hits)) in enumerate(
            zip(self.rules, evaluate(self.rules, data), strict=True)
        ):
            now = hits[-1].copy()
            if self.new_only:
                before = self._fired[i, cols]
                self._fired[i, cols] = now
                now &= ~before
            if now.any():
                mask = np.zeros_like(hits)
                mask[-1] = now
                index = pd.DatetimeIndex([pd.Timestamp(stamp, tz="UTC")] * self.window)
                symbols = [self._names[c] for c in cols]
                frames.append(_alerts_frame(rule, out, mask, index, symbols, self.timeframe))
        if not frames:
            return None
        return pd.concat(frames, ignore_index=True)


def _stamps(ts: pd.Series) -> np.ndarray:
    """Return bar times as int64 nanoseconds since the epoch, UTC (naive times are UTC)."""
    if isinstance(ts.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(ts.dtype):
        values = ts.array
    else:
        values = pd.to_datetime(ts, utc=True).array
    stamps: np.ndarray = values.as_unit("ns").asi8
    return stamps


def recent_alerts(store: MarketStore | Any, n: int = 50, **filters: Any) -> pd.DataFrame:
    """Return the ``n`` most recent stored alerts (newest bar first) with delivery state.

    ``filters`` go to :meth:`quantdesk.data.store.alerts.AlertStore.alerts` (``symbols``,
    ``rules``, ``undelivered``, ...).  Reads only: safe from a dashboard process.
    """
    from quantdesk.data.store.alerts import AlertStore
    from quantdesk.data.store.market import MarketStore

    market = store if isinstance(store, MarketStore) else MarketStore(store, read_only=True)
    return AlertStore(market).alerts(limit=n, **filters)
