"""A symbol's stored regimes at a glance: the current regime, recent bars, per-regime stats.

:func:`regime_snapshot` is what ``quantdesk regimes show`` prints; a notebook or a
dashboard gets the same numbers from it.
"""

from __future__ import annotations

from dataclasses import dataclass
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

__all__ = ["RegimeSnapshot", "regime_snapshot"]


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
    def probabilities(self) -> dict[str, float]:
        """Return the latest probability of each cell, keyed ``"vol/trend"``."""
        current = self.current
        return {
            name: float(current[column])
            for name, column in zip(REGIME_CELL_NAMES, REGIME_PROBABILITY_COLUMNS, strict=True)
        }

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
        current = self.current
        return {
            "as of": self.regimes.index[-1],
            "regime": f"{current['vol_label']} volatility, {current['trend_label']} trend",
            "probability": _cell_probability(current),
            "model": current["model_version"],
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
        current = self.current
        lines = [
            f"{self.symbol} {self.regimes.index[-1]:%Y-%m-%d}: {current['vol_label']} "
            f"volatility, {current['trend_label']} trend (model {current['model_version']})",
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
