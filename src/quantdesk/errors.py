"""Errors that several floors raise and catch: a rejected paper trade, a missing store.

:class:`TradeRejected` lives on the bottom floor so that the ledger
(:mod:`quantdesk.portfolio.ledger`) raises it and the CLI and the live monitor catch it
without importing each other.
"""

from __future__ import annotations

__all__ = ["REJECT_REASONS", "StoreNotFoundError", "TradeRejected"]

#: The reasons a trade is refused, as :attr:`TradeRejected.reason` spells them.
REJECT_REASONS = frozenset(
    {
        "bad_quantity",  # non-positive, non-finite or below the smallest order
        "bad_price",  # an explicit price that is non-positive or non-finite
        "unknown_symbol",  # neither in the store nor in the quote cache
        "no_price",  # no explicit price, no quote and no bar
        "stale_price",  # the price is older than the ledger's max_price_age
        "insufficient_cash",  # a buy (with its costs) costs more than the cash
        "insufficient_position",  # a sell of more than is held, shorting disabled
        "buying_power",  # a short that breaks the margin rule
        "bad_weights",  # rebalance targets that the ledger cannot trade
    }
)


class TradeRejected(ValueError):
    """Raised when a paper trade fails validation; nothing was written.

    Parameters
    ----------
    message
        What was refused and why, in words a user can act on (the monitor shows it).
    reason
        One of :data:`REJECT_REASONS`, for code that branches on the cause.

    Examples
    --------
    >>> err = TradeRejected("buy 10 SPY: costs 5,000.00, cash 100.00", reason="insufficient_cash")
    >>> err.reason, str(err)
    ('insufficient_cash', 'buy 10 SPY: costs 5,000.00, cash 100.00')
    """

    def __init__(self, message: str, *, reason: str) -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown reject reason {reason!r}; one of {sorted(REJECT_REASONS)}")
        super().__init__(message)
        self.reason = reason


class StoreNotFoundError(FileNotFoundError):
    """Raised when a store is read whose file does not exist; nothing was created.

    Parameters
    ----------
    path
        The store file that was looked for.
    source
        Which rule of the store rule chose it (:attr:`quantdesk.config.Settings.store_source`).

    Examples
    --------
    >>> err = StoreNotFoundError("/tmp/none/quantdesk.duckdb", source="QUANTDESK_HOME")
    >>> "quantdesk ingest sample" in str(err), err.path
    (True, '/tmp/none/quantdesk.duckdb')
    """

    def __init__(self, path: object, *, source: str = "given") -> None:
        self.path = str(path)
        self.source = source
        super().__init__(
            f"no market store at {self.path} (chosen by: {source}); fill it with "
            "`quantdesk ingest sample` (or `make demo` in a checkout), or point "
            "QUANTDESK_HOME / QUANTDESK_STORE at an existing store"
        )
