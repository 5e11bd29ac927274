"""The paper-trading ledger: cash, positions, an append-only trade log, snapshots, a watchlist.

A :class:`PaperLedger` lives in the market store's DuckDB file, beside the bars, in the
``paper_*`` tables (:mod:`quantdesk.data.store.ledger`); several named ledgers share
one file.  Every write (a buy, a sell, a
rebalance, a recorded snapshot) is **one transaction** on a short-lived connection
(:meth:`quantdesk.data.store.ledger.LedgerTables.transaction`): the trade rows, the positions, the
cash and the snapshot move together or not at all, also when the process dies
mid-trade.  Validation reads cash and positions *inside* that transaction, and DuckDB
lets one process at a time hold the file for writing, so two processes trading the
same ledger can never both spend the same cash.  A committed trade is on disk when
the call returns, in the store's write-ahead log; folding the log into the file is
left to a later write while the log is small (``defer_checkpoint``, whose trade-off
:mod:`quantdesk.data.store.locking` spells out), since that costs a trade more than
its own statements.

A ledger is created by its first successful write (a trade, a rebalance, a recorded
snapshot, a watchlist entry), in that write's transaction: a rejected first trade
leaves no ledger behind.  Until then it reads as its ``initial_cash`` and nothing else.

Validation (each failure raises :class:`~quantdesk.errors.TradeRejected` with a
``reason``, and nothing is written):

- the quantity must be positive and finite;
- the symbol must be known: in the store (bars, ticks or symbol metadata) or in the
  quote cache;
- a price must exist: given explicitly, a live quote, or the latest stored bar; a quote
  or bar older than ``max_price_age`` is stale (default: :data:`MAX_QUOTE_AGE` for a
  quote, :data:`MAX_BAR_AGE` for a bar, measured from its ``ts``);
- a buy must be covered by cash, commission and slippage included;
- a sell of more than is held is refused unless ``allow_short``; then the
  **buying-power rule** holds after every manual trade: cash must cover
  :data:`SHORT_MARGIN` (150 %, Reg T's initial margin: the proceeds plus half again)
  of the value of every short position, the traded symbol valued at this trade's price
  and the others at their average entry price.  Without shorts the rule is simply
  "cash never goes below zero".

Costs and sizing are the backtest's: a buy or sell fills at the backtest's slippage
and pays its commission by the kernel's own rule
(:func:`quantdesk.backtest.order_rules.fill_order`, which refuses prices that are not
finite, such as a NaN quote), and
:meth:`PaperLedger.rebalance` runs one bar of the backtest's compiled order simulation
from the ledger's cash and positions (:func:`quantdesk.backtest.engine.rebalance_fills`:
fractions of total value, sells first, lot rounding, volume cap), so a ledger that
follows a strategy day by day ends where ``quantdesk.backtest.run`` says.

What a ledger reports (trades, rebalances, snapshots, the P&L split by average cost or
FIFO lots) is in :mod:`quantdesk.portfolio.accounting`; its book inside a transaction
in :mod:`quantdesk.portfolio.book`; prices in :mod:`quantdesk.portfolio.prices`.
Following a strategy by name is :func:`quantdesk.portfolio.follow.follow_strategy`, the
drift from the backtest :func:`quantdesk.portfolio.drift.drift_from_backtest`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from quantdesk.config import DEFAULT_COMMISSION_BPS, DEFAULT_SLIPPAGE_BPS
from quantdesk.core.html import summary_html
from quantdesk.data.store import as_store
from quantdesk.data.store.ledger import LedgerTables
from quantdesk.errors import TradeRejected
from quantdesk.portfolio.accounting import LedgerSnapshot, RebalanceResult, Trade
from quantdesk.portfolio.book import (
    Book,
    Fill,
    book_fill,
    create_ledger,
    load_book,
    load_lots,
    price_fill,
    save_book,
    write_snapshot,
)
from quantdesk.portfolio.book import now as _now
from quantdesk.portfolio.prices import (
    MAX_BAR_AGE,
    MAX_QUOTE_AGE,
    Price,
    instant,
    known_symbol,
    quote_cache,
    resolve_price,
)

if TYPE_CHECKING:
    import duckdb

    from quantdesk.data.live.quotes import QuoteCache
    from quantdesk.data.store.market import MarketStore

__all__ = ["MAX_BAR_AGE", "MAX_QUOTE_AGE", "SHORT_MARGIN", "PaperLedger", "TradeRejected"]

logger = logging.getLogger(__name__)

#: Cash must cover this multiple of the value of the short positions (Reg T: 150 %).
SHORT_MARGIN = 1.5


class PaperLedger:
    """A named paper portfolio in the market store: trade it, rebalance it, value it.

    Parameters
    ----------
    store
        A :class:`~quantdesk.data.store.market.MarketStore`, the path of its DuckDB file, or
        None for the default store (``$QUANTDESK_HOME/quantdesk.duckdb``).
    initial_cash
        Cash of a new ledger; an existing ledger keeps the cash it has.
    name
        The ledger's name; several ledgers share one store.
    allow_short
        Let sells go past the position (the buying-power rule of the module docstring).
    max_price_age
        Oldest quote or bar a trade may use; None for :data:`MAX_QUOTE_AGE` (quotes)
        and :data:`MAX_BAR_AGE` (bars).  Explicit prices are never stale.
    lot_size
        Round rebalance orders down to multiples of this (the backtest's ``lot_size``).
    max_volume_share
        Cap each rebalance order at this share of the bar's volume (the backtest's
        volume cap); needs a volume (store bars or ``volume=``).
    commission_bps, slippage_bps
        Costs, as in the backtest (default :data:`~quantdesk.config.DEFAULT_COMMISSION_BPS`,
        :data:`~quantdesk.config.DEFAULT_SLIPPAGE_BPS`).
    price_source
        A live :class:`~quantdesk.data.live.quotes.QuoteCache` to price trades from
        (before the store's bars) when a call gives no ``prices``.
    cost_method
        ``"average"`` (default) or ``"fifo"``: the cost and realised P&L reported.
    before_commit
        Called inside every write transaction just before it commits (an audit hook;
        the tests use it to kill a process mid-trade).

    Examples
    --------
    >>> ledger = PaperLedger(tmp_path / "store.duckdb", initial_cash=10_000)  # doctest: +SKIP
    >>> ledger.buy("SPY", 10, price=450.0).summary()  # doctest: +SKIP
    >>> ledger.snapshot().summary()  # doctest: +SKIP
    """

    def __init__(
        self,
        store: MarketStore | str | Path | None = None,
        initial_cash: float = 100_000.0,
        name: str = "default",
        *,
        allow_short: bool = False,
        max_price_age: pd.Timedelta | None = None,
        lot_size: float | None = None,
        max_volume_share: float | None = None,
        commission_bps: float = DEFAULT_COMMISSION_BPS,
        slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
        price_source: QuoteCache | None = None,
        cost_method: Literal["average", "fifo"] = "average",
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        if not (math.isfinite(initial_cash) and initial_cash >= 0):
            raise ValueError("initial_cash must be a finite amount >= 0")
        if cost_method not in ("average", "fifo"):
            raise ValueError("cost_method must be 'average' or 'fifo'")
        if not name or not name.strip():
            raise ValueError("a ledger needs a name")
        self.store = as_store(store)
        self.tables = LedgerTables(self.store)
        self.name = name
        self.allow_short = allow_short
        self.max_price_age = max_price_age
        self.lot_size = lot_size
        self.max_volume_share = max_volume_share
        self.commission_bps = commission_bps
        self.slippage_bps = slippage_bps
        self.price_source = price_source
        self.cost_method = cost_method
        self.before_commit = before_commit
        self._initial_cash = float(initial_cash)
        self.tables.create()

    def __repr__(self) -> str:
        return f"PaperLedger({str(self.store.path)!r}, name={self.name!r})"

    def _repr_html_(self) -> str:
        # Stored figures only: valuing the book needs prices a notebook may not have.
        trades = self.trades()
        snapshots = self.snapshots()
        headline: dict[str, Any] = {
            "cash": self.cash,
            "initial cash": self.initial_cash,
            "trades": len(trades),
        }
        if len(snapshots) and "equity" in snapshots:
            headline["last recorded equity"] = float(snapshots["equity"].iloc[-1])
        headline["store"] = str(self.store.path)
        details = {"trades": trades, "snapshots": snapshots}
        return summary_html(f"Paper ledger {self.name!r}", headline, details)

    # -- connections -------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.tables.transaction() as con:
            yield con
            if self.before_commit is not None:
                self.before_commit()

    def _read(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        return self.tables.read(query, params)

    # -- reads -------------------------------------------------------------------------

    @property
    def cash(self) -> float:
        """Cash now (committed trades only; ``initial_cash`` before the first write)."""
        rows = self._read("SELECT cash FROM paper_ledgers WHERE ledger = ?", [self.name])
        return float(rows["cash"].iloc[0]) if len(rows) else self._initial_cash

    @property
    def initial_cash(self) -> float:
        """Cash the ledger started with (or will start with, before its first write)."""
        rows = self._read("SELECT initial_cash FROM paper_ledgers WHERE ledger = ?", [self.name])
        return float(rows["initial_cash"].iloc[0]) if len(rows) else self._initial_cash

    def trades(self) -> pd.DataFrame:
        """Return every trade of this ledger, oldest first (the append-only log)."""
        return self._read(
            "SELECT * EXCLUDE (ledger) FROM paper_trades WHERE ledger = ? ORDER BY trade_id",
            [self.name],
        )

    def snapshots(self) -> pd.DataFrame:
        """Return the snapshots written after every trade, rebalance and :meth:`record_snapshot`."""
        return self._read(
            "SELECT * EXCLUDE (ledger) FROM paper_snapshots WHERE ledger = ? ORDER BY batch_id, ts",
            [self.name],
        )

    def activity(self) -> pd.DataFrame:
        """Return trading per day: trades, traded value, commission, slippage, turnover.

        ``turnover`` is the day's traded value over the equity of its last snapshot; the
        index is the UTC date at 00:00 (a daily bar's ``ts``).
        """
        trades = self.trades()
        snaps = self.snapshots()
        columns = ["trades", "traded_value", "commission", "slippage", "turnover"]
        if trades.empty:
            return pd.DataFrame(columns=columns, index=pd.DatetimeIndex([], tz="UTC", name="ts"))
        day = trades["ts"].dt.floor("D").rename("ts")
        per_day = pd.DataFrame(
            {
                "trades": trades.groupby(day)["trade_id"].count(),
                "traded_value": (trades["qty"] * trades["price"]).groupby(day).sum(),
                "commission": trades.groupby(day)["commission"].sum(),
                "slippage": trades.groupby(day)["slippage"].sum(),
            }
        )
        equity = snaps.groupby(snaps["ts"].dt.floor("D").rename("ts"))["equity"].last()
        per_day["turnover"] = per_day["traded_value"] / equity.reindex(per_day.index)
        return per_day[columns]

    def watchlist(self) -> list[str]:
        """Return the symbols on this ledger's watchlist, in the order they were added."""
        rows = self._read(
            "SELECT symbol FROM paper_watchlist WHERE ledger = ? ORDER BY added_at, symbol",
            [self.name],
        )
        return [str(s) for s in rows["symbol"]]

    @staticmethod
    def ledgers(store: MarketStore | str | Path | None = None) -> list[str]:
        """Return the names of the ledgers in ``store``."""
        market = as_store(store)
        if not market.exists():
            return []
        return LedgerTables(market).ledgers()

    def positions(self, prices: Any = None, *, include_closed: bool = False) -> pd.DataFrame:
        """Return the positions valued at ``prices``: qty, cost, price, value, P&L, weight.

        ``prices`` is a mapping or Series (symbol -> price), a live
        :class:`~quantdesk.data.live.quotes.QuoteCache`, or None: the ledger's
        ``price_source`` quote when there is one, else the latest stored bar, else the
        price of the symbol's last trade.  Reading never rejects a stale price; the
        ``price_source`` and ``price_ts`` columns say where each price came from.
        Columns: ``symbol, qty, avg_cost, cost_basis, price, price_source, price_ts,
        market_value, unrealized_pnl, realized_pnl, weight`` (cost and realised P&L by
        the ledger's ``cost_method``).
        """
        return self.snapshot(prices, include_closed=include_closed).positions

    def snapshot(self, prices: Any = None, *, include_closed: bool = True) -> LedgerSnapshot:
        """Return the book valued at ``prices`` (as :meth:`positions`), without writing."""
        with self.tables.reading() as con:
            book = self._load(con)
            now = _now()
            frame = self._valued(con, book, prices, now)
        shown = frame if include_closed else frame[frame["qty"] != 0].reset_index(drop=True)
        return LedgerSnapshot(
            ledger=self.name,
            ts=now,
            initial_cash=book.initial_cash,
            cash=book.cash,
            positions=shown,
            cost_method=self.cost_method,
            book=frame,
        )

    def _valued(
        self, con: duckdb.DuckDBPyConnection, book: Book, prices: Any, now: pd.Timestamp
    ) -> pd.DataFrame:
        rows = []
        for symbol, pos in sorted(book.positions.items()):
            found = None
            if pos.qty != 0:
                with contextlib.suppress(TradeRejected):
                    found = self._price(con, symbol, None, prices, now, check_age=False)
            if found is None:
                found = Price(pos.last_price, "last_trade", pos.last_price_ts or now)
            cost = pos.fifo_cost() if self.cost_method == "fifo" else pos.avg_cost
            realized = pos.realized_fifo if self.cost_method == "fifo" else pos.realized_avg
            value = pos.qty * found.price
            rows.append(
                {
                    "symbol": symbol,
                    "qty": pos.qty,
                    "avg_cost": cost,
                    "cost_basis": pos.qty * cost,
                    "price": found.price,
                    "price_source": found.source,
                    "price_ts": found.ts,
                    "market_value": value,
                    "unrealized_pnl": pos.qty * (found.price - cost) if pos.qty else 0.0,
                    "realized_pnl": realized,
                }
            )
        columns = [
            "symbol", "qty", "avg_cost", "cost_basis", "price", "price_source", "price_ts",
            "market_value", "unrealized_pnl", "realized_pnl", "weight",
        ]  # fmt: skip
        frame = pd.DataFrame(rows, columns=columns[:-1])
        equity = book.cash + float(frame["market_value"].sum()) if rows else book.cash
        frame["weight"] = frame["market_value"] / equity if equity else np.nan
        frame["price_ts"] = pd.to_datetime(frame["price_ts"], utc=True)
        return frame

    # -- the book inside a transaction -------------------------------------------------

    def _load(self, con: duckdb.DuckDBPyConnection) -> Book:
        return load_book(con, self.name, self._initial_cash)

    def _known(self, con: duckdb.DuckDBPyConnection, symbol: str, prices: Any) -> bool:
        return known_symbol(con, symbol, quote_cache(prices, self.price_source))

    def _price(
        self,
        con: duckdb.DuckDBPyConnection,
        symbol: str,
        price: float | None,
        prices: Any,
        now: pd.Timestamp,
        *,
        ts: Any = None,
        check_age: bool = True,
    ) -> Price:
        """Return the price a trade in ``symbol`` uses, with its source and time."""
        return resolve_price(
            con, symbol, price, prices, now, cache=quote_cache(prices, self.price_source),
            max_price_age=self.max_price_age, ts=ts, check_age=check_age,
        )  # fmt: skip

    def _fill(self, units: float, found: Price) -> Fill:
        """Return the fill of ``units`` at ``found``'s price by the order rules (the kernel's).

        A price or size that is not finite (a NaN or infinite quote) is refused here,
        so it can never reach the cash.
        """
        try:
            return price_fill(
                units, found.price, commission_bps=self.commission_bps,
                slippage_bps=self.slippage_bps,
            )  # fmt: skip
        except ValueError:
            raise TradeRejected(
                f"{units:g} units at the {found.source.replace('_', ' ')} price {found.price!r}: "
                "an order needs a finite positive price and finite units",
                reason="bad_price",
            ) from None

    # -- writes ------------------------------------------------------------------------

    def buy(
        self,
        symbol: str,
        qty: float,
        price: float | None = None,
        *,
        prices: Any = None,
        ts: Any = None,
    ) -> Trade:
        """Return the trade of buying ``qty`` units of ``symbol``, validated and recorded.

        ``price`` is an explicit price (recorded as such, at ``ts`` or now); otherwise
        ``prices`` (a mapping or a quote cache), the ledger's ``price_source`` or the
        latest stored bar.  The fill pays the backtest's slippage and commission.

        Raises
        ------
        TradeRejected
            For any of the reasons in the module docstring; nothing is written.
        """
        return self._trade(symbol, qty, +1, price, prices, ts)

    def sell(
        self,
        symbol: str,
        qty: float,
        price: float | None = None,
        *,
        prices: Any = None,
        ts: Any = None,
    ) -> Trade:
        """Return the trade of selling ``qty`` units of ``symbol`` (as :meth:`buy`)."""
        return self._trade(symbol, qty, -1, price, prices, ts)

    def _trade(
        self, symbol: str, qty: Any, side: int, price: float | None, prices: Any, ts: Any
    ) -> Trade:
        from quantdesk.backtest.order_rules import REL_TOL, is_less

        verb = "buy" if side > 0 else "sell"
        try:
            units = float(qty)
        except (TypeError, ValueError):
            raise TradeRejected(
                f"{verb} {symbol}: quantity {qty!r} is not a number", reason="bad_quantity"
            ) from None
        if not (math.isfinite(units) and units > 0):
            raise TradeRejected(
                f"{verb} {symbol}: quantity must be a positive finite number, not {qty!r}",
                reason="bad_quantity",
            )
        symbol = str(symbol).strip()
        with self._transaction() as con:
            now = _now()
            book = load_book(con, self.name, self._initial_cash, lots=False)
            if symbol not in book.positions and not self._known(con, symbol, prices):
                raise TradeRejected(
                    f"{verb} {symbol}: unknown symbol (not in the store, not in the quote cache)",
                    reason="unknown_symbol",
                )
            found = self._price(con, symbol, price, prices, now, ts=ts)
            held = book.positions[symbol].qty if symbol in book.positions else 0.0
            if side < 0 and not self.allow_short and units > held * (1 + REL_TOL):
                raise TradeRejected(
                    f"sell {units:g} {symbol}: only {held:g} held and shorting is off",
                    reason="insufficient_position",
                )
            if side < 0 and not self.allow_short:
                units = min(units, held)  # a rounding hair above the position closes it
            signed = side * units
            if held * signed < 0:  # closes some of the position: FIFO needs its lots
                load_lots(con, self.name, book, [symbol])
            fill = self._fill(signed, found)
            cost = -fill.cash_change
            if side > 0 and is_less(book.cash, cost):  # the kernel's rule for a full fill
                raise TradeRejected(
                    f"buy {units:g} {symbol}: costs {cost:,.2f} with commission and "
                    f"slippage, cash is {book.cash:,.2f}",
                    reason="insufficient_cash",
                )
            if self.allow_short:
                cash_after = book.cash + fill.cash_change
                shorts = sum(
                    -(p.qty + (signed if s == symbol else 0.0))
                    * (found.price if s == symbol else p.avg_cost)
                    for s, p in book.positions.items()
                    if p.qty + (signed if s == symbol else 0.0) < 0
                )
                if symbol not in book.positions and signed < 0:
                    shorts += -signed * found.price
                if cash_after < SHORT_MARGIN * shorts - 1e-9:
                    raise TradeRejected(
                        f"{verb} {units:g} {symbol}: cash after the trade {cash_after:,.2f} would "
                        f"not cover {SHORT_MARGIN:.0%} of the short positions ({shorts:,.2f})",
                        reason="buying_power",
                    )
            trade_id, batch_id = book.ids
            trade_ts = found.ts if found.source == "explicit" else now
            rows: list[list[Any]] = []
            realized = book_fill(
                book, rows, fill, ledger=self.name, trade_id=trade_id, batch_id=batch_id,
                ts=trade_ts, symbol=symbol, found=found,
            )  # fmt: skip
            save_book(con, self.name, book, [symbol], rows)
            write_snapshot(con, self.name, book, trade_ts, batch_id)
        trade = Trade(
            trade_id=trade_id,
            ledger=self.name,
            ts=trade_ts,
            symbol=symbol,
            side=verb,
            qty=units,
            price=fill.price,
            ref_price=found.price,
            commission=fill.commission,
            slippage=units * abs(fill.price - found.price),
            price_source=found.source,
            price_ts=found.ts,
            realized_pnl=realized[1] if self.cost_method == "fifo" else realized[0],
            cash_after=book.cash,
        )
        logger.info("%s", trade.summary())
        return trade

    def rebalance(
        self,
        target_weights: pd.Series | pd.DataFrame | Mapping[str, float],
        prices: Any = None,
        *,
        volume: pd.Series | Mapping[str, float] | None = None,
        ts: Any = None,
    ) -> RebalanceResult:
        """Return the fills of trading the book to ``target_weights``, in one transaction.

        The orders are one bar of :func:`quantdesk.backtest.run`
        (:func:`quantdesk.backtest.engine.rebalance_fills`): weights are fractions of the
        book's total value at ``prices``, sells go first, buys that cash cannot cover fill
        partially, ``lot_size`` rounds down and ``max_volume_share`` caps each order at a
        share of ``volume`` (or the stored bar's volume).  NaN or absent weights place no
        order: a held symbol without a weight (the strategy has no opinion on it, e.g.
        in its warm-up) is kept, and the result's ``kept`` and summary name it.

        Parameters
        ----------
        target_weights
            Symbol -> weight; a DataFrame of weights uses its last row (the strategy's
            latest decision).
        prices
            A mapping or Series of prices (explicit, at ``ts`` or now), a live quote cache,
            or None (the ledger's ``price_source``, then the store's latest bars).  Every
            weighted or held symbol needs a price that is not stale.
        volume
            The bar's volume per symbol, for ``max_volume_share`` with explicit prices.
        ts
            Time of explicit prices and of the trades (default now).

        Raises
        ------
        TradeRejected
            Negative weights without ``allow_short``, non-finite weights, an unknown
            symbol, or a missing or stale price; nothing is written.
        """
        from quantdesk.backtest.engine import rebalance_fills

        if isinstance(target_weights, pd.DataFrame):
            if target_weights.empty:
                raise TradeRejected("rebalance: no target weights", reason="bad_weights")
            target_weights = target_weights.iloc[-1]
        weights = pd.Series(target_weights, dtype=np.float64)
        weights.index = weights.index.map(str)
        if np.isinf(weights.to_numpy()).any():
            raise TradeRejected(
                "rebalance: weights must be finite (NaN: no order)", reason="bad_weights"
            )
        if not self.allow_short and (weights < 0).any():
            raise TradeRejected(
                f"rebalance: negative weights {sorted(weights[weights < 0].index)[:5]} need "
                "allow_short=True",
                reason="bad_weights",
            )
        with self._transaction() as con:
            now = _now()
            book = self._load(con)
            held = [s for s, p in book.positions.items() if p.qty != 0]
            wanted = [str(s) for s in weights.dropna().index]
            kept = tuple(sorted(set(held) - set(wanted)))
            found: dict[str, Price] = {}
            for symbol in dict.fromkeys([*wanted, *held]):
                if symbol not in book.positions and not self._known(con, symbol, prices):
                    raise TradeRejected(
                        f"rebalance: unknown symbol {symbol} (not in the store, not in the "
                        "quote cache)",
                        reason="unknown_symbol",
                    )
                found[symbol] = self._price(con, symbol, None, prices, now, ts=ts)
            price_row = pd.Series({s: f.price for s, f in found.items()}, dtype=np.float64)
            bar_volume = None
            if self.max_volume_share is not None:
                given = pd.Series(volume if volume is not None else {}, dtype=np.float64)
                stored = pd.Series({s: f.volume for s, f in found.items()}, dtype=np.float64)
                bar_volume = given.combine_first(stored)
            units = pd.Series({s: book.positions[s].qty for s in held}, dtype=np.float64)
            fills = rebalance_fills(
                price_row, weights, cash=book.cash, units=units,
                commission_bps=self.commission_bps, slippage_bps=self.slippage_bps,
                volume=bar_volume, max_volume_share=self.max_volume_share, lot_size=self.lot_size,
            )  # fmt: skip
            cash_before = book.cash
            trade_id, batch_id = book.ids
            trade_ts = now if ts is None else instant(ts)
            records = []
            rows: list[list[Any]] = []
            for i, (symbol, signed) in enumerate(
                zip(fills["symbol"].map(str), fills["units"].to_numpy(np.float64), strict=True)
            ):
                f = found[symbol]
                # the units are the kernel's; their price, commission and cash move come
                # from the one rule the kernel itself fills by (as for a manual trade)
                fill = self._fill(float(signed), f)
                book_fill(
                    book, rows, fill, ledger=self.name, trade_id=trade_id + i,
                    batch_id=batch_id, ts=trade_ts, symbol=symbol, found=f,
                )  # fmt: skip
                records.append(
                    {
                        "trade_id": trade_id + i,
                        "symbol": symbol,
                        "side": "buy" if signed > 0 else "sell",
                        "qty": abs(fill.units),
                        "price": fill.price,
                        "ref_price": f.price,
                        "commission": fill.commission,
                        "slippage": abs(fill.units) * abs(fill.price - f.price),
                        "price_source": f.source,
                        "price_ts": f.ts,
                    }
                )
            for symbol in found:  # value the snapshot at this rebalance's prices
                if symbol in book.positions:
                    pos = book.positions[symbol]
                    pos.last_price, pos.last_price_ts = found[symbol].price, found[symbol].ts
            save_book(con, self.name, book, [s for s in found if s in book.positions], rows)
            equity = write_snapshot(con, self.name, book, trade_ts, batch_id)
        columns = [
            "trade_id", "symbol", "side", "qty", "price", "ref_price", "commission",
            "slippage", "price_source", "price_ts",
        ]  # fmt: skip
        result = RebalanceResult(
            ledger=self.name,
            ts=trade_ts,
            fills=pd.DataFrame(records, columns=columns),
            cash_before=cash_before,
            cash_after=book.cash,
            equity=equity,
            kept=kept,
        )
        logger.info("%s", result.summary().splitlines()[0])
        return result

    def record_snapshot(self, prices: Any = None) -> LedgerSnapshot:
        """Return the book valued at ``prices`` (as :meth:`snapshot`) after writing it.

        What a scheduled job calls after the close, so that :meth:`snapshots` holds a
        point per day even on days without trades.  Positions' last prices move to
        these prices; no trade is written.
        """
        with self._transaction() as con:
            book = self._load(con)
            now = _now()
            frame = self._valued(con, book, prices, now)
            for symbol, price, price_ts in zip(
                frame["symbol"], frame["price"].to_numpy(np.float64), frame["price_ts"], strict=True
            ):
                pos = book.positions[str(symbol)]
                pos.last_price, pos.last_price_ts = float(price), instant(price_ts)
            save_book(con, self.name, book, list(book.positions))
            _, batch_id = book.ids
            write_snapshot(con, self.name, book, now, batch_id)
        return LedgerSnapshot(self.name, now, book.initial_cash, book.cash, frame, self.cost_method)

    def watch_add(self, symbol: str) -> list[str]:
        """Return the watchlist after adding ``symbol`` (known to the store or quote cache).

        Raises
        ------
        TradeRejected
            With reason ``unknown_symbol`` for a symbol neither the store nor the quote
            cache knows.
        """
        symbol = str(symbol).strip()
        with self._transaction() as con:
            if not self._known(con, symbol, None):
                raise TradeRejected(
                    f"watch {symbol}: unknown symbol (not in the store, not in the quote cache)",
                    reason="unknown_symbol",
                )
            create_ledger(con, self.name, self._load(con))
            con.execute(
                "INSERT INTO paper_watchlist VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [self.name, symbol, _now()],
            )
        return self.watchlist()

    def watch_remove(self, symbol: str) -> list[str]:
        """Return the watchlist after removing ``symbol`` (absent: no change)."""
        with self._transaction() as con:
            con.execute(
                "DELETE FROM paper_watchlist WHERE ledger = ? AND symbol = ?",
                [self.name, str(symbol).strip()],
            )
        return self.watchlist()
