"""What the regimes say about returns: per-regime statistics, transitions, durations, figures.

The statistics are pure functions of a return series and a regime frame (the output of
:meth:`~quantdesk.regimes.model.RegimeModel.filter`, of
:func:`~quantdesk.regimes.walkforward.walk_forward` or of
:meth:`~quantdesk.data.store.market.MarketStore.regimes`); the figures draw those frames with
HoloViews, loaded on the first call.

Cells are numbered as everywhere in :mod:`quantdesk.regimes`: ``vol_index * 3 +
trend_index`` over ``VOL_LABELS = ("low", "medium", "high")`` and ``TREND_LABELS =
("bearish", "neutral", "bullish")``; a cell's name is ``"{vol}/{trend}"`` (as in
:meth:`RegimeModel.transition_matrix`) and its probability column ``"p_{vol}_{trend}"``.

Examples
--------
>>> states = pd.Series([0, 0, 0, 4, 4, 0])
>>> tm = empirical_transition_matrix(states)
>>> float(tm.loc["low/bearish", "low/bearish"]), float(tm.loc["low/bearish", "medium/neutral"])
(0.6666666666666666, 0.3333333333333333)
>>> round(float(expected_durations(tm)["low/bearish"]), 6)
3.0
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd

from quantdesk.core import charts, markov
from quantdesk.data.frequency import resolve_periods_per_year
from quantdesk.data.schemas import (
    REGIME_CELL_NAMES,
    REGIME_PROBABILITY_COLUMNS,
    TREND_LABELS,
    VOL_LABELS,
)

__all__ = [
    "empirical_transition_matrix",
    "expected_durations",
    "price_by_regime_figure",
    "regime_probability_figure",
    "regime_stats",
]

logger = logging.getLogger(__name__)

N_CELLS = len(REGIME_CELL_NAMES)


def _states(regimes: pd.DataFrame | pd.Series) -> pd.Series:
    """Return the cell ids of ``regimes`` as an integer-valued Series indexed by ts.

    A long frame with a ``ts`` column (one symbol) is indexed by it; a Series is taken as
    the cell ids themselves.
    """
    if isinstance(regimes, pd.DataFrame):
        if "state" not in regimes.columns:
            raise ValueError("regimes needs a 'state' column (cell ids 0..8)")
        if "symbol" in regimes.columns and regimes["symbol"].nunique() > 1:
            raise ValueError("regimes holds several symbols; pass one symbol's rows")
        frame = regimes.set_index("ts") if "ts" in regimes.columns else regimes
        states = frame["state"]
    else:
        states = regimes
    values = pd.to_numeric(states, errors="coerce")
    present = values.dropna()
    if len(present) and ((present % 1 != 0).any() or present.min() < 0 or present.max() >= N_CELLS):
        raise ValueError(f"states must be cell ids 0..{N_CELLS - 1}")
    return values.astype("float64")


def regime_stats(
    returns: pd.Series,
    regimes: pd.DataFrame | pd.Series,
    periods_per_year: float | None = None,
    *,
    lag: int = 0,
) -> pd.DataFrame:
    """Return per-regime frequency, annualised return and volatility, Sharpe and count.

    Parameters
    ----------
    returns
        Per-period returns (simple or log) indexed like the regimes.
    regimes
        A frame with a ``state`` column of cell ids indexed by ts, or with a ``ts``
        column (one symbol's rows of a long frame), or a Series of cell ids.
    periods_per_year
        Periods in a year, for annualising; ``None`` reads it from the returns'
        ``attrs['timeframe']`` or index (252 daily, 52 weekly, 12 monthly, hourly by the
        session hours the data show).
    lag
        Periods by which the regime is shifted before pairing: 0 pairs the return of
        period t with the regime of t (descriptive: how the market behaved in each
        regime); 1 pairs it with the regime known at t-1 (what a position taken on the
        filtered regime would have earned).

    Returns
    -------
    pandas.DataFrame
        One row per cell in cell order (index: cell names ``"{vol}/{trend}"``, all nine,
        empty cells included) with columns ``state, vol_label, trend_label, count,
        frequency, ann_return, ann_vol, sharpe``.  ``ann_return`` is the mean return
        times ``periods_per_year``, ``ann_vol`` the sample standard deviation (ddof 1)
        times its square root, ``sharpe`` their ratio (no risk-free rate); a cell with
        fewer than two observations has NaN volatility and Sharpe.

    Examples
    --------
    >>> r = pd.Series([0.01, 0.03, -0.02, 0.0])
    >>> stats = regime_stats(r, pd.Series([0, 0, 8, 8]), periods_per_year=1)
    >>> int(stats.loc["low/bearish", "count"]), float(stats.loc["low/bearish", "ann_return"])
    (2, 0.02)
    """
    ppy = resolve_periods_per_year(periods_per_year, returns, what="returns")
    states = _states(regimes)
    if lag:
        states = states.shift(lag)
    paired = pd.concat(
        {"r": pd.to_numeric(returns, errors="coerce").astype("float64"), "s": states},
        axis=1,
        join="inner",
    ).dropna()
    if len(paired) == 0 and len(returns) and len(states):
        logger.warning("regime_stats: returns and regimes share no index values")
    grouped = paired.groupby(paired["s"].astype("int64"))["r"]
    count = grouped.count().reindex(range(N_CELLS), fill_value=0)
    mean = grouped.mean().reindex(range(N_CELLS))
    std = grouped.std(ddof=1).reindex(range(N_CELLS))
    ann_return = mean * ppy
    ann_vol = std * np.sqrt(ppy)
    total = int(count.sum())
    out = pd.DataFrame(
        {
            "state": np.arange(N_CELLS),
            "vol_label": [v for v in VOL_LABELS for _ in TREND_LABELS],
            "trend_label": [t for _ in VOL_LABELS for t in TREND_LABELS],
            "count": count.to_numpy(dtype="int64"),
            "frequency": count.to_numpy(dtype=float) / total if total else np.nan,
            "ann_return": ann_return.to_numpy(),
            "ann_vol": ann_vol.to_numpy(),
        },
        index=pd.Index(REGIME_CELL_NAMES, name="regime"),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        out["sharpe"] = np.where(out["ann_vol"] > 0, out["ann_return"] / out["ann_vol"], np.nan)
    return out


def empirical_transition_matrix(states: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """Return the row-normalised 9x9 matrix of observed bar-to-bar cell transitions.

    Entry ``[i, j]`` is the share of the periods spent in cell ``i`` (that have a next
    period) that were followed by cell ``j``.  Consecutive positions of ``states`` are
    consecutive periods; a missing state breaks the chain (no transition is counted
    into or out of it).  A cell never left (never visited, or only as the last
    observation) has a row of NaN.

    Parameters
    ----------
    states
        Cell ids 0..8 in time order, or a regime frame with a ``state`` column.

    Returns
    -------
    pandas.DataFrame
        Index ``from`` and columns ``to``, both the nine cell names in cell order.
    """
    values = _states(states).to_numpy()
    prev, nxt = values[:-1], values[1:]
    ok = ~(np.isnan(prev) | np.isnan(nxt))
    counts = np.zeros((N_CELLS, N_CELLS))
    np.add.at(counts, (prev[ok].astype(np.int64), nxt[ok].astype(np.int64)), 1.0)
    rows = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        matrix = np.where(rows > 0, counts / rows, np.nan)
    return pd.DataFrame(
        matrix,
        index=pd.Index(REGIME_CELL_NAMES, name="from"),
        columns=pd.Index(REGIME_CELL_NAMES, name="to"),
    )


def expected_durations(transition_matrix: pd.DataFrame | np.ndarray) -> pd.Series:
    """Return each state's expected stay in periods, ``1 / (1 - p_ii)``.

    A Markov chain leaves state ``i`` each period with probability ``1 - p_ii``, so its
    stays are geometric with that mean.  An absorbing state (``p_ii = 1``) lasts
    forever (``inf``); a row of NaN (an unvisited cell) gives NaN.

    Parameters
    ----------
    transition_matrix
        Square matrix of transition probabilities (rows: from, columns: to), a
        DataFrame (its index names the result) or an array.

    Returns
    -------
    pandas.Series
        Expected duration per state, named ``expected_duration``.
    """
    durations = markov.expected_durations(transition_matrix)
    index = (
        transition_matrix.index
        if isinstance(transition_matrix, pd.DataFrame)
        else pd.RangeIndex(len(durations))
    )
    return pd.Series(durations, index=index, name="expected_duration")


# -- figures ---------------------------------------------------------------------------


def _indexed(regimes: pd.DataFrame) -> pd.DataFrame:
    """Return one symbol's regime frame indexed by ``ts``."""
    if "symbol" in regimes.columns and regimes["symbol"].nunique() > 1:
        raise ValueError("regimes holds several symbols; pass one symbol's rows")
    frame = regimes.set_index("ts") if "ts" in regimes.columns else regimes
    return frame.sort_index()


def price_by_regime_figure(
    close: pd.Series,
    regimes: pd.DataFrame,
    *,
    color_by: Literal["cell", "vol", "trend"] = "cell",
    logy: bool = False,
) -> Any:
    """Return the price as a grey line with each bar's point coloured by its regime.

    Parameters
    ----------
    close
        Closing prices indexed by ts.
    regimes
        One symbol's regimes (``state``, ``vol_label``, ``trend_label``) indexed by ts or
        with a ``ts`` column; bars without a regime are left uncoloured.
    color_by
        ``"cell"`` (nine colours: hue by trend, depth by volatility), ``"vol"`` or
        ``"trend"`` (three colours each).
    logy
        Draw the price on a log scale.

    Returns
    -------
    holoviews.Overlay
        A ``Curve`` labelled ``"Price"`` and a ``Scatter`` labelled ``"Regime"`` with
        value dimensions ``close`` and ``regime``.
    """
    hv = charts.load_holoviews()
    palette = charts.regime_palette(color_by)
    frame = _indexed(regimes)
    price = pd.to_numeric(close, errors="coerce").astype("float64")
    joined = pd.DataFrame({"close": price}).join(frame[["vol_label", "trend_label"]], how="inner")
    joined = joined.dropna()
    if color_by == "cell":
        joined["regime"] = joined["vol_label"] + "/" + joined["trend_label"]
    else:
        joined["regime"] = joined[f"{color_by}_label"]
    x = "ts"
    line = hv.Curve(
        pd.DataFrame({x: price.index, "close": price.to_numpy()}),
        kdims=[x],
        vdims=["close"],
        label="Price",
    ).opts(color=charts.MUTED_COLOR, line_width=1)
    points = pd.DataFrame(
        {x: joined.index, "close": joined["close"].to_numpy(), "regime": joined["regime"]}
    )
    present = [name for name in palette if name in set(points["regime"])]
    scatter = hv.Scatter(points, kdims=[x], vdims=["close", "regime"], label="Regime").opts(
        color=hv.dim("regime").categorize({k: palette[k] for k in present}, default="#000000"),
        size=3,
        **charts.hover_options(
            [("close", "Close", "price"), ("regime", "Regime", "text")], x=x, index=joined.index
        ),
    )
    return (line * scatter).opts(
        hv.opts.Overlay(
            title=f"Price by regime ({color_by})",
            width=charts.WIDTH,
            height=charts.HEIGHT,
            logy=logy,
            show_legend=False,
        )
    )


def regime_probability_figure(regimes: pd.DataFrame) -> Any:
    """Return the nine filtered regime probabilities over time as stacked areas.

    Parameters
    ----------
    regimes
        One symbol's regimes with the nine ``p_{vol}_{trend}`` columns, indexed by ts or
        with a ``ts`` column.

    Returns
    -------
    holoviews.Overlay
        Nine stacked ``Area`` elements in cell order, labelled by cell name, that sum to
        1 on every bar.
    """
    hv = charts.load_holoviews()
    frame = _indexed(regimes)
    missing = [c for c in REGIME_PROBABILITY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"regimes lacks probability column(s) {missing}")
    x = "ts"
    areas = [
        hv.Area(
            pd.DataFrame({x: frame.index, "probability": frame[column].to_numpy(dtype=float)}),
            kdims=[x],
            vdims=["probability"],
            label=name,
        ).opts(color=charts.REGIME_COLORS[name], line_width=0, alpha=0.9)
        for name, column in zip(REGIME_CELL_NAMES, REGIME_PROBABILITY_COLUMNS, strict=True)
    ]
    return hv.Area.stack(hv.Overlay(areas)).opts(
        hv.opts.Overlay(
            title="Filtered regime probabilities",
            width=charts.WIDTH,
            height=charts.HEIGHT,
            legend_position="right",
            ylim=(0, 1),
        )
    )
