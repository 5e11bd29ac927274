"""Exchange sessions from exchange_calendars: holidays, early closes, time zone, what is due."""

from __future__ import annotations

import pandas as pd
import pytest

from quantdesk.data.sessions import SessionCalendar, session_calendar

NY = "America/New_York"


def test_holidays_and_early_closes_come_from_the_exchange_calendar() -> None:
    cal = session_calendar("XNYS")
    assert cal.tz == NY
    days = [d.strftime("%m-%d") for d in cal.sessions("2024-07-01", "2024-07-08")]
    assert days == ["07-01", "07-02", "07-03", "07-05", "07-08"]  # 4 July: holiday
    assert cal.close("2024-07-03") == pd.Timestamp("2024-07-03 13:00", tz=NY)  # early close
    assert cal.close("2024-07-05") == pd.Timestamp("2024-07-05 16:00", tz=NY)
    with pytest.raises(ValueError, match=r"2024-07-04 is not a XNYS session.*2024-07-05"):
        cal.check("2024-07-04")
    assert session_calendar("XLON").tz == "Europe/London"
    with pytest.raises(ValueError, match="unknown exchange calendar 'NOPE'"):
        session_calendar("NOPE")


def test_a_session_is_due_once_its_close_plus_the_delay_has_passed() -> None:
    cal, delay = SessionCalendar("XNYS"), pd.Timedelta(minutes=30)
    # The early close of 3 July (13:00) is due at 13:30 New York, not at 16:30.
    assert cal.due("2024-07-02", pd.Timestamp("2024-07-03 13:29", tz=NY), delay) == []
    assert cal.due("2024-07-02", pd.Timestamp("2024-07-03 13:30", tz=NY), delay) == [
        pd.Timestamp("2024-07-03")
    ]
    # Past midnight UTC (20:30 New York = 00:30 UTC next day) the session is still the 8th.
    late = pd.Timestamp("2024-07-09 00:30", tz="UTC")
    assert cal.due("2024-07-02", late, delay) == [
        pd.Timestamp(d) for d in ("2024-07-03", "2024-07-05", "2024-07-08")
    ]
    # With nothing done yet only the latest closed session is due.
    assert cal.due(None, late, delay) == [pd.Timestamp("2024-07-08")]
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.last_closed(pd.Timestamp("2024-07-09 12:00"), delay)
