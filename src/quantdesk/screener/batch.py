"""Scans: a rule set over the whole universe in one vectorised pass, as alerts.

:func:`scan` takes bars (long, or wide panels, or the market store), evaluates every
rule over all symbols at once (arrays of bars x symbols; no loop over symbols) and
returns the alerts of the bars asked for: the latest bar, one ``date``, or a
``start``..``end`` range (a backfill).  Only the bars the rules need are read: the
asked range and each rule's look-back before it.

With ``new_only=True`` a symbol is alerted only when it newly enters a rule's scan: the
rule fires on the bar and did not on the symbol's previous bar.

Examples
--------
>>> bars = pd.DataFrame({
...     "symbol": ["A", "A", "B", "B"],
...     "ts": pd.to_datetime(["2024-01-02", "2024-01-03"] * 2, utc=True),
...     "open": [10.0, 10.5, 20.0, 20.1], "high": [10.2, 10.9, 20.3, 20.4],
...     "low": [9.9, 10.4, 19.8, 19.9], "close": [10.0, 10.8, 20.0, 20.2],
...     "volume": [1e6, 1.2e6, 5e5, 5e5]})
>>> alerts = scan(bars, ["gap_up"])
>>> alerts[["symbol", "rule", "trigger_price"]].to_dict("records")
[{'symbol': 'A', 'rule': 'gap_up', 'trigger_price': 10.5}]
>>> {k: round(v, 9) for k, v in alerts["conditions"].iloc[0].items()}
{'gap_pct': 5.0, 'prev_close': 10.0}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from quantdesk.core.coerce import as_utc
from quantdesk.data.schemas import ALERT_COLUMNS, Timeframe, parse_timeframe
from quantdesk.data.timestamps import bound_window
from quantdesk.data.wide import VALUE_FIELDS, panels_from_bars, to_wide
from quantdesk.screener.rules import Rule, RuleOutput
from quantdesk.screener.rulesets import RulesLike, resolve_rules

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore

__all__ = ["EXTRA_FIELDS", "ScanAlerts", "empty_alerts", "evaluate", "scan"]

logger = logging.getLogger(__name__)

#: Fields beyond the bars that rules may read, and where :func:`scan` finds them.
EXTRA_FIELDS: dict[str, str] = {
    "regime": "the stored regime state (MarketStore.regimes) or regimes=",
    "sentiment": "the daily news sentiment of the stored scored news, or sentiment=",
}


class ScanAlerts(pd.DataFrame):
    """The alerts a :func:`scan` returns: a plain alerts frame that shows a summary.

    It is a :class:`pandas.DataFrame` with the columns of
    :data:`~quantdesk.data.schemas.ALERT_COLUMNS`; anything computed from it (a filter,
    a column, a copy) is a plain DataFrame again.  In a notebook it shows the count, the
    symbols, the rules and the bars alerted on first, then the alerts folded.

    Examples
    --------
    >>> alerts = ScanAlerts(empty_alerts())
    >>> print(repr(alerts))
    Scan alerts: 0
      symbols  0
      rules    n/a
      first    n/a
      last     n/a
    >>> type(alerts.head()) is pd.DataFrame
    True
    """

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        # Derived frames are plain: the summary describes a scan's result as returned.
        return pd.DataFrame

    def _headline(self) -> dict[str, Any]:
        ts = pd.to_datetime(self["ts"]) if len(self) else None
        by_rule = self["rule"].value_counts() if len(self) else pd.Series(dtype=int)
        return {
            "symbols": int(self["symbol"].nunique()) if len(self) else 0,
            "rules": ", ".join(f"{r} {n}" for r, n in by_rule.items()) or "n/a",
            "first": ts.min() if ts is not None else "n/a",
            "last": ts.max() if ts is not None else "n/a",
        }

    def __repr__(self) -> str:
        from quantdesk.core.html import summary_text

        return summary_text(f"Scan alerts: {len(self):,}", self._headline())

    def _repr_html_(self) -> str:  # type: ignore[override]
        from quantdesk.core.html import summary_html

        shown = pd.DataFrame(self)[["ts", "symbol", "rule", "trigger_price"]]
        return summary_html(
            f"Scan alerts: {len(self):,}", self._headline(), {"alerts (UTC)": shown}
        )


def _empty_alerts() -> pd.DataFrame:
    dtypes = {
        "symbol": "str",
        "rule": "str",
        "ts": "datetime64[ns, UTC]",
        "trigger_price": "float64",
    }
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, object)) for c in ALERT_COLUMNS})


_EMPTY = _empty_alerts()


def empty_alerts() -> pd.DataFrame:
    """Return an alerts frame with no rows and the columns of ALERT_COLUMNS."""
    # A copy of one template: a live scan returns this for most candles.
    return _EMPTY.copy()


Window = tuple[pd.Timestamp | None, pd.Timestamp | None]
_ONE_US = pd.Timedelta(1, "us")


def _windows(
    date: Any, start: Any, end: Any, zones: Mapping[str, str], daily: bool
) -> dict[str, Window]:
    """Return the ``[lo, hi)`` instants of the bars to alert on, per time zone.

    ``date`` (or a ``start``/``end`` given as a day) is the whole day in each symbol's
    zone (:func:`~quantdesk.data.timestamps.bound_window`); ``"UTC"`` is always present.
    (None, None) means the latest bar.
    """
    if date is not None:
        if start is not None or end is not None:
            raise ValueError("give either date or start/end, not both")
        start = end = date
    return {zone: bound_window(start, end, zone, daily=daily) for zone in {"UTC", *zones.values()}}


def _span(windows: Mapping[str, Window]) -> Window:
    """Return the smallest window that holds every one of ``windows`` (None: open)."""
    los = [w[0] for w in windows.values()]
    his = [w[1] for w in windows.values()]
    return (
        None if any(x is None for x in los) else min(x for x in los if x is not None),
        None if any(x is None for x in his) else max(x for x in his if x is not None),
    )


def _alerts_frame(
    rule: Rule,
    out: RuleOutput,
    hits: np.ndarray,
    index: pd.DatetimeIndex,
    columns: Sequence[str],
    timeframe: str,
) -> pd.DataFrame:
    """Return the alerts of one rule's ``hits`` (bars x symbols) as an ALERT_COLUMNS frame."""
    ti, si = np.nonzero(hits)
    if not len(ti):
        return empty_alerts()
    keys = list(out.conditions)
    values = np.column_stack([out.conditions[k][ti, si] for k in keys]).tolist() if keys else []
    conditions = [
        {k: (None if v != v else v) for k, v in zip(keys, row, strict=True)} for row in values
    ] or [{} for _ in ti]
    metadata = {"timeframe": timeframe, "params": rule.params}
    return pd.DataFrame(
        {
            "symbol": pd.array(np.asarray(columns, dtype=object)[si], dtype="str"),
            "rule": pd.array([rule.name] * len(ti), dtype="str"),
            "ts": index[ti],
            "trigger_price": out.trigger[ti, si].astype(np.float64),
            "conditions": conditions,
            "metadata": [metadata] * len(ti),
        }
    )


