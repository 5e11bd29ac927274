"""A symbol's regimes at a glance: the current regime, recent bars, per-regime stats.

:func:`current_regime` is the one reading of "the current regime" (the regime of the
newest row, its probability, since when it has held): ``quantdesk regimes show``
(:func:`regime_snapshot`), the market monitor's regime pane, the regime explorer and the
regime report all take it from there, from stored regimes or from a model's filtered
ones.  :func:`regime_snapshot` is what ``quantdesk regimes show`` prints; a notebook
or a dashboard gets the same numbers from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.core.html import summary_html, summary_text
from quantdesk.core.jsonable import jsonable
from quantdesk.data.schemas import (
    REGIME_CELL_NAMES,
    REGIME_PROBABILITY_COLUMNS,
    regime_probability_column,
)

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore

__all__ = ["CurrentRegime", "RegimeSnapshot", "current_regime", "regime_snapshot"]


@dataclass(frozen=True)
class CurrentRegime:
    """Return-value of :func:`current_regime`: the regime of a symbol's newest row.

    Attributes
    ----------
    symbol : str
    state : int
        The cell id (``vol_index * 3 + trend_index``).
    vol_label, trend_label : str
    probability : float
        The probability of the regime's own cell on the newest row.
    probabilities : dict of str to float
        The nine cell probabilities of the newest row, keyed ``"vol/trend"`` in cell order.
    since : pandas.Timestamp
        The first row of the run of this regime that the newest row ends (UTC).
    as_of : pandas.Timestamp
        The newest row (UTC).
    source : str
        Where the regimes come from (the stored ``model_version``, or what the caller says).
    """

    symbol: str
    state: int
    vol_label: str
    trend_label: str
    probability: float
    probabilities: dict[str, float]
    since: pd.Timestamp
    as_of: pd.Timestamp
    source: str = ""

    @property
    def label(self) -> str:
        """Return the regime in words: ``"high volatility, bullish trend"``."""
        return f"{self.vol_label} volatility, {self.trend_label} trend"

    def _headline(self) -> dict[str, Any]:
        return {
            "as of": self.as_of,
            "regime": self.label,
            "probability": self.probability,
            "since": self.since,
            "source": self.source,
        }

    def __repr__(self) -> str:
        return summary_text(f"CurrentRegime {self.symbol}", self._headline())

    def _repr_html_(self) -> str:
        return summary_html(f"CurrentRegime {self.symbol}", self._headline())

    def to_dict(self) -> dict[str, Any]:
        """Return the current regime as one JSON-able document."""
        doc: dict[str, Any] = jsonable({**self.__dict__, "label": self.label})
        return doc


def current_regime(
    regimes: pd.DataFrame | MarketStore | str | Path,
    symbol: str | None = None,
    *,
    version: str | None = None,
    source: str | None = None,
) -> CurrentRegime:
    """Return the current regime: the newest row's regime, its probability and its start.

    Parameters
    ----------
    regimes
        Regime rows (``state``, ``vol_label``, ``trend_label`` and the nine ``p_*``;
        ``ts`` as index or column): a model's :meth:`~quantdesk.regimes.model.RegimeModel.filter`
        output or stored rows; or a store (or its path) to read ``symbol``'s stored
        regimes from.
    symbol
        The symbol (needed with a store; with a frame holding a ``symbol`` column,
        the rows of that symbol).
    version
        With a store: the stored ``model_version`` or glob (default the newest estimate
        for every day, as :meth:`MarketStore.regimes`).
    source
        Where the regimes come from, shown with them (default the newest row's
        ``model_version`` when the rows have one).

    Raises
    ------
    LookupError
        No regime rows (the message says how to fit them).

    Examples
    --------
    >>> frame = pd.DataFrame(
    ...     {"state": [8, 0, 0], "vol_label": ["high", "low", "low"],
    ...      "trend_label": ["bullish", "bearish", "bearish"],
    ...      **{c: [0.0] * 3 for c in REGIME_PROBABILITY_COLUMNS}},
    ...     index=pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"], name="ts"),
    ... ).assign(p_low_bearish=[0.1, 0.7, 0.9], p_high_bullish=[0.9, 0.3, 0.1])
    >>> now = current_regime(frame, "SPX", source="demo")
    >>> now.label, now.probability, f"{now.since:%F}", f"{now.as_of:%F}"
    ('low volatility, bearish trend', 0.9, '2024-01-03', '2024-01-04')
    """
    if isinstance(regimes, pd.DataFrame):
        frame = regimes
        if symbol is not None and "symbol" in frame.columns:
            frame = frame.loc[frame["symbol"].astype(str) == symbol]
    else:
        from quantdesk.data.store.market import as_store

        if symbol is None:
            raise ValueError("current_regime of a store needs the symbol")
        if as_store(regimes).exists():  # a handle opens nothing; a missing store holds none
            store = as_store(regimes, read_only=True)
            frame = store.regimes(symbol, model_version=version)
        else:
            frame = pd.DataFrame()
    name = symbol if symbol is not None else ""
    if frame.empty:
        raise LookupError(
            f"no regimes stored for {name!r}; run `quantdesk regimes fit --symbols {name}`"
        )
    if "ts" in frame.columns:
        frame = frame.set_index("ts")
    stamps = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True))
    order = stamps.argsort(kind="stable")
    frame, stamps = frame.iloc[order], stamps[order]
    states = frame["state"].to_numpy()
    changed = (states != states[-1]).nonzero()[0]
    start = int(changed[-1]) + 1 if len(changed) else 0
    last = frame.iloc[-1]
    if source is None:
        source = str(last["model_version"]) if "model_version" in frame.columns else ""
    return CurrentRegime(
        symbol=name,
        state=int(last["state"]),
        vol_label=str(last["vol_label"]),
        trend_label=str(last["trend_label"]),
        probability=_cell_probability(last),
        probabilities={
            cell: float(last[column])
            for cell, column in zip(REGIME_CELL_NAMES, REGIME_PROBABILITY_COLUMNS, strict=True)
        },
        since=stamps[start],
        as_of=stamps[-1],
        source=source,
    )


@dataclass(frozen=True)
class RegimeSnapshot:
    """A symbol's stored regimes: the latest row, the last bars and per-regime statistics.

    Attributes
    ----------
    symbol : str
    regimes : pandas.DataFrame
        Every stored regime row of the symbol (the selected versions), indexed by ``ts``.
    recent : pandas.DataFrame
        The last rows of ``regimes`` asked for.
    stats : pandas.DataFrame
        :func:`~quantdesk.regimes.analysis.regime_stats` of the same-bar returns, with the
        ``expected_duration`` of each regime from its empirical transitions.
    """

    symbol: str
    regimes: pd.DataFrame
    recent: pd.DataFrame
    stats: pd.DataFrame

    @property
    def current(self) -> pd.Series:
        """Return the latest regime row."""
        return self.regimes.iloc[-1]

    @property
    def now(self) -> CurrentRegime:
        """Return the current regime (:func:`current_regime` of these rows)."""
        return current_regime(self.regimes, self.symbol)

    @property
    def probabilities(self) -> dict[str, float]:
        """Return the latest probability of each cell, keyed ``"vol/trend"``."""
        return self.now.probabilities

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as one JSON-able document (what ``--json`` prints)."""
        current = self.current
        doc: dict[str, Any] = jsonable(
            {
                "symbol": self.symbol,
                "current": {
                    "ts": self.regimes.index[-1],
                    "model_version": current["model_version"],
                    "state": int(current["state"]),
                    "vol_label": current["vol_label"],
                    "trend_label": current["trend_label"],
                    "probabilities": self.probabilities,
                },
                "history": [
                    {
                        "ts": ts,
                        "model_version": row["model_version"],
                        "state": int(row["state"]),
                        "vol_label": row["vol_label"],
                        "trend_label": row["trend_label"],
                        "probability": _cell_probability(row),
                    }
                    for ts, row in self.recent.iterrows()
                ],
                "stats": [
                    {"regime": name, **row} for name, row in self.stats.to_dict("index").items()
                ],
            }
        )
        return doc

    def _headline(self) -> dict[str, Any]:
        now = self.now
        return {
            "as of": now.as_of,
            "regime": now.label,
            "probability": now.probability,
            "since": now.since,
            "model": now.source,
        }

    def __repr__(self) -> str:
        return summary_text(f"RegimeSnapshot {self.symbol}", self._headline())

    def _repr_html_(self) -> str:
        probabilities = pd.Series(self.probabilities, name="probability").sort_values(
            ascending=False
        )
        details = {
            "probabilities": probabilities,
            f"last {len(self.recent)} bars": self.recent,
            "statistics by regime": self.stats,
        }
        return summary_html(f"RegimeSnapshot {self.symbol}", self._headline(), details)

    def summary(self) -> str:
        """Return the current regime, its probabilities, the recent bars and the stats."""
        now = self.now
        lines = [
            f"{self.symbol} {now.as_of:%Y-%m-%d}: {now.label} (model {now.source}), "
            f"since {now.since:%Y-%m-%d}",
            "probabilities:",
        ]
        for cell, p in sorted(self.probabilities.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {cell:<16} {p:6.1%}")
        lines.append(f"last {len(self.recent)} bars:")
        for ts, row in self.recent.iterrows():
            lines.append(
                f"  {ts:%Y-%m-%d}  {row['vol_label']:<6} {row['trend_label']:<8} "
                f"{_cell_probability(row):6.1%}"
            )
        lines.append(
            f"per-regime statistics ({len(self.regimes)} bars, same-bar returns, annualised):"
        )
        table = self.stats[
            ["count", "frequency", "ann_return", "ann_vol", "sharpe", "expected_duration"]
        ].rename(columns={"expected_duration": "mean_stay"})
        lines.append(table.to_string(float_format=lambda x: f"{x:.3f}"))
        return "\n".join(lines)


def _cell_probability(row: pd.Series) -> float:
    """Return the probability of the row's own (most probable) cell."""
    return float(row[regime_probability_column(row["vol_label"], row["trend_label"])])


def regime_snapshot(
    store: MarketStore, symbol: str, *, last: int = 10, version: str | None = None
) -> RegimeSnapshot:
    """Return a symbol's stored regimes with the current one, recent bars and statistics.

    Parameters
    ----------
    store : MarketStore
        The store holding the symbol's regimes and daily closes.
    symbol : str
    last : int
        Bars of recent history to keep in :attr:`RegimeSnapshot.recent`.
    version : str, optional
        Stored ``model_version`` or glob (``"regimes-wf/v1/*"``); default the newest
        estimate for every day.

    Raises
    ------
    LookupError
        When no regimes are stored for the symbol (the message says how to fit them).
    quantdesk.data.UnknownSymbolError
        When the store holds no prices for the symbol.
    """
    from quantdesk.regimes.analysis import (
        empirical_transition_matrix,
        expected_durations,
        regime_stats,
    )

    regimes = store.regimes(symbol, model_version=version)
    if regimes.empty:
        raise LookupError(
            f"no regimes stored for {symbol!r}; run `quantdesk regimes fit --symbols {symbol}`"
        )
    regimes = regimes.set_index("ts")
    close = store.panel("close", symbols=[symbol])
    returns = close[symbol].pct_change() if symbol in close.columns else close.iloc[:, 0]
    stats = regime_stats(returns, regimes)
    stats["expected_duration"] = expected_durations(
        empirical_transition_matrix(regimes["state"])
    ).to_numpy()
    return RegimeSnapshot(symbol, regimes, regimes.tail(max(last, 0)), stats)
