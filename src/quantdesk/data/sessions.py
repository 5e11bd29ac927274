"""Exchange sessions: which days an exchange trades, when each closes, in its time zone.

One home for the trading calendar (holidays, early closes, the exchange's time zone),
read from the maintained ``exchange_calendars`` library, never from weekdays alone.
A session is named by its date (a naive midnight :class:`pandas.Timestamp`, the
library's convention); its bars are stored at that date 00:00 UTC (the bar contract).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["DEFAULT_EXCHANGE", "SessionCalendar", "session_calendar"]

#: The exchange whose sessions the evening pipeline follows by default (New York).
DEFAULT_EXCHANGE = "XNYS"


@functools.lru_cache(maxsize=8)
def _calendar(exchange: str) -> Any:
    import warnings

    import exchange_calendars as xcals

    try:
        # exchange_calendars builds its tables with a pandas call that pandas 3.1
        # deprecates (Series.values on tz-aware data); the library's concern, not ours.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            return xcals.get_calendar(exchange)
    except Exception as exc:  # InvalidCalendarName and friends
        raise ValueError(
            f"unknown exchange calendar {exchange!r} (e.g. XNYS, XLON, XTKS): {exc}"
        ) from exc


def _day(value: Any) -> pd.Timestamp:
    """Return ``value`` as a naive midnight date (a session label)."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.normalize()


@dataclass(frozen=True)
class SessionCalendar:
    """The sessions of one exchange.

    Examples
    --------
    >>> cal = session_calendar("XNYS")
    >>> [d.strftime("%m-%d") for d in cal.sessions("2024-07-01", "2024-07-08")]
    ['07-01', '07-02', '07-03', '07-05', '07-08']
    >>> cal.close("2024-07-03").strftime("%H:%M %Z")  # an early close
    '13:00 EDT'
    """

    exchange: str = DEFAULT_EXCHANGE

    @property
    def _cal(self) -> Any:
        return _calendar(self.exchange)

    @property
    def tz(self) -> str:
        """Return the exchange's IANA time zone."""
        return str(self._cal.tz)

    def is_session(self, day: Any) -> bool:
        """Return whether the exchange trades on ``day``."""
        return bool(self._cal.is_session(_day(day)))

    def check(self, day: Any) -> pd.Timestamp:
        """Return ``day`` as a session label; ValueError names the next session if it is not one."""
        label = _day(day)
        if not self.is_session(label):
            after = self._cal.date_to_session(label, direction="next")
            raise ValueError(
                f"{label:%Y-%m-%d} is not a {self.exchange} session (holiday or weekend); "
                f"the next session is {after:%Y-%m-%d}"
            )
        return label

    def sessions(self, start: Any, end: Any) -> list[pd.Timestamp]:
        """Return the sessions from ``start`` to ``end`` (inclusive), in order."""
        return list(self._cal.sessions_in_range(_day(start), _day(end)))

    def regular_close(self) -> tuple[int, int]:
        """Return ``(hour, minute)`` of the exchange's regular close, in its time zone.

        >>> session_calendar("XNYS").regular_close()
        (16, 0)
        """
        close = self._cal.close_times[-1][1]
        return int(close.hour), int(close.minute)

    def close(self, day: Any) -> pd.Timestamp:
        """Return the session's close in the exchange's time zone (early closes included)."""
        return pd.Timestamp(self._cal.session_close(self.check(day))).tz_convert(self.tz)

    def next_session(self, day: Any) -> pd.Timestamp:
        """Return the first session strictly after ``day``."""
        return pd.Timestamp(self._cal.date_to_session(_day(day) + pd.Timedelta(days=1), "next"))

    def previous_session(self, day: Any) -> pd.Timestamp:
        """Return the last session strictly before ``day``."""
        return pd.Timestamp(self._cal.date_to_session(_day(day) - pd.Timedelta(days=1), "previous"))

    def last_closed(self, now: datetime | pd.Timestamp, delay: pd.Timedelta) -> pd.Timestamp:
        """Return the latest session whose close plus ``delay`` is at or before ``now``."""
        now = pd.Timestamp(now)
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        day = self._cal.date_to_session(_day(now.tz_convert(self.tz).tz_localize(None)), "previous")
        while self.close(day) + delay > now:
            day = self.previous_session(day)
        return pd.Timestamp(day)

    def due(
        self, last_done: Any, now: datetime | pd.Timestamp, delay: pd.Timedelta
    ) -> list[pd.Timestamp]:
        """Return the sessions after ``last_done`` whose close (+ ``delay``) has passed, in order.

        With ``last_done`` None only the latest closed session is due (a first run does
        not replay history; ``backfill`` does that on request).
        """
        latest = self.last_closed(now, delay)
        if last_done is None:
            return [latest]
        first = self.next_session(last_done)
        return self.sessions(first, latest) if first <= latest else []


def session_calendar(exchange: str = DEFAULT_EXCHANGE) -> SessionCalendar:
    """Return the calendar of ``exchange`` (an ISO 10383 MIC such as ``XNYS``), checked."""
    _calendar(exchange)
    return SessionCalendar(exchange)
