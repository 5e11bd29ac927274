"""What a user may pass, turned into the one form the code works with.

- :func:`as_utc`: a time (text, date, naive or zoned) as a UTC instant;
- :func:`as_symbols`: one symbol, ``"SPX,IXIC"``, ``"SPX IXIC"`` or a list, as a list.

pandas loads inside :func:`as_utc`, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["as_symbols", "as_utc"]


def as_utc(value: Any) -> pd.Timestamp | None:
    """Return ``value`` as a UTC instant (naive values are taken to be UTC), None for None.

    Examples
    --------
    >>> as_utc("2024-03-08 14:30")
    Timestamp('2024-03-08 14:30:00+0000', tz='UTC')
    >>> as_utc("2024-03-08 09:30-05:00")
    Timestamp('2024-03-08 14:30:00+0000', tz='UTC')
    >>> as_utc(None) is None
    True
    """
    import pandas as pd

    if value is None:
        return None
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        raise ValueError(f"not a time: {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def as_symbols(symbols: str | Iterable[Any] | None) -> list[str] | None:
    """Return symbols as a list, in order, once each; ``None`` stays ``None`` ("all").

    Text is split on commas and white space (``"SPX, IXIC"``, ``"SPX IXIC"``); a list
    keeps its items (stripped).  An empty text or list gives ``[]``: "none", never
    "all"; a caller for whom empty means "not given" writes ``as_symbols(x) or None``.

    Examples
    --------
    >>> as_symbols("SPX, IXIC"), as_symbols(["SPX", "SPX"]), as_symbols("SPX")
    (['SPX', 'IXIC'], ['SPX'], ['SPX'])
    >>> as_symbols(None) is None, as_symbols("")
    (True, [])
    """
    if symbols is None:
        return None
    items = symbols.replace(",", " ").split() if isinstance(symbols, str) else symbols
    return list(dict.fromkeys(str(s).strip() for s in items if str(s).strip()))