def evaluate(
    rules: Sequence[Rule], data: Mapping[str, np.ndarray], *, new_only: bool = False
) -> list[tuple[RuleOutput, np.ndarray]]:
    """Return each rule's output on ``data`` and the bars it alerts on (bars x symbols).

    A bar without a close never alerts; with ``new_only`` a bar alerts only when the
    rule did not fire on the row before it.
    """
    valid = ~np.isnan(data["close"])
    results = []
    for rule in rules:
        out = rule.evaluate(data)
        hits = out.hits & valid
        if new_only:
            before = np.zeros_like(hits)
            before[1:] = hits[:-1]
            hits = hits & ~before
        results.append((out, hits))
    return results


def scan(
    bars_or_store: Any,
    rules: RulesLike,
    date: Any = None,
    start: Any = None,
    end: Any = None,
    *,
    timeframe: str = "1d",
    new_only: bool = False,
    symbols: Sequence[str] | None = None,
    regimes: pd.DataFrame | None = None,
    sentiment: pd.DataFrame | None = None,
) -> ScanAlerts:
    """Return the alerts of a rule set over a whole universe, by bar, rule and symbol.

    Parameters
    ----------
    bars_or_store
        Long bars (``symbol, ts, open, high, low, close, volume``), a mapping of wide
        panels (field -> frame), a :class:`~quantdesk.data.store.market.MarketStore`, or the
        path of a store file.
    rules
        Built-in rule names (``gap_up``, ``gap_down``, ``volume_spike``, ``new_high``,
        ``new_low``, ``ma_cross``, ...), rule objects, or a YAML rule-set file.
    date
        Alert on the bars of this day only: the whole day in each symbol's time zone
        (the store's symbols table; UTC for bars in memory).
    start, end
        Alert on the bars between these (inclusive): a backfill.  A bound given as a
        day is that whole day, one with a time part an instant
        (:func:`~quantdesk.data.timestamps.bound_window`).  Without ``date``,
        ``start`` or ``end`` the scan alerts on the latest bar.  A one-day scan alerts
        on exactly what a backfill over that day does: each rule's look-back is read
        at the scanned timeframe, also when it is built from finer stored bars.
    timeframe
        The bar length (read from the store at this timeframe; metadata otherwise).
    new_only
        Alert only when a symbol newly enters a rule's scan (not on its previous bar).
    symbols
        Scan only these (default: every symbol).
    regimes
        For ``regime_change`` on bars in memory: stored-style regimes (long, with
        ``symbol, ts, state``) or a wide panel of states.  Read from the store otherwise.
    sentiment
        For ``sentiment_shock`` on bars in memory: a wide panel of daily mean sentiment.
        Computed from the store's scored news otherwise.

    Returns
    -------
    ScanAlerts
        A DataFrame (showing a summary in a notebook) with the columns
        :data:`~quantdesk.data.schemas.ALERT_COLUMNS`, sorted by ``ts``,
        ``rule``, ``symbol``; ``conditions`` and ``metadata`` are dicts.
    """
    rule_list = resolve_rules(rules)
    timeframe_ = parse_timeframe(timeframe)
    tf = timeframe_.name
    # One more bar than the rules look back: new_only compares with the bar before.
    lookback = max(r.lookback for r in rule_list) + (1 if new_only else 0)
    needed = set().union(*(r.fields for r in rule_list)) | {"close"}
    value_fields = [f for f in VALUE_FIELDS if f in needed]
    unknown = sorted(needed - set(VALUE_FIELDS) - set(EXTRA_FIELDS))
    if unknown:
        raise ValueError(f"rules read unknown field(s) {unknown}")

    from quantdesk.data.store.market import MarketStore, as_store

    store: MarketStore | None = None
    if isinstance(bars_or_store, (MarketStore, str, Path)):
        store = as_store(bars_or_store, read_only=True)
    zones: dict[str, str] = {}
    if store is not None:
        meta = store.metadata(symbols)
        zones = dict(zip(meta["symbol"].astype(str), meta["timezone"].astype(str), strict=True))
    windows = _windows(date, start, end, zones, timeframe_.is_daily)
    lo, hi = _span(windows)
    if store is not None:
        panels = _store_panels(store, value_fields, symbols, lo, hi, lookback, timeframe_)
    elif isinstance(bars_or_store, pd.DataFrame):
        panels = _long_panels(bars_or_store, value_fields, symbols, lo, hi, lookback)
    elif isinstance(bars_or_store, Mapping):
        panels = _wide_panels(bars_or_store, value_fields, symbols, lo, hi, lookback)
    else:
        raise TypeError(
            f"scan() takes bars, wide panels or a store, not {type(bars_or_store).__name__}"
        )
    close = panels["close"]
    if close.empty:
        return ScanAlerts(empty_alerts())
    if "regime" in needed:
        panels["regime"] = _regime_panel(regimes, store, close)
    if "sentiment" in needed:
        panels["sentiment"] = _sentiment_panel(sentiment, store, close)
    data = {f: panels[f].to_numpy(dtype=np.float64) for f in needed}
    keep = _kept_bars(pd.DatetimeIndex(close.index), list(close.columns), windows, zones)
    frames = []
    for rule, (out, hits) in zip(
        rule_list, evaluate(rule_list, data, new_only=new_only), strict=True
    ):
        hits &= keep
        frames.append(
            _alerts_frame(rule, out, hits, pd.DatetimeIndex(close.index), list(close.columns), tf)
        )
    alerts = pd.concat([f for f in frames if len(f)] or [empty_alerts()], ignore_index=True)
    alerts = alerts.sort_values(["ts", "rule", "symbol"], kind="stable", ignore_index=True)
    logger.info(
        "scan: %d rules over %d symbols x %d bars: %d alerts",
        len(rule_list),
        close.shape[1],
        int(keep.any(axis=1).sum()),
        len(alerts),
    )
    return ScanAlerts(alerts)


