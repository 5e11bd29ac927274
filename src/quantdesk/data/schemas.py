"""Column contracts and timeframe arithmetic shared by every data module.

Long bars have the columns :data:`BAR_COLUMNS`; ``ts`` is timezone-aware UTC and a
daily bar's ``ts`` is the session date at 00:00 UTC.  Ticks have :data:`TICK_COLUMNS`.
Timeframes are strings such as ``"1s"``, ``"5min"``, ``"1h"``, ``"1d"``, ``"1w"`` or
``"1mo"``.  ``"1M"`` is refused as ambiguous (pandas reads it as month-end, many
vendors as one minute); lower-case ``"m"`` means minutes, as in ``"15m"``.

Regimes are long frames with the columns :data:`REGIME_COLUMNS`: one row per ``(symbol,
ts, model_version)``, the most probable cell (``state``, ``vol_label``, ``trend_label``) and
the nine cell probabilities :data:`REGIME_PROBABILITY_COLUMNS`.  The cells of the 3 x 3 grid
are numbered ``vol_index * 3 + trend_index`` over :data:`VOL_LABELS` and
:data:`TREND_LABELS`, so cell 0 is ``low/bearish`` and cell 8 ``high/bullish``.

Calendar bars (weeks and months) are labelled by the start of their period, like daily
bars: a weekly bar's ``ts`` is the Monday of its ISO week and a monthly bar's is the 1st
of its month, both at 00:00 UTC, whatever day of the period the source dated it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ALERT_COLUMNS",
    "BAR_COLUMNS",
    "NEWS_COLUMNS",
    "PRICE_COLUMNS",
    "QUOTE_COLUMNS",
    "REGIME_CELL_NAMES",
    "REGIME_COLUMNS",
    "REGIME_ESTIMATE_COLUMNS",
    "REGIME_PROBABILITY_COLUMNS",
    "SYMBOL_COLUMNS",
    "TICK_COLUMNS",
    "TREND_LABELS",
    "VOL_LABELS",
    "Timeframe",
    "parse_timeframe",
    "regime_probability_column",
    "to_utc_ns",
]

BAR_COLUMNS: tuple[str, ...] = ("symbol", "ts", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
TICK_COLUMNS: tuple[str, ...] = ("symbol", "ts", "price", "size")
#: The latest-quote contract of the live layer (:mod:`quantdesk.data.live.quotes`).
QUOTE_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    "price",
    "prev_close",
    "change",
    "direction",
    "version",
)
#: News items (:mod:`quantdesk.data.sources.news`): ``ts`` is when the item was published (UTC),
#: ``symbols`` a list of the symbols it is about, ``content_hash`` the de-duplication key.
NEWS_COLUMNS: tuple[str, ...] = (
    "id",
    "ts",
    "source",
    "headline",
    "body",
    "symbols",
    "content_hash",
)
#: Screener alerts (:mod:`quantdesk.screener`): ``ts`` is the bar that triggered the rule,
#: ``conditions`` a dict of what the rule saw (e.g. ``gap_pct``, ``prev_close``),
#: ``metadata`` a dict of how it was run (timeframe, rule parameters).  One alert per
#: ``(symbol, rule, ts)``.
ALERT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "rule",
    "ts",
    "trigger_price",
    "conditions",
    "metadata",
)
#: Symbol metadata: what a symbol is and the timezone its daily sessions follow.
SYMBOL_COLUMNS: tuple[str, ...] = (
    "symbol",
    "name",
    "asset_class",
    "currency",
    "timezone",
    "source",
)

#: Regime labels, in state order: volatility levels and trend directions (3 x 3 cells).
VOL_LABELS: tuple[str, str, str] = ("low", "medium", "high")
TREND_LABELS: tuple[str, str, str] = ("bearish", "neutral", "bullish")


def regime_probability_column(vol_label: str, trend_label: str) -> str:
    """Return the name of the probability column of one regime cell, ``p_{vol}_{trend}``.

    Raises :class:`ValueError` for a label that is not in :data:`VOL_LABELS` or
    :data:`TREND_LABELS`, so that a typo never selects a column that does not exist.

    Examples
    --------
    >>> regime_probability_column("high", "bearish")
    'p_high_bearish'
    """
    if vol_label not in VOL_LABELS or trend_label not in TREND_LABELS:
        raise ValueError(
            f"unknown regime cell {vol_label!r}/{trend_label!r}: volatility is one of "
            f"{VOL_LABELS}, trend one of {TREND_LABELS}"
        )
    return f"p_{vol_label}_{trend_label}"


#: Regime cells as ``"vol/trend"`` in cell order (cell id ``vol_index * 3 + trend_index``).
REGIME_CELL_NAMES: tuple[str, ...] = tuple(f"{v}/{t}" for v in VOL_LABELS for t in TREND_LABELS)
#: The nine cell probabilities of a regime row, in cell order.
REGIME_PROBABILITY_COLUMNS: tuple[str, ...] = tuple(
    regime_probability_column(v, t) for v in VOL_LABELS for t in TREND_LABELS
)
#: What a regime model says about one bar: the most probable cell and the nine probabilities.
REGIME_ESTIMATE_COLUMNS: tuple[str, ...] = (
    "state",
    "vol_label",
    "trend_label",
    *REGIME_PROBABILITY_COLUMNS,
)
#: Stored regimes: one row per ``(symbol, ts, model_version)``.
REGIME_COLUMNS: tuple[str, ...] = ("symbol", "ts", "model_version", *REGIME_ESTIMATE_COLUMNS)

# A month has no fixed length: 30 days is its nominal size, used for ordering only.
_UNIT_SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}
_UNIT_ALIASES = {
    "s": "s", "sec": "s", "secs": "s", "second": "s",
    "m": "min", "min": "min", "t": "min", "minute": "min",
    "h": "h", "hr": "h", "hour": "h",
    "d": "d", "day": "d",
    "w": "w", "wk": "w", "week": "w",
    "mo": "mo", "mon": "mo", "mth": "mo", "month": "mo",
}  # fmt: skip
_CALENDAR_UNITS = frozenset({"w", "mo"})
_TIMEFRAME_RE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s*$")
NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True, order=True)
class Timeframe:
    """A bar length: ``seconds`` long, written canonically as ``name`` (``"5min"``)."""

    seconds: int
    name: str

    @property
    def nanos(self) -> int:
        """Return the bar length in nanoseconds (nominal 30 days for a month)."""
        return self.seconds * NS_PER_SECOND

    @property
    def is_daily(self) -> bool:
        """Return True for bars of one day or longer (bucketed by session date)."""
        return self.seconds >= 86400

    @property
    def is_calendar(self) -> bool:
        """Return True for weeks and months: buckets follow the calendar, not a fixed length."""
        return _split(self.name)[1] in _CALENDAR_UNITS

    @property
    def pandas_freq(self) -> str:
        """Return the pandas offset alias of the bucket start (``"5min"``, ``"1D"``, ``"MS"``)."""
        n, unit = _split(self.name)
        if unit == "w":
            return "W-MON"
        if unit == "mo":
            return "MS"
        return f"{n}{ {'s': 's', 'min': 'min', 'h': 'h', 'd': 'D'}[unit] }"

    def floor(self, ts: pd.Series) -> pd.Series:
        """Return the start of the bar that holds each UTC timestamp in ``ts``.

        Days, weeks and months start at 00:00 UTC of the session date, the Monday of the
        ISO week and the 1st of the month; intraday bars on multiples of their length.
        """
        import pandas as pd

        unit = _split(self.name)[1]
        naive = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        if unit == "mo":
            out = naive.dt.to_period("M").dt.start_time
        elif unit == "w":
            day = naive.dt.normalize()
            out = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
        else:
            out = naive.dt.floor(self.pandas_freq)
        result: pd.Series = out.dt.tz_localize("UTC").dt.as_unit("ns")
        return result

    def __str__(self) -> str:
        return self.name


def _split(name: str) -> tuple[int, str]:
    m = _TIMEFRAME_RE.match(name)
    if m is None:
        raise ValueError(
            f"invalid timeframe {name!r}: expected e.g. '1s', '5min', '1h', '1d', '1w', '1mo'"
        )
    if m.group(2) == "M":
        raise ValueError(
            f"ambiguous timeframe {name!r}: 'M' means a month to pandas and a minute to many "
            f"vendors; write '{m.group(1)}mo' for months or '{m.group(1)}min' for minutes"
        )
    word = m.group(2).lower()
    if len(word) > 3 and word.endswith("s"):  # plurals: "mins", "hours", "days"
        word = word[:-1]
    unit = _UNIT_ALIASES.get(word)
    if unit is None:
        raise ValueError(f"invalid timeframe {name!r}: unknown unit {m.group(2)!r}")
    return int(m.group(1)), unit


def parse_timeframe(timeframe: str | Timeframe) -> Timeframe:
    """Return the :class:`Timeframe` for a string such as ``"1min"``, ``"15m"``, ``"1w"``.

    Raises :class:`ValueError` naming the accepted spellings for anything else,
    including the ambiguous ``"1M"``.

    Examples
    --------
    >>> parse_timeframe("5min")
    Timeframe(seconds=300, name='5min')
    >>> parse_timeframe("1D").name
    '1d'
    >>> parse_timeframe("1 month").name
    '1mo'
    """
    if isinstance(timeframe, Timeframe):
        return timeframe
    n, unit = _split(str(timeframe))
    if n <= 0:
        raise ValueError(f"invalid timeframe {timeframe!r}: length must be positive")
    seconds = n * _UNIT_SECONDS[unit]
    if unit in ("d", "w", "mo") and n != 1:
        raise ValueError(
            f"invalid timeframe {timeframe!r}: above hours only '1d', '1w' and '1mo' are supported"
        )
    if seconds < 86400 and 86400 % seconds != 0:
        raise ValueError(f"invalid timeframe {timeframe!r}: must divide one day evenly")
    return Timeframe(seconds=seconds, name=f"{n}{unit}")


def to_utc_ns(ts: pd.Series) -> pd.Series:
    """Return ``ts`` as ``datetime64[ns, UTC]``; naive values are taken to be UTC already."""
    import pandas as pd

    out = pd.to_datetime(ts, utc=True)
    return out.dt.as_unit("ns")
