"""The price a paper trade fills at: explicit, a live quote, or the latest stored bar.

A trade's price is, in this order, the one given (a number or a mapping of symbol to
price: ``explicit``), the live quote of a
:class:`~quantdesk.data.live.quotes.QuoteCache` (``live_quote``), or the store's
latest bar (``store_bar``, :func:`quantdesk.data.store.ledger.latest_bar`).  A quote
older than :data:`MAX_QUOTE_AGE` or a bar older than :data:`MAX_BAR_AGE` is stale and
refused for a trade; valuing a book accepts it and says where it came from.  A symbol
is known when the quote cache or the store has it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from quantdesk.core.coerce import as_utc
from quantdesk.data.store.ledger import is_known, latest_bar
from quantdesk.errors import TradeRejected

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "MAX_BAR_AGE",
    "MAX_QUOTE_AGE",
    "Price",
    "PriceSource",
    "age_text",
    "instant",
    "is_quote_cache",
    "known_symbol",
    "quote_cache",
    "resolve_price",
]

#: A live quote older than this is stale (a feed that stopped a minute ago is not live).
MAX_QUOTE_AGE = pd.Timedelta(minutes=5)
#: A stored bar older than this is stale: a daily bar is stamped 00:00 UTC of its
#: session, so Friday's bar is still the latest on Monday night (four days later).
MAX_BAR_AGE = pd.Timedelta(days=4)

#: Where a price came from (``last_trade`` only values positions, never fills a trade).
PriceSource = Literal["explicit", "store_bar", "live_quote", "last_trade"]


@dataclass(frozen=True)
class Price:
    """Return value of :func:`resolve_price`: a price, where it came from and its time."""

    price: float
    source: PriceSource
    ts: pd.Timestamp
    volume: float = float("nan")


def instant(value: Any) -> pd.Timestamp:
    """Return ``value`` (not None) as a UTC instant (:func:`~quantdesk.core.coerce.as_utc`)."""
    ts = as_utc(value)
    if ts is None:
        raise ValueError("a time is needed, not None")
    return ts


def is_quote_cache(prices: Any) -> bool:
    """Return whether ``prices`` is a live quote cache (not a mapping of prices)."""
    from quantdesk.data.live.quotes import QuoteCache

    return isinstance(prices, QuoteCache)


def quote_cache(prices: Any, default: Any) -> Any:
    """Return the quote cache a call prices from: ``prices`` if it is one, else ``default``."""
    if prices is not None and is_quote_cache(prices):
        return prices
    return default


def known_symbol(con: duckdb.DuckDBPyConnection, symbol: str, cache: Any) -> bool:
    """Return whether the quote ``cache`` or the store (on ``con``) knows ``symbol``."""
    if cache is not None and cache.get(symbol) is not None:
        return True
    return is_known(con, symbol)


def resolve_price(
    con: duckdb.DuckDBPyConnection,
    symbol: str,
    price: float | None,
    prices: Any,
    now: pd.Timestamp,
    *,
    cache: Any,
    max_price_age: pd.Timedelta | None = None,
    ts: Any = None,
    check_age: bool = True,
) -> Price:
    """Return the price a trade in ``symbol`` uses, with its source and time.

    Parameters
    ----------
    con
        A connection to the store (the trade's transaction).
    price, prices
        An explicit price, or a mapping or Series of them; NaN or absent: none.
    now
        The time the age of a quote or bar is measured from.
    cache
        The quote cache to use when no explicit price is given (:func:`quote_cache`).
    max_price_age
        Oldest quote or bar accepted; None for :data:`MAX_QUOTE_AGE` and
        :data:`MAX_BAR_AGE`.
    ts
        Time of an explicit price (default ``now``).
    check_age
        Refuse stale prices (a trade) or accept them (valuing a book).

    Raises
    ------
    TradeRejected
        ``bad_price`` for an explicit price that is not a positive number, ``no_price``
        when there is none, ``stale_price`` for one older than the limit.
    """
    if price is None and prices is not None and not is_quote_cache(prices):
        value = prices.get(symbol) if isinstance(prices, Mapping | pd.Series) else None
        price = None if value is None or pd.isna(value) else float(value)
    if price is not None:
        if not (math.isfinite(price) and price > 0):
            raise TradeRejected(
                f"{symbol}: price {price!r} is not a positive number", reason="bad_price"
            )
        return Price(float(price), "explicit", now if ts is None else instant(ts))
    quote = cache.get(symbol) if cache is not None else None
    if quote is not None:
        found = Price(float(quote.price), "live_quote", instant(quote.ts))
        limit = MAX_QUOTE_AGE
    else:
        bar = latest_bar(con, symbol)
        if bar is None:
            raise TradeRejected(
                f"{symbol}: no price (no explicit price, no live quote, no stored bar)",
                reason="no_price",
            )
        found = Price(bar.close, "store_bar", bar.ts, bar.volume)
        limit = MAX_BAR_AGE
    limit = max_price_age if max_price_age is not None else limit
    age = now - found.ts
    if check_age and age > limit:
        raise TradeRejected(
            f"{symbol}: the {found.source.replace('_', ' ')} price {found.price:g} is from "
            f"{found.ts:%Y-%m-%d %H:%M:%S}Z, {age_text(age)} old (limit {age_text(limit)})",
            reason="stale_price",
        )
    return found


def age_text(age: pd.Timedelta) -> str:
    """Return an age in the unit that reads best (``"45 s"``, ``"12 min"``, ``"4.0 days"``).

    Examples
    --------
    >>> age_text(pd.Timedelta(minutes=12)), age_text(pd.Timedelta(days=4))
    ('12 min', '4.0 days')
    """
    seconds = age.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