def _kept_bars(
    index: pd.DatetimeIndex,
    columns: Sequence[str],
    windows: Mapping[str, Window],
    zones: Mapping[str, str],
) -> np.ndarray:
    """Return which bars (bars x symbols) to alert on: each symbol's window, or the latest bar."""
    keep = np.zeros((len(index), len(columns)), dtype=bool)
    for j, symbol in enumerate(columns):
        lo, hi = windows[zones.get(symbol, "UTC")]
        if lo is None and hi is None:
            keep[-1:, j] = True
            continue
        rows = np.ones(len(index), dtype=bool)
        if lo is not None:
            rows &= np.asarray(index >= lo)
        if hi is not None:
            rows &= np.asarray(index < hi)
        keep[:, j] = rows
    return keep


def _first_kept(times: pd.DatetimeIndex, lo: pd.Timestamp | None, lookback: int) -> Any:
    """Return the earliest bar time to read: ``lookback`` distinct bars before ``lo``."""
    if lo is None:
        return times[max(len(times) - 1 - lookback, 0)] if len(times) else None
    pos = int(times.searchsorted(lo, side="left"))
    return times[max(pos - lookback, 0)] if len(times) else None


def _long_panels(
    bars: pd.DataFrame,
    fields: list[str],
    symbols: Sequence[str] | None,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    lookback: int,
) -> dict[str, pd.DataFrame]:
    missing = [c for c in ("symbol", "ts", *fields) if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {missing}")
    ts = pd.to_datetime(bars["ts"], utc=True)
    mask = np.ones(len(bars), dtype=bool)
    if symbols is not None:
        mask &= bars["symbol"].isin(list(symbols)).to_numpy()
    if hi is not None:
        mask &= (ts < hi).to_numpy()
    times = pd.DatetimeIndex(pd.unique(ts[mask])).sort_values()
    first = _first_kept(times, lo, lookback)
    if first is not None:
        mask &= (ts >= first).to_numpy()
    picked = bars.loc[mask, ["symbol", *fields]].assign(ts=ts[mask])
    return to_wide(picked, fields)


def _wide_panels(
    panels: Mapping[str, pd.DataFrame],
    fields: list[str],
    symbols: Sequence[str] | None,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    lookback: int,
) -> dict[str, pd.DataFrame]:
    missing = [f for f in fields if f not in panels]
    if missing:
        raise ValueError(f"panels lack field(s) {missing}")
    close = panels["close"]
    index = pd.DatetimeIndex(close.index)
    if index.tz is None:
        index = index.tz_localize("UTC")
    rows = np.ones(len(index), dtype=bool) if hi is None else np.asarray(index < hi)
    first = _first_kept(index[rows], lo, lookback)
    if first is not None:
        rows &= np.asarray(index >= first)
    cols = list(close.columns) if symbols is None else [s for s in close.columns if s in symbols]
    out = {}
    for f in fields:
        frame = panels[f].loc[rows, cols]
        frame.index = index[rows]
        out[f] = frame
    return out


def _store_panels(
    store: MarketStore,
    fields: list[str],
    symbols: Sequence[str] | None,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    lookback: int,
    timeframe: Timeframe,
) -> dict[str, pd.DataFrame]:
    """Return the panels of ``[lo, hi)`` at ``timeframe`` and ``lookback`` bars before ``lo``.

    ``hi`` None reads up to the latest bar; ``lo`` None reads ``lookback`` bars before it.
    """
    from quantdesk.data.store.locking import connect

    def fetch(con: Any, query: str, params: dict[str, Any]) -> pd.DataFrame:
        frame: pd.DataFrame = con.sql(query, params=params).to_arrow_table().to_pandas()
        return frame

    tf = timeframe.name
    syms = list(symbols) if symbols is not None else None
    # One short read-only connection for the whole plan: each one costs tens of ms.
    with connect(store.path, write=False, lock_timeout=store.lock_timeout) as con:
        held = fetch(
            con,
            "SELECT max(ts) FILTER (WHERE timeframe = $tf) AS latest, "
            "count(DISTINCT symbol) FILTER (WHERE timeframe = $tf) AS native, "
            "count(DISTINCT symbol) AS symbols, min(ts) AS earliest, max(ts) AS last FROM bars "
            "WHERE $syms IS NULL OR list_contains($syms, symbol)",
            {"tf": tf, "syms": syms},
        ).iloc[0]
        native = held["native"] == held["symbols"] and syms is None
        if hi is None and native and not pd.isna(held["latest"]):
            hi = cast(pd.Timestamp, as_utc(held["latest"])) + _ONE_US
        # Without a start, the look-back is counted back from the last bar read.
        anchor = lo if lo is not None else (None if hi is None else hi - _ONE_US)
        if native:
            first = None
            if anchor is not None:
                # Bars are read from `lookback` stored bars before the range, not all history.
                before = fetch(
                    con,
                    "SELECT min(ts) AS ts FROM (SELECT DISTINCT ts FROM bars "
                    "WHERE timeframe = $tf AND ts < $lo ORDER BY ts DESC LIMIT $n)",
                    {"tf": tf, "lo": anchor.to_pydatetime(warn=False), "n": lookback},
                )["ts"].iloc[0]
                first = anchor if pd.isna(before) else as_utc(before)
            # Every symbol is stored at this timeframe: one SQL read, without the
            # per-symbol planning of MarketStore.panels (seconds at 9,000 symbols).
            bars = fetch(
                con,
                f"SELECT symbol, ts, {', '.join(fields)} FROM bars WHERE timeframe = $tf "
                "AND ($lo IS NULL OR ts >= $lo) AND ($hi IS NULL OR ts < $hi)",
                {
                    "tf": tf,
                    "lo": None if first is None else first.to_pydatetime(warn=False),
                    "hi": None if hi is None else hi.to_pydatetime(warn=False),
                },
            )
    if native:
        bars["ts"] = pd.to_datetime(bars["ts"], utc=True).dt.as_unit("ns")
        return panels_from_bars(bars, fields, tf)
    if pd.isna(held["earliest"]):
        return store.panels(fields, symbols, timeframe=tf)  # no bars: the store says which
    # Some symbols are aggregated from finer bars (or asked-for symbols must be checked):
    # the store's general reader does that.  The look-back is counted in bars of the
    # scanned timeframe, so the read reaches back until it holds `lookback` of them
    # before the range or the start of the stored history.
    end = None if hi is None else hi - _ONE_US
    # Without a start, the last bar read is needed besides its look-back.
    needed = lookback if lo is not None else lookback + 1
    anchor = as_utc(held["last"]) if end is None else end
    assert anchor is not None
    anchor = anchor + _ONE_US if lo is None else lo
    # A bar's label may lie before its first stored bar (a week's Monday, a day in a
    # zone behind UTC): history is complete once the read starts that far earlier.
    margin = pd.Timedelta(seconds=timeframe.seconds) + pd.Timedelta(
        days=31 if timeframe.is_calendar else 2
    )
    complete_from = cast(pd.Timestamp, as_utc(held["earliest"])) - margin
    span = pd.Timedelta(seconds=timeframe.seconds) * (lookback + 1) * 2 + pd.Timedelta(days=7)
    while True:
        begin = anchor - span
        panels = store.panels(fields, symbols, start=begin, end=end, timeframe=tf)
        index = pd.DatetimeIndex(panels["close"].index)
        if begin <= complete_from or int((index < anchor).sum()) >= needed:
            return _trim_history(panels, index, anchor if lo is not None else None, lookback)
        span *= 4


def _trim_history(
    panels: dict[str, pd.DataFrame],
    index: pd.DatetimeIndex,
    lo: pd.Timestamp | None,
    lookback: int,
) -> dict[str, pd.DataFrame]:
    """Return ``panels`` from ``lookback`` bars before ``lo`` (before the last bar when None)."""
    first = _first_kept(index, lo, lookback)
    if first is None:
        return panels
    rows = np.asarray(index >= first)
    return {f: frame.loc[rows] for f, frame in panels.items()}


def _regime_panel(
    regimes: pd.DataFrame | None, store: MarketStore | None, close: pd.DataFrame
) -> pd.DataFrame:
    if regimes is None:
        if store is None:
            raise ValueError(
                "rule regime_change needs regimes: pass regimes= (long symbol, ts, state "
                "or a wide panel of states) or scan a store that holds them"
            )
        regimes = store.regimes(list(close.columns), start=close.index[0], end=close.index[-1])
    if {"symbol", "ts", "state"} <= set(regimes.columns):
        long = regimes.assign(ts=pd.to_datetime(regimes["ts"], utc=True))
        wide = to_wide(long.assign(state=long["state"].astype(float)), ["state"])["state"]
    else:
        wide = regimes.astype(float)
    return wide.reindex(index=close.index, columns=close.columns)


def _sentiment_panel(
    sentiment: pd.DataFrame | None, store: MarketStore | None, close: pd.DataFrame
) -> pd.DataFrame:
    if sentiment is None:
        if store is None:
            raise ValueError(
                "rule sentiment_shock needs sentiment: pass sentiment= (a wide panel of "
                "daily scores) or scan a store with scored news"
            )
        from quantdesk.data.store.news import NewsStore
        from quantdesk.signals.sentiment import daily_sentiment

        news = NewsStore(store).scored_news(list(close.columns))
        sentiment = daily_sentiment(
            news, pd.DatetimeIndex(close.index), symbols=list(close.columns)
        ).mean
    return sentiment.astype(float).reindex(index=close.index, columns=close.columns)
