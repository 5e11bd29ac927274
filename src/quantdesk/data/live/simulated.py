"""The simulator in live mode: correlated, regime-switching ticks for any number of symbols.

:class:`SimulatedFeed` runs the market model of :func:`quantdesk.data.sources.simulator.simulate`
in wall-clock time.  Time advances in steps of ``1 / rate`` seconds; in each step every
subscribed symbol moves once and prints one tick at a random instant inside the step::

    log p[k, s] = log p[k-1, s] + mu[trend[d]] * h + sigma[vol[d]] * scale[s] * sqrt(h) * z[k, s]

with ``h = step / day_seconds`` the step's share of a simulated trading day, ``d`` the
simulated day of step ``k``, ``mu`` and ``sigma`` the daily drift and volatility of
:class:`~quantdesk.data.sources.simulator.RegimeParams`, and ``z[k]`` standard normal shocks with
equicorrelation ``correlation`` (the simulator's Cholesky factor).  The volatility and
trend regimes are the simulator's two Markov chains, one market-wide path advanced once
per simulated day.  ``day_seconds`` compresses time: by default a 6.5-hour session lasts
390 wall seconds, so prices visibly move on a dashboard and regimes change within hours.

The model is a pure function of the seed and the subscription history: :meth:`generate`
draws the next ticks without sleeping (tests and benchmarks), and the live session draws
the very same sequence and only stamps it with wall-clock times.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.core.backoff import Backoff
from quantdesk.data.live.feed import MarketFeed
from quantdesk.data.live.quotes import QuoteCache
from quantdesk.data.schemas import TICK_COLUMNS, TREND_LABELS, VOL_LABELS
from quantdesk.data.sources.simulator import (
    TRUE_REGIME_COLUMNS,
    RegimeParams,
    _symbol_names,
    equicorrelation_factor,
    markov_paths,
)

__all__ = ["SimulatedFeed"]

logger = logging.getLogger(__name__)

# Spawn keys of independent random streams (distinct from simulate()'s, which are < 1000).
_STREAM_VOL_CHAIN = 2_000
_STREAM_TREND_CHAIN = 2_001
_STREAM_SHOCKS = 2_002
_STREAM_TIMES = 2_003
_STREAM_SIZES = 2_004
_STREAM_SYMBOL = 2_005

# Steps drawn per block in live mode: a block covers the time until the next batch, and
# this bound keeps one catch-up (a stalled thread) from drawing an unbounded array.
_MAX_STEPS_PER_BLOCK = 4096


class SimulatedFeed(MarketFeed):
    """Live ticks from the regime-switching market simulator.

    Parameters
    ----------
    symbols
        A number of symbols (named ``SIM000``, ``SIM001``, ... as in :func:`simulate`) or
        the symbol names.
    rate
        Ticks per second per symbol (each symbol moves once per step of ``1 / rate`` s).
    seed
        Non-negative seed; the same seed and subscriptions give the same prices.
    correlation
        Equicorrelation of the symbols' return shocks.
    params
        Volatility levels, drifts, regime chains, volume model (default
        :class:`~quantdesk.data.sources.simulator.RegimeParams`).
    start_prices
        First price per symbol; others get a seeded draw around ``params.initial_price``.
    interval
        Seconds between published batches in live mode.
    day_seconds
        Wall seconds one simulated trading day lasts (drift, volatility and regime
        durations are per day).
    cache, backoff
        As for :class:`~quantdesk.data.live.feed.MarketFeed`.

    Examples
    --------
    >>> feed = SimulatedFeed(3, seed=1)
    >>> ticks = feed.generate(6)
    >>> list(ticks.columns), len(ticks), sorted(ticks["symbol"].unique())
    (['symbol', 'ts', 'price', 'size'], 6, ['SIM000', 'SIM001', 'SIM002'])
    >>> bool(ticks["ts"].is_monotonic_increasing)
    True
    >>> SimulatedFeed(3, seed=1).generate(6)["price"].equals(ticks["price"])
    True
    """

    kind = "simulator"

    def __init__(
        self,
        symbols: int | Sequence[str] = 10,
        *,
        rate: float = 2.0,
        seed: int = 0,
        correlation: float = 0.3,
        params: RegimeParams | None = None,
        start_prices: Mapping[str, float] | None = None,
        interval: float = 0.1,
        day_seconds: float = 390.0,
        cache: QuoteCache | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if isinstance(symbols, np.integer):
            symbols = int(symbols)
        if isinstance(symbols, str):
            names = [symbols]
        elif isinstance(symbols, int):
            if isinstance(symbols, bool) or symbols <= 0:
                raise ValueError(f"symbols must be a positive count or names, got {symbols!r}")
            names = _symbol_names(symbols)
        else:
            names = list(dict.fromkeys(str(s) for s in symbols))
        super().__init__(names, cache=cache, backoff=backoff)
        for label, value in (("rate", rate), ("interval", interval), ("day_seconds", day_seconds)):
            if not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise ValueError(f"{label} must be a positive number, got {value!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.rate = float(rate)
        self.seed = int(seed)
        self.correlation = float(correlation)
        self.params = params if params is not None else RegimeParams()
        self.interval = float(interval)
        self.day_seconds = float(day_seconds)
        self._start_prices = {str(k): float(v) for k, v in (start_prices or {}).items()}
        bad = {k: v for k, v in self._start_prices.items() if not 0 < v < math.inf}
        if bad:
            raise ValueError(f"start_prices must be positive and finite, got {bad}")
        equicorrelation_factor(max(len(names), 2), self.correlation)  # fail early

        self._step_ns = max(1, round(1e9 / self.rate))
        self._steps_per_day = max(1, round(self.rate * self.day_seconds))
        # Share of a simulated day one step covers: drift scales with it, volatility
        # with its square root.
        self._h = self._step_ns / (self.day_seconds * 1e9)
        ppy = self.params.periods_per_year
        self._sigma_day = np.asarray(self.params.vol_levels, dtype=float) / math.sqrt(ppy)
        self._mu_day = np.asarray(self.params.drifts, dtype=float) / ppy
        self._mult = np.asarray(self.params.volume_multipliers, dtype=float)

        # The generator's state; touched under _gen_lock only.
        self._gen_lock = threading.Lock()
        self._order: list[str] = list(names)  # subscription order (prefix-stable factor)
        self._active: tuple[str, ...] = ()
        self._diag = np.zeros(0)
        self._sub = np.zeros(0)
        self._scales = np.zeros(0)
        self._log_price: dict[str, float] = {}
        self._profile: dict[str, tuple[float, float, float]] = {}
        self._step = 0
        self._vol_days = np.zeros(0, dtype=np.int8)
        self._trend_days = np.zeros(0, dtype=np.int8)
        self._pending = _Block.empty()
        self._origin_ns: int | None = None
        self._regime_now: tuple[int, int, int] | None = None
        self._day_closes: dict[int, dict[str, float]] = {}
        self._quote_day = 0  # the simulated day the quotes' previous close refers to
        self._streams = {
            key: np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(key,)))
            for key in (
                _STREAM_VOL_CHAIN,
                _STREAM_TREND_CHAIN,
                _STREAM_SHOCKS,
                _STREAM_TIMES,
                _STREAM_SIZES,
            )
        }

    # -- subscriptions -----------------------------------------------------------------

    def subscribe(self, symbols: str | Iterable[str]) -> list[str]:
        """Return the symbols newly subscribed; they start ticking with the next step.

        Raises
        ------
        ValueError
            With a negative ``correlation``, when this many symbols can no longer be
            equicorrelated (the bound is ``-1 / (n - 1)``).
        """
        wanted = [symbols] if isinstance(symbols, str) else list(symbols)
        n = len(set(self.symbols) | set(wanted))
        equicorrelation_factor(max(n, 2), self.correlation)
        return super().subscribe(wanted)

    def _on_subscribe(self, symbols: list[str]) -> None:
        with self._gen_lock:
            self._order.extend(s for s in symbols if s not in self._order)

    def _on_unsubscribe(self, symbols: list[str]) -> None:
        gone = set(symbols)
        with self._gen_lock:
            self._order = [s for s in self._order if s not in gone]

    def _sync_symbols(self) -> None:
        """Bring the generator's symbol set in line with the subscriptions (lock held)."""
        wanted = tuple(self._order)
        if wanted == self._active:
            return
        scales = []
        for symbol in wanted:
            scale, price, _ = self._symbol_profile(symbol)
            scales.append(scale)
            self._log_price.setdefault(symbol, math.log(price))
            if symbol not in self._active and self._step > 0:
                logger.info("simulator: %s starts ticking at step %d", symbol, self._step)
        new = [s for s in wanted if s not in self._active]
        factor = equicorrelation_factor(len(wanted), self.correlation) if wanted else None
        # Column j of the equicorrelation factor is constant below the diagonal, so
        # z = L @ e is a running sum along the symbols: elementwise arithmetic whose result
        # does not depend on how many steps are drawn at once (a matrix product's can, in
        # the last bit), which keeps the price sequence exactly reproducible.
        self._diag = np.diag(factor).copy() if factor is not None else np.zeros(0)
        self._sub = np.diag(factor, -1).copy() if factor is not None else np.zeros(0)
        self._scales = np.asarray(scales, dtype=float)
        self._active = wanted
        if new:
            self.cache.set_prev_close({s: math.exp(self._log_price[s]) for s in new})

    def _symbol_profile(self, symbol: str) -> tuple[float, float, float]:
        """Return the (vol scale, start price, base volume) of ``symbol``, seeded by its name."""
        profile = self._profile.get(symbol)
        if profile is None:
            key = zlib.crc32(symbol.encode("utf-8"))
            rng = np.random.default_rng(
                np.random.SeedSequence(self.seed, spawn_key=(_STREAM_SYMBOL, key))
            )
            p = self.params
            lo, hi = p.vol_scale_range
            scale = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
            drawn = p.initial_price * math.exp(p.initial_price_dispersion * rng.standard_normal())
            volume = p.base_volume * math.exp(p.volume_dispersion * rng.standard_normal())
            profile = (scale, self._start_prices.get(symbol, drawn), volume)
            self._profile[symbol] = profile
        return profile

    # -- the model ---------------------------------------------------------------------

    def _regimes_for(self, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the (vol, trend) states of simulated ``days``, drawing new days as needed."""
        need = int(days.max()) + 1 - len(self._vol_days)
        if need > 0:
            p = self.params
            first = len(self._vol_days) == 0
            vol = markov_paths(
                p.vol_transition,
                need,
                1,
                self._streams[_STREAM_VOL_CHAIN],
                None if first else self._vol_days[-1:],
            )[:, 0]
            trend = markov_paths(
                p.trend_transition,
                need,
                1,
                self._streams[_STREAM_TREND_CHAIN],
                None if first else self._trend_days[-1:],
            )[:, 0]
            self._vol_days = np.concatenate([self._vol_days, vol])
            self._trend_days = np.concatenate([self._trend_days, trend])
        return self._vol_days[days], self._trend_days[days]

    def _draw_steps(self, n_steps: int) -> _Block:
        """Return the ticks of the next ``n_steps`` steps, sorted by time (lock held)."""
        self._sync_symbols()
        n_sym = len(self._active)
        if n_steps <= 0 or n_sym == 0:
            self._step += max(n_steps, 0)
            return _Block.empty()
        steps = self._step + np.arange(n_steps, dtype=np.int64)
        vol, trend = self._regimes_for(steps // self._steps_per_day)
        eps = self._streams[_STREAM_SHOCKS].standard_normal((n_steps, n_sym))
        z = eps * self._diag
        if n_sym > 1:
            z[:, 1:] += np.cumsum(eps[:, :-1] * self._sub, axis=1)
        sigma = self._sigma_day[vol][:, None] * self._scales[None, :] * math.sqrt(self._h)
        mu = self._mu_day[trend][:, None] * self._h
        start = np.array([self._log_price[s] for s in self._active])
        # Accumulate from the start price (not start + cumsum): the same additions in the
        # same order however the steps are split into blocks.
        log_price = np.cumsum(np.vstack([start, mu + sigma * z]), axis=0)[1:]
        for s, value in zip(self._active, log_price[-1], strict=True):
            self._log_price[s] = float(value)
        # Each simulated day's closing prices: the live quotes' previous close rolls to them.
        for row in np.flatnonzero((steps + 1) % self._steps_per_day == 0):
            day = int(steps[row] // self._steps_per_day)
            closes = np.exp(log_price[row]).tolist()
            self._day_closes[day] = dict(zip(self._active, closes, strict=True))
            self._day_closes.pop(day - 2, None)

        offsets = self._streams[_STREAM_TIMES].random((n_steps, n_sym))
        t_ns = steps[:, None] * self._step_ns + (offsets * self._step_ns).astype(np.int64)
        # Sizes: exponential around the day's volume spread over the day's ticks, whole shares.
        base = np.array([self._profile[s][2] for s in self._active])
        mean = self._mult[vol][:, None] * base[None, :] / self._steps_per_day
        size = 1 + np.floor(
            self._streams[_STREAM_SIZES].standard_exponential((n_steps, n_sym)) * mean
        ).astype(np.int64)
        codes = np.broadcast_to(np.arange(n_sym), (n_steps, n_sym))
        order = np.argsort(t_ns.ravel(), kind="stable")
        self._step += n_steps
        return _Block(
            np.asarray(self._active, dtype=object)[codes.ravel()[order]],
            t_ns.ravel()[order],
            np.exp(log_price).ravel()[order],
            size.ravel()[order],
            np.repeat(vol, n_sym)[order],
            np.repeat(trend, n_sym)[order],
        )

    def _take(self, n_ticks: int | None = None, until_ns: int | None = None) -> _Block:
        """Return the next ticks: ``n_ticks`` of them, or all before ``until_ns`` (lock held)."""
        while True:
            pending = self._pending
            if n_ticks is not None and len(pending) >= n_ticks:
                cut = n_ticks
                break
            if until_ns is not None and (
                (len(pending) and pending.t_ns[-1] >= until_ns) or self._step_start() >= until_ns
            ):
                cut = int(np.searchsorted(pending.t_ns, until_ns, side="left"))
                break
            if n_ticks is not None:
                n_sym = max(len(self._order), 1)
                want = -(-(n_ticks - len(pending)) // n_sym)
            else:
                assert until_ns is not None
                want = -(-(until_ns - self._step_start()) // self._step_ns) + 1
            block = self._draw_steps(int(min(max(want, 1), _MAX_STEPS_PER_BLOCK)))
            self._pending = _Block.concat(pending, block)
            if not self._order and n_ticks is not None:
                cut = len(self._pending)
                break
        out, self._pending = self._pending.split(cut)
        if len(out):
            self._regime_now = (int(out.vol[-1]), int(out.trend[-1]), int(out.t_ns[-1]))
        return out

    def _step_start(self) -> int:
        return self._step * self._step_ns

    # -- public API --------------------------------------------------------------------

    def generate(self, n_ticks: int, *, with_regimes: bool = False) -> pd.DataFrame:
        """Return the next ``n_ticks`` ticks of the model, at once (no sleeping).

        Timestamps count from the feed's clock origin (the wall clock at first use); the
        prices are those the live feed would publish next.  ``with_regimes`` adds the
        true ``vol_state`` and ``trend_state`` of each tick.  The cache is not updated
        (pass the frame to :meth:`publish` for that).
        """
        if isinstance(n_ticks, bool) or not isinstance(n_ticks, (int, np.integer)) or n_ticks < 0:
            raise ValueError(f"n_ticks must be a non-negative int, got {n_ticks!r}")
        if self.running:
            raise RuntimeError("generate() draws the ticks the running feed would publish; stop it")
        with self._gen_lock:
            if self._origin_ns is None:
                self._origin_ns = time.time_ns()
            block = self._take(n_ticks=int(n_ticks))
            origin = self._origin_ns
        return block.frame(origin, with_regimes=with_regimes)

    def regime(self) -> pd.DataFrame:
        """Return the current true regime of each subscribed symbol (``TRUE_REGIME_COLUMNS``).

        The regime is market-wide (one path for all symbols), as with
        ``simulate(regime_scope="market")``; ``ts`` is the time of the last tick drawn
        out of the model (published or generated).  Empty before the first tick.
        """
        with self._gen_lock:
            current = self._regime_now
            origin = self._origin_ns
        symbols = self.symbols if current is not None and origin is not None else []
        vol, trend, t_ns = current if current is not None else (0, 0, 0)
        n = len(symbols)
        stamp_ns = np.full(n, (origin or 0) + t_ns, dtype=np.int64)
        return pd.DataFrame(
            {
                "ts": pd.DatetimeIndex(stamp_ns.view("datetime64[ns]"), tz="UTC"),
                "symbol": pd.array(symbols, dtype="str"),
                "vol_state": np.full(n, vol, dtype=np.int64),
                "trend_state": np.full(n, trend, dtype=np.int64),
                "vol_label": pd.array([VOL_LABELS[vol]] * n, dtype="str"),
                "trend_label": pd.array([TREND_LABELS[trend]] * n, dtype="str"),
            },
            columns=list(TRUE_REGIME_COLUMNS),
        )

    def _session(self, stop: threading.Event, ready: Callable[[], None]) -> None:
        with self._gen_lock:
            # Re-anchor the model clock so its next tick lands now: a feed that was stopped
            # (or drawn ahead by generate()) resumes without a burst of backdated ticks.
            head = int(self._pending.t_ns[0]) if len(self._pending) else self._step_start()
            self._origin_ns = time.time_ns() - head
        ready()
        next_wake = time.monotonic()
        while not stop.is_set():
            now_ns = time.time_ns()
            with self._gen_lock:
                assert self._origin_ns is not None
                block = self._take(until_ns=now_ns - self._origin_ns)
                origin = self._origin_ns
                closes = self._new_day_closes(block)
            if closes:
                self.cache.set_prev_close(closes)
            if len(block):
                self.publish(block.frame(origin))
            next_wake += self.interval
            delay = next_wake - time.monotonic()
            if delay < -self.interval:  # fell behind (a slow listener): don't race to catch up
                next_wake = time.monotonic()
                delay = 0.0
            stop.wait(max(delay, 0.0))

    def _new_day_closes(self, block: _Block) -> dict[str, float]:
        """Return the previous day's closes when ``block`` reaches a new simulated day."""
        if not len(block):
            return {}
        day = int(block.t_ns[-1] // self._step_ns // self._steps_per_day)
        if day <= self._quote_day:
            return {}
        self._quote_day = day
        return self._day_closes.get(day - 1, {})

    def __repr__(self) -> str:
        return (
            f"SimulatedFeed({len(self.symbols)} symbols, rate={self.rate:g}/s, seed={self.seed}, "
            f"correlation={self.correlation:g}, {self.status.state})"
        )


class _Block:
    """Ticks drawn from the model: parallel arrays sorted by model time (ns)."""

    __slots__ = ("price", "size", "symbol", "t_ns", "trend", "vol")

    def __init__(
        self,
        symbol: np.ndarray,
        t_ns: np.ndarray,
        price: np.ndarray,
        size: np.ndarray,
        vol: np.ndarray,
        trend: np.ndarray,
    ) -> None:
        self.symbol, self.t_ns, self.price = symbol, t_ns, price
        self.size, self.vol, self.trend = size, vol, trend

    @classmethod
    def empty(cls) -> _Block:
        return cls(
            np.zeros(0, dtype=object),
            np.zeros(0, dtype=np.int64),
            np.zeros(0),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int8),
            np.zeros(0, dtype=np.int8),
        )

    def __len__(self) -> int:
        return len(self.t_ns)

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.symbol, self.t_ns, self.price, self.size, self.vol, self.trend)

    @classmethod
    def concat(cls, a: _Block, b: _Block) -> _Block:
        if not len(a):
            return b
        if not len(b):
            return a
        return cls(*(np.concatenate([x, y]) for x, y in zip(a._arrays(), b._arrays(), strict=True)))

    def split(self, cut: int) -> tuple[_Block, _Block]:
        head = _Block(*(x[:cut] for x in self._arrays()))
        tail = _Block(*(x[cut:] for x in self._arrays()))
        return head, tail

    def frame(self, origin_ns: int, *, with_regimes: bool = False) -> pd.DataFrame:
        """Return the ticks as a :data:`TICK_COLUMNS` frame, model time shifted by ``origin_ns``."""
        data: dict[str, Any] = {
            "symbol": pd.array(self.symbol, dtype="str"),
            "ts": pd.DatetimeIndex((self.t_ns + origin_ns).view("datetime64[ns]"), tz="UTC"),
            "price": self.price,
            "size": self.size,
        }
        columns = list(TICK_COLUMNS)
        if with_regimes:
            data["vol_state"] = self.vol.astype(np.int64)
            data["trend_state"] = self.trend.astype(np.int64)
            columns += ["vol_state", "trend_state"]
        return pd.DataFrame(data, columns=columns)
