"""Regime-switching market simulator: correlated daily bars, their true regimes, and ticks.

The market has 9 regimes, 3 volatility states (low, medium, high) times 3 trend states
(bearish, neutral, bullish), driven by two independent persistent Markov chains.  A symbol's
close-to-close log return on day ``t`` is::

    r[t, s] = drift[trend[t]] / 252 + vol[vol[t]] / sqrt(252) * scale[s] * z[t, s]

where ``z[t]`` is a vector of standard normal shocks with equicorrelation ``correlation``
(drawn through a Cholesky factor) and ``scale[s]`` a per-symbol volatility multiplier.  The
regime path is shared by every symbol (``regime_scope="market"``) or drawn per symbol
(``regime_scope="symbol"``).  Opens, highs, lows and volumes are generated around those
returns, and :meth:`SimulatedMarket.ticks` draws intraday ticks that aggregate back to the
daily bars exactly.  Everything is reproducible from ``seed``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantdesk.core.coerce import as_utc
from quantdesk.core.markov import expected_durations, stationary_distribution
from quantdesk.data.schemas import (
    BAR_COLUMNS,
    SYMBOL_COLUMNS,
    TICK_COLUMNS,
    TREND_LABELS,
    VOL_LABELS,
)

__all__ = [
    "METADATA_COLUMNS",
    "SIMULATOR_SOURCE",
    "TREND_LABELS",
    "TRUE_REGIME_COLUMNS",
    "VOL_LABELS",
    "RegimeParams",
    "SimulatedMarket",
    "equicorrelation_factor",
    "is_simulator_source",
    "markov_paths",
    "simulate",
]

logger = logging.getLogger(__name__)

# The simulator's ground truth (level indices and labels per bar), not the fitted regime
# contract of quantdesk.data.schemas.REGIME_COLUMNS.
TRUE_REGIME_COLUMNS: tuple[str, ...] = (
    "ts",
    "symbol",
    "vol_state",
    "trend_state",
    "vol_label",
    "trend_label",
)
METADATA_COLUMNS = SYMBOL_COLUMNS  # the store's symbol metadata contract

SIMULATOR_SOURCE = "simulator"
"""The ``source`` a simulated market's symbols carry in the store (``simulator:seed=N``
in the ingest log).  Simulated symbols are told apart by it, never by their names."""


def is_simulator_source(source: object) -> bool:
    """Return whether a stored symbol's ``source`` says the simulator wrote it.

    Examples
    --------
    >>> [is_simulator_source(s) for s in ("simulator", "simulator:seed=7", "live:simulator",
    ...                                   "/data/simx.csv", None)]
    [True, True, False, False, False]
    """
    return isinstance(source, str) and (
        source == SIMULATOR_SOURCE or source.startswith(f"{SIMULATOR_SOURCE}:")
    )


# The regular US equity session in UTC (EST); ticks fall in [open, close).
SESSION_OPEN_UTC = pd.Timedelta(hours=14, minutes=30)
SESSION_CLOSE_UTC = pd.Timedelta(hours=21)

# Where a regime chain goes when it leaves a state (rows sum to 1, zero diagonal).  Volatility
# mostly moves one step at a time (calm -> normal -> stressed) and trends mostly pass through
# neutral, as in real markets; a direct jump stays possible.
_VOL_EXITS: tuple[tuple[float, ...], ...] = ((0.0, 0.8, 0.2), (0.5, 0.0, 0.5), (0.2, 0.8, 0.0))
_TREND_EXITS: tuple[tuple[float, ...], ...] = ((0.0, 0.7, 0.3), (0.5, 0.0, 0.5), (0.3, 0.7, 0.0))

# Spawn keys of independent random streams.  Fixed keys mean that changing one input (say
# ``correlation``) leaves the draws of the others (say the regime paths) unchanged.
_STREAM_VOL_CHAIN = 0
_STREAM_TREND_CHAIN = 1
_STREAM_SYMBOLS = 2
_STREAM_SHOCKS = 3
_STREAM_BARS = 4
_STREAM_VOLUME = 5
_STREAM_TICKS = 1_000

# Parkinson: E[log(high/low)^2] = 4 ln 2 sigma^2 for a Brownian day, which turns a bar's range
# back into a volatility for the intraday bridge.
_PARKINSON = math.sqrt(4.0 * math.log(2.0))


def _persistent_transition(
    durations: Sequence[float], exits: Sequence[Sequence[float]]
) -> tuple[tuple[float, ...], ...]:
    """Return a 3x3 transition matrix whose state ``i`` lasts ``durations[i]`` days on average."""
    if len(durations) != 3:
        raise ValueError(f"expected 3 expected durations, got {len(durations)}")
    rows = []
    for i, (duration, exit_row) in enumerate(zip(durations, exits, strict=True)):
        if not duration >= 1.0:
            raise ValueError(f"expected regime duration must be >= 1 day, got {duration!r}")
        stay = 1.0 - 1.0 / float(duration)
        row = [(1.0 - stay) * float(p) for p in exit_row]
        row[i] = stay
        rows.append(tuple(row))
    return tuple(rows)


@dataclass(frozen=True)
class RegimeParams:
    """Parameters of the simulated market; rates are annualised, durations in trading days.

    Attributes
    ----------
    vol_levels : tuple of float
        Annualised volatility of daily log returns in the (low, medium, high) volatility
        states, for a symbol whose vol scale is 1.  Default 10% / 18% / 35%, roughly a calm,
        normal and stressed US large-cap market (VIX about 11, 18, 35).
    drifts : tuple of float
        Annualised drift of daily log returns in the (bearish, neutral, bullish) trend states.
        Default -40% / 0% / +40%: strong enough for a trend model to find, and over the
        expected trend durations it gives moves of about 10-15%, like real corrections and rallies.
    vol_transition : tuple of tuple of float
        Row-stochastic 3x3 matrix; row ``i`` is P(next vol state | vol state ``i``).  The
        diagonal ``p_ii`` sets the expected duration ``1 / (1 - p_ii)``.  Default durations
        50 / 40 / 30 days (low / medium / high: stress is shorter-lived than calm).
    trend_transition : tuple of tuple of float
        Same for the trend chain.  Default durations 80 / 100 / 80 days (bearish / neutral /
        bullish).
    vol_scale_range : tuple of float
        (min, max) of the per-symbol volatility multiplier, drawn log-uniformly, so that
        utilities and tech names differ in volatility.  Default (0.7, 1.4).
    overnight_variance_share : float
        Share of the close-to-close variance realised overnight (open versus previous close).
        Default 0.2, about what US large caps show.
    initial_price : float
        Median first reference price (the close before the first day).  Default 50.
    initial_price_dispersion : float
        Log-normal sigma of the initial price across symbols.  Default 0.6.
    base_volume : float
        Median daily share volume in the medium vol state.  Default 1,000,000.
    volume_dispersion : float
        Log-normal sigma of the base volume across symbols.  Default 0.8.
    volume_noise : float
        Log-normal sigma of day-to-day volume noise.  Default 0.3.
    volume_multipliers : tuple of float
        Volume multiplier in the (low, medium, high) vol states.  Default 0.8 / 1.0 / 1.6:
        turnover rises when markets are stressed.
    volume_shock_beta : float
        Extra log volume per unit of ``|z| - E|z|``: big moves trade more.  Default 0.25.
    periods_per_year : int
        Trading days per year used to de-annualise.  Default 252.
    """

    vol_levels: tuple[float, float, float] = (0.10, 0.18, 0.35)
    drifts: tuple[float, float, float] = (-0.40, 0.0, 0.40)
    vol_transition: tuple[tuple[float, ...], ...] = field(
        default=_persistent_transition((50.0, 40.0, 30.0), _VOL_EXITS)
    )
    trend_transition: tuple[tuple[float, ...], ...] = field(
        default=_persistent_transition((80.0, 100.0, 80.0), _TREND_EXITS)
    )
    vol_scale_range: tuple[float, float] = (0.7, 1.4)
    overnight_variance_share: float = 0.2
    initial_price: float = 50.0
    initial_price_dispersion: float = 0.6
    base_volume: float = 1_000_000.0
    volume_dispersion: float = 0.8
    volume_noise: float = 0.3
    volume_multipliers: tuple[float, float, float] = (0.8, 1.0, 1.6)
    volume_shock_beta: float = 0.25
    periods_per_year: int = 252

    def __post_init__(self) -> None:
        for name in ("vol_levels", "drifts", "volume_multipliers"):
            values = np.asarray(getattr(self, name), dtype=float)
            if values.shape != (3,) or not np.isfinite(values).all():
                raise ValueError(f"RegimeParams.{name} must be 3 finite numbers, got {values}")
        if min(self.vol_levels) <= 0:
            raise ValueError(f"RegimeParams.vol_levels must be positive, got {self.vol_levels}")
        if min(self.volume_multipliers) <= 0:
            raise ValueError(
                f"RegimeParams.volume_multipliers must be positive, got {self.volume_multipliers}"
            )
        for name in ("vol_transition", "trend_transition"):
            matrix = np.asarray(getattr(self, name), dtype=float)
            if matrix.shape != (3, 3) or not np.isfinite(matrix).all():
                raise ValueError(f"RegimeParams.{name} must be a 3x3 matrix, got {matrix}")
            if (matrix < 0).any() or not np.allclose(matrix.sum(axis=1), 1.0, atol=1e-9):
                raise ValueError(
                    f"RegimeParams.{name} must have non-negative rows summing to 1, got {matrix}"
                )
        lo, hi = self.vol_scale_range
        if not 0 < lo <= hi:
            raise ValueError(
                f"RegimeParams.vol_scale_range must satisfy 0 < min <= max, got {(lo, hi)}"
            )
        if not 0 <= self.overnight_variance_share < 1:
            raise ValueError(
                "RegimeParams.overnight_variance_share must lie in [0, 1), "
                f"got {self.overnight_variance_share}"
            )
        if self.initial_price <= 0 or self.base_volume <= 0:
            raise ValueError("RegimeParams.initial_price and base_volume must be positive")
        for name in ("initial_price_dispersion", "volume_dispersion", "volume_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"RegimeParams.{name} must be >= 0, got {getattr(self, name)}")
        if self.periods_per_year <= 0:
            raise ValueError(f"RegimeParams.periods_per_year must be positive, got {self}")

    @classmethod
    def from_durations(
        cls,
        vol_durations: Sequence[float] = (50.0, 40.0, 30.0),
        trend_durations: Sequence[float] = (80.0, 100.0, 80.0),
        **kwargs: object,
    ) -> RegimeParams:
        """Return parameters whose regimes last the given expected numbers of days.

        Parameters
        ----------
        vol_durations, trend_durations : sequence of float
            Expected duration in days (>= 1) of each (low, medium, high) vol state and each
            (bearish, neutral, bullish) trend state.  The mass of leaving a state is split as
            in the defaults (mostly to the neighbouring state).
        **kwargs
            Any other :class:`RegimeParams` field.
        """
        return cls(
            vol_transition=_persistent_transition(vol_durations, _VOL_EXITS),
            trend_transition=_persistent_transition(trend_durations, _TREND_EXITS),
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def expected_vol_durations(self) -> tuple[float, float, float]:
        """Return the expected duration in days, ``1 / (1 - p_ii)``, of each vol state."""
        return _level_durations(self.vol_transition)

    @property
    def expected_trend_durations(self) -> tuple[float, float, float]:
        """Return the expected duration in days, ``1 / (1 - p_ii)``, of each trend state."""
        return _level_durations(self.trend_transition)

    def true_filter(self, returns: np.ndarray, vol_scale: float = 1.0) -> np.ndarray:
        """Return the filtered regime cell (vol x 3 + trend) of each close-to-close return.

        The Bayes-optimal causal filter that knows these true parameters: the ceiling
        any regime model fitted to the same closes can reach.  ``vol_scale`` is the
        symbol's volatility multiplier (``SimulatedMarket.vol_scales``).
        """
        trans = np.kron(np.array(self.vol_transition), np.array(self.trend_transition))
        sigma = np.repeat(self.vol_levels, 3) / math.sqrt(self.periods_per_year) * vol_scale
        mu = np.tile(self.drifts, 3) / self.periods_per_year
        log_b = -0.5 * ((np.asarray(returns)[:, None] - mu) / sigma) ** 2 - np.log(sigma)
        alpha, cells = np.full(9, 1 / 9), np.empty(len(log_b), dtype=np.int64)
        for t, row in enumerate(log_b):
            alpha = (alpha @ trans if t else alpha) * np.exp(row - row.max())
            alpha /= alpha.sum()
            cells[t] = alpha.argmax()
        return cells


def _level_durations(matrix: tuple[tuple[float, ...], ...]) -> tuple[float, float, float]:
    d = expected_durations(matrix)
    return (float(d[0]), float(d[1]), float(d[2]))


@dataclass(eq=False, repr=False)
class SimulatedMarket:
    """A simulated market: daily bars, the true regimes that generated them, and ticks.

    Attributes
    ----------
    bars : pandas.DataFrame
        Long daily bars (``symbol, ts, open, high, low, close, volume``), sorted by symbol, ts.
    regimes : pandas.DataFrame
        The true regimes, long: ``ts, symbol, vol_state, trend_state, vol_label,
        trend_label``, in the same row order as ``bars``.  States are 0/1/2 for
        low/medium/high volatility and bearish/neutral/bullish trend.
    symbols : list of str
        The symbols, in order.
    seed : int
        The seed everything was drawn from (ticks included).
    params : RegimeParams
        The parameters used.
    correlation : float
        Equicorrelation of the return shocks.
    regime_scope : str
        ``"market"`` (one regime path) or ``"symbol"`` (a path per symbol).
    vol_scales : pandas.Series
        The true per-symbol volatility multiplier, indexed by symbol.
    """

    bars: pd.DataFrame
    regimes: pd.DataFrame
    symbols: list[str]
    seed: int
    params: RegimeParams
    correlation: float
    regime_scope: str
    vol_scales: pd.Series

    def __repr__(self) -> str:
        return self.summary().splitlines()[0]

    def metadata(self) -> pd.DataFrame:
        """Return one row of symbol metadata per symbol (:data:`METADATA_COLUMNS`)."""
        n = len(self.symbols)
        return pd.DataFrame(
            {
                "symbol": self.symbols,
                "name": [f"Simulated equity {s}" for s in self.symbols],
                "asset_class": ["equity"] * n,
                "currency": ["USD"] * n,
                "timezone": ["America/New_York"] * n,
                "source": [SIMULATOR_SOURCE] * n,
            },
            columns=list(METADATA_COLUMNS),
        )

    def summary(self) -> str:
        """Return a short readable description: size, dates, regime mix, realised volatility."""
        ts = self.bars["ts"]
        n_days = self.bars["ts"].nunique()
        p = self.params
        vol_share = np.bincount(self.regimes["vol_state"].to_numpy(), minlength=3) / len(
            self.regimes
        )
        trend_share = np.bincount(self.regimes["trend_state"].to_numpy(), minlength=3) / len(
            self.regimes
        )
        log_close = np.log(self.bars["close"].to_numpy())
        ret = np.diff(log_close)
        same_symbol = self.bars["symbol"].to_numpy()[1:] == self.bars["symbol"].to_numpy()[:-1]
        states = self.regimes["vol_state"].to_numpy()[1:]
        realised = []
        for k in range(3):
            r = ret[same_symbol & (states == k)]
            vol = r.std() * math.sqrt(p.periods_per_year) if len(r) > 1 else float("nan")
            realised.append(f"{vol:.1%}")
        lines = [
            f"SimulatedMarket(seed={self.seed}, {len(self.symbols)} symbols x {n_days} days, "
            f"{ts.min():%Y-%m-%d} to {ts.max():%Y-%m-%d}, regime_scope={self.regime_scope!r}, "
            f"correlation={self.correlation:g})",
            "  vol regimes    "
            + " | ".join(f"{lab} {s:.0%}" for lab, s in zip(VOL_LABELS, vol_share, strict=True))
            + f"   configured vol {' / '.join(f'{v:.0%}' for v in p.vol_levels)}",
            "  trend regimes  "
            + " | ".join(f"{lab} {s:.0%}" for lab, s in zip(TREND_LABELS, trend_share, strict=True))
            + f"   configured drift {' / '.join(f'{d:+.0%}' for d in p.drifts)}",
            f"  realised ann. vol by vol regime (pooled): {' / '.join(realised)}",
            f"  {len(self.bars):,} bars; median daily volume {self.bars['volume'].median():,.0f}",
        ]
        return "\n".join(lines)

    def ticks(
        self,
        symbols: Sequence[str] | str | None = None,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        ticks_per_day: int = 2000,
    ) -> pd.DataFrame:
        """Return intraday ticks (``symbol, ts, price, size``) that aggregate to the daily bars.

        For each symbol-day the first tick trades at the open, the last at the close, the
        highest and lowest ticks at exactly the bar's high and low, and the integer sizes sum
        to the bar's volume.  The path runs open -> high -> low -> close or open -> low ->
        high -> close (order drawn at random) along Brownian bridges between those anchors,
        kept inside [low, high]; tick times are sorted uniform draws within the US session
        14:30-21:00 UTC.  Each symbol-day draws from its own child of ``seed``, so the ticks
        of a symbol-day do not depend on which other symbols or days are asked for.

        Parameters
        ----------
        symbols : str or sequence of str, optional
            Symbols to generate (default all).
        start, end : str or Timestamp, optional
            First and last session dates, inclusive (default the whole market).
        ticks_per_day : int
            Ticks per symbol-day, at least 4 (open, high, low, close).  If a day's volume is
            below this, some ticks have size 0.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`~quantdesk.data.schemas.TICK_COLUMNS`, sorted by ts then symbol
            order; ``size`` is int64.
        """
        if isinstance(ticks_per_day, bool) or not isinstance(ticks_per_day, (int, np.integer)):
            raise ValueError(f"ticks_per_day must be an int >= 4, got {ticks_per_day!r}")
        n = int(ticks_per_day)
        if n < 4:
            raise ValueError(
                f"ticks_per_day must be >= 4 (open, high, low and close ticks), got {n}"
            )
        bars = self._select_bars(symbols, start, end)
        day_ns = _ts_ns(bars["ts"])
        day_idx = np.searchsorted(np.unique(_ts_ns(self.bars["ts"])), day_ns)
        sym_idx = bars["symbol"].map({s: i for i, s in enumerate(self.symbols)}).to_numpy()
        # Day-major, then symbol order: a stable sort on ts later gives (ts, symbol) order.
        order = np.lexsort((sym_idx, day_idx))
        bars = bars.iloc[order]
        day_idx, sym_idx, day_ns = day_idx[order], sym_idx[order], day_ns[order]
        k = len(bars)
        if k == 0:
            return _empty_ticks()
        if k * n > 50_000_000:
            logger.warning("generating %s ticks; this needs several GB of memory", f"{k * n:,}")
        logger.debug("generating %d ticks for %d symbol-days", k * n, k)

        open_ = bars["open"].to_numpy(dtype=float)
        high = bars["high"].to_numpy(dtype=float)
        low = bars["low"].to_numpy(dtype=float)
        close = bars["close"].to_numpy(dtype=float)
        volume = bars["volume"].to_numpy(dtype=float).astype(np.int64)

        times = np.empty((k, n))
        noise = np.empty((k, n))
        sizes = np.empty((k, n), dtype=np.int64)
        first_anchor = np.empty(k, dtype=np.int64)
        second_anchor = np.empty(k, dtype=np.int64)
        high_first = np.empty(k, dtype=bool)
        for row in range(k):
            seq = np.random.SeedSequence(
                self.seed, spawn_key=(_STREAM_TICKS, int(sym_idx[row]), int(day_idx[row]))
            )
            rng = np.random.default_rng(seq)
            times[row] = rng.random(n)
            noise[row] = rng.standard_normal(n)
            # Two distinct interior ticks carry the high and the low.
            a = int(rng.integers(1, n - 1))
            b = int(rng.integers(1, n - 2))
            b += b >= a
            first_anchor[row], second_anchor[row] = min(a, b), max(a, b)
            high_first[row] = rng.random() < 0.5
            # Exponential weights are a Dirichlet(1) split: bursty like real trade sizes.
            weights = rng.standard_exponential(n)
            weights /= weights.sum()
            vol = int(volume[row])
            if vol >= n:  # one share each first, so no tick has size 0
                sizes[row] = rng.multinomial(vol - n, weights) + 1
            else:
                sizes[row] = rng.multinomial(vol, weights)
        times.sort(axis=1)

        prices = _bridge_prices(
            times, noise, open_, high, low, close, first_anchor, second_anchor, high_first
        )
        session_ns = (SESSION_CLOSE_UTC - SESSION_OPEN_UTC).value
        ts_ns = (day_ns + SESSION_OPEN_UTC.value)[:, None] + np.floor(times * session_ns).astype(
            np.int64
        )
        flat_ts = ts_ns.ravel()
        sort = np.argsort(flat_ts, kind="stable")
        names = pd.array(self.symbols, dtype="str")
        sym_codes = np.repeat(sym_idx, n)[sort]
        out = pd.DataFrame(
            {
                "symbol": names.take(sym_codes),
                "ts": pd.DatetimeIndex(flat_ts[sort].view("datetime64[ns]"), tz="UTC"),
                "price": prices.ravel()[sort],
                "size": sizes.ravel()[sort],
            },
            columns=list(TICK_COLUMNS),
        )
        return out

    def _select_bars(
        self,
        symbols: Sequence[str] | str | None,
        start: str | pd.Timestamp | None,
        end: str | pd.Timestamp | None,
    ) -> pd.DataFrame:
        bars = self.bars
        if symbols is not None:
            wanted = [symbols] if isinstance(symbols, str) else list(symbols)
            unknown = sorted(set(wanted) - set(self.symbols))
            if unknown:
                raise ValueError(
                    f"unknown symbols {unknown}; this market has {self.symbols[0]}.."
                    f"{self.symbols[-1]}"
                )
            bars = bars[bars["symbol"].isin(wanted)]
        if start is not None:
            bars = bars[bars["ts"] >= _session_date(start)]
        if end is not None:
            bars = bars[bars["ts"] <= _session_date(end)]
        return bars


def _ts_ns(ts: pd.Series) -> np.ndarray:
    """Return a UTC timestamp column as int64 nanoseconds since the epoch."""
    out: np.ndarray = pd.DatetimeIndex(ts).as_unit("ns").asi8
    return out


def _session_date(value: str | pd.Timestamp) -> pd.Timestamp:
    """Return ``value`` as a session date at 00:00 UTC (naive values are read as UTC)."""
    ts = as_utc(value)
    assert ts is not None  # typed str | Timestamp
    return ts.normalize()


def _empty_ticks() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.array([], dtype="str"),
            "ts": pd.DatetimeIndex([], dtype="datetime64[ns, UTC]"),
            "price": np.array([], dtype=float),
            "size": np.array([], dtype=np.int64),
        },
        columns=list(TICK_COLUMNS),
    )


def _bridge_prices(
    times: np.ndarray,
    noise: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    first_anchor: np.ndarray,
    second_anchor: np.ndarray,
    high_first: np.ndarray,
) -> np.ndarray:
    """Return (k, n) tick prices: Brownian bridges through open, high/low, low/high, close."""
    k, n = times.shape
    log_o, log_h, log_l, log_c = np.log(open_), np.log(high), np.log(low), np.log(close)
    mid1 = np.where(high_first, log_h, log_l)
    mid2 = np.where(high_first, log_l, log_h)
    anchor_val = np.stack([log_o, mid1, mid2, log_c], axis=1)
    anchor_pos = np.stack(
        [np.zeros(k, dtype=np.int64), first_anchor, second_anchor, np.full(k, n - 1)], axis=1
    )
    # The bar's own range sets the wiggle size, so ticks depend on the bars alone.
    sigma = np.log(high / low) / _PARKINSON
    dt = np.diff(times, axis=1, prepend=times[:, :1])
    walk = np.cumsum(noise * np.sqrt(dt), axis=1) * sigma[:, None]

    j = np.arange(n)
    segment = (j >= first_anchor[:, None]).astype(np.int64) + (j >= second_anchor[:, None])
    left = np.take_along_axis(anchor_pos, segment, axis=1)
    right = np.take_along_axis(anchor_pos, segment + 1, axis=1)
    v_left = np.take_along_axis(anchor_val, segment, axis=1)
    v_right = np.take_along_axis(anchor_val, segment + 1, axis=1)
    t_left = np.take_along_axis(times, left, axis=1)
    t_right = np.take_along_axis(times, right, axis=1)
    w_left = np.take_along_axis(walk, left, axis=1)
    w_right = np.take_along_axis(walk, right, axis=1)
    span = t_right - t_left
    frac = np.divide(times - t_left, span, out=np.zeros_like(span), where=span > 0)
    path = v_left + frac * (v_right - v_left) + (walk - w_left) - frac * (w_right - w_left)
    # Reflect excursions off the extremes (less flat-lining than clipping alone), then clip.
    upper, lower = log_h[:, None], log_l[:, None]
    path = np.where(path > upper, 2 * upper - path, path)
    path = np.where(path < lower, 2 * lower - path, path)
    prices: np.ndarray = np.clip(np.exp(path), low[:, None], high[:, None])
    # The anchors carry the bar's prices exactly (no exp/log round trip).
    rows = np.arange(k)
    prices[:, 0] = open_
    prices[:, n - 1] = close
    prices[rows, first_anchor] = np.where(high_first, high, low)
    prices[rows, second_anchor] = np.where(high_first, low, high)
    return prices


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _symbol_names(n_symbols: int) -> list[str]:
    width = max(3, len(str(n_symbols - 1)))
    return [f"SIM{i:0{width}d}" for i in range(n_symbols)]


def equicorrelation_factor(n: int, correlation: float) -> np.ndarray:
    """Return a lower-triangular L with L @ L.T the n x n equicorrelation matrix.

    The factor is prefix-stable: its top-left k x k block is the factor of the k x k
    matrix, so appending symbols leaves the shocks of the earlier ones unchanged.

    Raises
    ------
    ValueError
        ``correlation`` is outside ``[-1 / (n - 1), 1]``, where the matrix stops being
        positive semi-definite.
    """
    rho = float(correlation)
    # The eigenvalues are 1 + (n - 1) rho (once) and 1 - rho, so the matrix is positive
    # semi-definite exactly when -1 / (n - 1) <= rho <= 1.
    lower = -1.0 / (n - 1) if n > 1 else -1.0
    eps = 1e-12
    if not math.isfinite(rho) or rho < lower - eps or rho > 1.0 + eps:
        raise ValueError(
            f"correlation={correlation!r} makes the {n}x{n} equicorrelation matrix not positive "
            f"semi-definite: it must lie in [{lower:.6g}, 1] for n_symbols={n}"
        )
    corr = np.full((n, n), rho)
    np.fill_diagonal(corr, 1.0)
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        # Only at the boundary (rho = 1 or -1/(n-1)): singular but PSD, and a QR of the
        # symmetric square root gives an exact factor.
        w, v = np.linalg.eigh(corr)
        root = v * np.sqrt(np.clip(w, 0.0, None))
        _, r = np.linalg.qr(root.T)
        factor: np.ndarray = r.T * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))
        return factor


def markov_paths(
    matrix: tuple[tuple[float, ...], ...],
    n_days: int,
    n_paths: int,
    rng: np.random.Generator,
    initial: np.ndarray | None = None,
) -> np.ndarray:
    """Return (n_days, n_paths) int8 states of independent 3-state Markov chains.

    Without ``initial`` the chains start in equilibrium (day 0 drawn from the stationary
    distribution); with it, day 0 is one transition from the states ``initial``.  One
    uniform is drawn per (day, path), so drawing 10 days and then 5 more from the last
    state gives the same path as drawing 15 days at once.
    """
    p = np.asarray(matrix, dtype=float)
    cum = np.cumsum(p, axis=1)
    to_medium, to_high = cum[:, 0], cum[:, 1]
    u = rng.random((n_days, n_paths))
    states = np.empty((n_days, n_paths), dtype=np.int8)
    if initial is None:
        start = np.cumsum(stationary_distribution(p))
        s = (u[0] >= start[0]).astype(np.int8) + (u[0] >= start[1])
    else:
        prev = np.asarray(initial, dtype=np.int8)
        s = (u[0] >= to_medium[prev]).astype(np.int8) + (u[0] >= to_high[prev])
    states[0] = s
    # The chain is sequential in time, so loop over days and vectorise over paths.
    for t in range(1, n_days):
        ut = u[t]
        s = (ut >= to_medium[s]).astype(np.int8) + (ut >= to_high[s])
        states[t] = s
    return states


def simulate(
    n_symbols: int = 20,
    n_days: int = 2520,
    seed: int = 0,
    *,
    start: str = "2010-01-04",
    correlation: float = 0.3,
    regime_scope: str = "market",
    params: RegimeParams | None = None,
) -> SimulatedMarket:
    """Return a simulated regime-switching equity market of daily bars.

    Parameters
    ----------
    n_symbols : int
        Number of symbols, named ``SIM000``, ``SIM001``, ... (more digits past 1000).
    n_days : int
        Number of business days, from ``start`` (``pandas.bdate_range``).
    seed : int
        Non-negative seed; the same arguments give identical frames.
    start : str
        First session date.
    correlation : float
        Equicorrelation of the daily return shocks; must lie in ``[-1/(n_symbols-1), 1]``
        for the correlation matrix to be positive semi-definite.  With
        ``regime_scope="market"`` it is also (closely) the correlation of the returns.
    regime_scope : {"market", "symbol"}
        ``"market"``: one regime path shared by all symbols (volatility clusters across
        assets, as in real markets); ``"symbol"``: an independent path per symbol.
    params : RegimeParams, optional
        Volatility levels, drifts, transition matrices, volume model (default
        :class:`RegimeParams`).

    Returns
    -------
    SimulatedMarket
        Bars, true regimes, metadata and a tick generator.

    Examples
    --------
    >>> market = simulate(n_symbols=3, n_days=250, seed=7)
    >>> market.symbols
    ['SIM000', 'SIM001', 'SIM002']
    >>> market.bars.shape
    (750, 7)
    >>> ticks = market.ticks(symbols="SIM000", end="2010-01-05", ticks_per_day=100)
    >>> len(ticks)
    200
    """
    n_symbols = _check_count("n_symbols", n_symbols)
    n_days = _check_count("n_days", n_days)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    if regime_scope not in ("market", "symbol"):
        raise ValueError(f"regime_scope must be 'market' or 'symbol', got {regime_scope!r}")
    if params is None:
        params = RegimeParams()
    factor = equicorrelation_factor(n_symbols, correlation)
    dates = pd.bdate_range(start=start, periods=n_days).tz_localize("UTC").as_unit("ns")
    symbols = _symbol_names(n_symbols)

    def stream(key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))

    n_paths = 1 if regime_scope == "market" else n_symbols
    vol_state = markov_paths(params.vol_transition, n_days, n_paths, stream(_STREAM_VOL_CHAIN))
    trend_state = markov_paths(
        params.trend_transition, n_days, n_paths, stream(_STREAM_TREND_CHAIN)
    )
    if n_paths == 1:
        vol_state = np.broadcast_to(vol_state, (n_days, n_symbols))
        trend_state = np.broadcast_to(trend_state, (n_days, n_symbols))

    rng = stream(_STREAM_SYMBOLS)
    lo, hi = params.vol_scale_range
    scales = np.exp(rng.uniform(math.log(lo), math.log(hi), n_symbols))
    log_p0 = math.log(params.initial_price) + params.initial_price_dispersion * (
        rng.standard_normal(n_symbols)
    )
    base_volume = params.base_volume * np.exp(
        params.volume_dispersion * rng.standard_normal(n_symbols)
    )

    z = stream(_STREAM_SHOCKS).standard_normal((n_days, n_symbols)) @ factor.T
    ppy = params.periods_per_year
    sigma = np.asarray(params.vol_levels)[vol_state] / math.sqrt(ppy) * scales
    mu = np.asarray(params.drifts)[trend_state] / ppy
    shock = sigma * z
    log_ret = mu + shock

    # Split each day's shock into independent overnight and intraday Gaussian parts (the
    # overnight part drawn conditionally on the total), so close-to-close returns keep exactly
    # the distribution above.
    rng = stream(_STREAM_BARS)
    share = params.overnight_variance_share
    gap = share * shock + sigma * math.sqrt(share * (1.0 - share)) * rng.standard_normal(
        shock.shape
    )
    intraday = log_ret - gap
    log_close = log_p0 + np.cumsum(log_ret, axis=0)
    log_open = np.vstack([log_p0, log_close[:-1]]) + gap
    # High and low: the exact marginal laws of the max and min of a Brownian bridge from 0 to
    # the intraday return with the intraday variance; both contain open and close by design.
    var_in = (1.0 - share) * sigma**2
    u_hi = 1.0 - rng.random(shock.shape)  # in (0, 1], so the log is finite
    u_lo = 1.0 - rng.random(shock.shape)
    up = 0.5 * (intraday + np.sqrt(intraday**2 - 2.0 * var_in * np.log(u_hi)))
    down = 0.5 * (intraday - np.sqrt(intraday**2 - 2.0 * var_in * np.log(u_lo)))
    open_ = np.exp(log_open)
    close = np.exp(log_close)
    # max/min guard against the last-ulp rounding of exp(); they change no real value.
    high = np.maximum(np.exp(log_open + up), np.maximum(open_, close))
    low = np.minimum(np.exp(log_open + down), np.minimum(open_, close))

    rng = stream(_STREAM_VOLUME)
    noise_sd = params.volume_noise
    volume = (
        base_volume
        * np.asarray(params.volume_multipliers)[vol_state]
        * np.exp(noise_sd * rng.standard_normal(shock.shape) - 0.5 * noise_sd**2)
        * np.exp(params.volume_shock_beta * (np.abs(z) - math.sqrt(2.0 / math.pi)))
    )
    # Whole shares, so that integer tick sizes can add up to it.
    volume = np.maximum(np.rint(volume), 1.0)

    # (day, symbol) arrays -> long frames sorted by symbol, then ts.
    def long(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.T).ravel()

    names = pd.array(symbols, dtype="str")
    sym_codes = np.repeat(np.arange(n_symbols), n_days)
    symbol_col = names.take(sym_codes)
    ts_col = pd.DatetimeIndex(np.tile(dates.asi8, n_symbols).view("datetime64[ns]"), tz="UTC")
    bars = pd.DataFrame(
        {
            "symbol": symbol_col,
            "ts": ts_col,
            "open": long(open_),
            "high": long(high),
            "low": long(low),
            "close": long(close),
            "volume": long(volume),
        },
        columns=list(BAR_COLUMNS),
    )
    vol_long = long(vol_state).astype(np.int64)
    trend_long = long(trend_state).astype(np.int64)
    regimes = pd.DataFrame(
        {
            "ts": ts_col,
            "symbol": symbol_col,
            "vol_state": vol_long,
            "trend_state": trend_long,
            "vol_label": pd.array(VOL_LABELS, dtype="str").take(vol_long),
            "trend_label": pd.array(TREND_LABELS, dtype="str").take(trend_long),
        },
        columns=list(TRUE_REGIME_COLUMNS),
    )
    market = SimulatedMarket(
        bars=bars,
        regimes=regimes,
        symbols=symbols,
        seed=seed,
        params=params,
        correlation=float(correlation),
        regime_scope=regime_scope,
        vol_scales=pd.Series(scales, index=pd.Index(symbols, name="symbol"), name="vol_scale"),
    )
    logger.info(
        "simulated %d symbols x %d days (seed=%d, regime_scope=%s, correlation=%g)",
        n_symbols,
        n_days,
        seed,
        regime_scope,
        correlation,
    )
    return market
