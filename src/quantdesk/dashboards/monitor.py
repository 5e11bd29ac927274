"""The market monitor: watchlist, candle chart, regime pane and slots for later panes.

Every part is a :class:`panel.viewable.Viewer` whose state is ``param`` parameters, so
it works as a plain object without a server: give it a source (a
:class:`~quantdesk.dashboards.hub.LiveSource` or its cache and candles), call
``refresh()`` and read its widgets.  Served, :meth:`MarketMonitor.start_updates` runs
one guarded periodic callback per session (an exception is logged and the next tick
runs as usual, holoviz/panel#5540) and releases it, with the session's references,
when the session is destroyed.

The monitor only updates what changed: the watchlist patches the rows whose quotes
moved since the version it last saw (``QuoteCache.changed_since``), never rebuilding
its table; the chart streams closed candles with a rollover and patches the candle
still forming.

Slots
-----
Later issues add their panes to the named slots of :attr:`MarketMonitor.slots`
(``"alerts"``, ``"positions"`` for paper positions and P&L, ``"sentiment"``,
``"forecasts"``)::

    monitor.add_pane("alerts", AlertsPane(...))

A slot shows a short placeholder until a pane is added; :meth:`MarketMonitor.add_pane`
replaces the placeholder (further panes stack below the first).  By default the monitor
fills them with :mod:`quantdesk.dashboards.panes` (:meth:`MarketMonitor.add_default_panes`;
``panes=False`` leaves them empty).
A pane may have ``bind_source(source, hub)`` (called when the monitor connects to a
feed), ``show_symbol(symbol)``, ``refresh()`` (called on each guarded tick) and
``release()`` (called when the session is destroyed); the monitor calls what it has.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewable, Viewer

from quantdesk.core.html import escape
from quantdesk.dashboards.hub import FEED_KINDS, FeedUnavailableError, LiveHub, LiveSource
from quantdesk.dashboards.panes import (
    AlertsPane,
    ForecastsPane,
    PipelinePane,
    PositionsPane,
    RegimePane,
    SentimentPane,
)

if TYPE_CHECKING:
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure as Figure

    from quantdesk.data.live.quotes import Quote, QuoteCache
    from quantdesk.data.live.recorder import CandleSource

__all__ = [
    "SLOTS",
    "CandleChart",
    "MarketMonitor",
    "Watchlist",
    "change_direction",
    "guarded",
]

logger = logging.getLogger(__name__)

#: The named places later issues fill: alerts (screener), paper positions and P&L,
#: sentiment, forecasts, the evening pipeline.  Values are the placeholder text shown
#: until a pane is added.
SLOTS: dict[str, str] = {
    "alerts": "Alerts: no alert rules yet.",
    "positions": "Paper positions and P&L: no paper ledger yet.",
    "sentiment": "Sentiment: no news feed yet.",
    "forecasts": "Forecasts: none recorded yet.",
    "pipeline": "Pipeline: no pipeline run recorded yet.",
}

UP_COLOR = "#26a69a"
DOWN_COLOR = "#ef5350"

# Tabulator lives in a shadow root: its CSS goes through ``stylesheets``.  A patched
# cell is rendered anew, so the animation replays: that is the flash.
_WATCHLIST_CSS = f"""
.qd-dir {{ display: inline-block; padding: 0 6px; border-radius: 3px; font-weight: 600; }}
.qd-up {{ color: {UP_COLOR}; animation: qd-flash-up 0.8s ease-out; }}
.qd-down {{ color: {DOWN_COLOR}; animation: qd-flash-down 0.8s ease-out; }}
.qd-flat {{ color: #888888; }}
@keyframes qd-flash-up {{ from {{ background: rgba(38, 166, 154, 0.45); }} to {{ }} }}
@keyframes qd-flash-down {{ from {{ background: rgba(239, 83, 80, 0.45); }} to {{ }} }}
"""
_DIRECTION_TEMPLATE = (
    '<span class="qd-dir qd-<%= value %>">'
    "<%= value == 'up' ? '&#9650; up' : (value == 'down' ? '&#9660; down' : '&#8211;') %>"
    "</span>"
)
WATCHLIST_COLUMNS = ("price", "change", "change_pct", "direction", "time")
# Decimals of the change shown (and of the value its arrow is read from).
CHANGE_DECIMALS = 2


def guarded(fn: Callable[[], Any], name: str) -> Callable[[], None]:
    """Return ``fn`` wrapped so that an exception is logged and the next call runs as usual.

    Panel's periodic callbacks used to stop silently on an exception
    (holoviz/panel#5540); every periodic callback of the monitor goes through this.

    Examples
    --------
    >>> calls = []
    >>> def flaky():
    ...     calls.append(1)
    ...     if len(calls) == 1:
    ...         raise RuntimeError("first tick fails")
    >>> tick = guarded(flaky, "demo")
    >>> tick(); tick(); len(calls)
    2
    """

    def run() -> None:
        try:
            fn()
        except Exception:
            logger.exception("%s failed; updates go on at the next tick", name)

    run.__name__ = f"guarded_{name}"
    return run


def _time_text(ts: pd.Timestamp) -> str:
    """Return the tick time for the watchlist: ``HH:MM:SS.mmm`` today, else the date too (UTC).

    A replay's ticks are history: their date is what matters.
    """
    if ts.date() == pd.Timestamp.now(tz="UTC").date():
        return ts.strftime("%H:%M:%S.%f")[:-3]
    return ts.strftime("%Y-%m-%d %H:%M")


def change_direction(change: float) -> str:
    """Return the watchlist arrow of a change: ``"up"``, ``"down"`` or ``"flat"`` (0 or NaN).

    Examples
    --------
    >>> [change_direction(x) for x in (0.01, -0.01, 0.0, float("nan"))]
    ['up', 'down', 'flat', 'flat']
    """
    return "up" if change > 0 else "down" if change < 0 else "flat"


def _quote_row(quote: Quote) -> dict[str, Any]:
    """Return a quote's watchlist cells; the arrow is the sign of the change shown beside it.

    The change is rounded to the decimals shown (``-0.0`` becomes ``0.0``), and the
    direction is read from that very value: an arrow never disagrees with its number.
    (The quote's own ``direction``, tick against tick, is another move.)
    """
    change = round(quote.change, CHANGE_DECIMALS) + 0.0
    change_pct = quote.change_pct * 100.0
    return {
        "price": round(quote.price, 4),
        "change": change,
        "change_pct": round(change_pct, 3) if math.isfinite(change_pct) else float("nan"),
        "direction": change_direction(change),
        "time": _time_text(quote.ts),
    }


class Watchlist(Viewer):
    """A watchlist of last price, change, change % and its direction, patched in place.

    The arrow is the sign of the change from the previous close shown beside it.

    Parameters
    ----------
    cache
        The quote cache to read (``None``: an empty table until :meth:`bind`).
    symbols
        The rows, in order.
    """

    selected = param.String(default="", doc="Symbol of the row last clicked.")
    patched_rows = param.Integer(default=0, doc="Rows patched by the last refresh.")

    def __init__(
        self, cache: QuoteCache | None = None, symbols: list[str] | None = None, **params: Any
    ) -> None:
        super().__init__(**params)
        from bokeh.models.widgets.tables import HTMLTemplateFormatter, NumberFormatter

        self.cache: QuoteCache | None = None
        self.version = 0
        self._rows: dict[str, int] = {}
        self.table = pn.widgets.Tabulator(
            self._frame([]),
            disabled=True,
            selectable=1,
            show_index=True,
            sortable=False,
            layout="fit_data_table",
            height=420,
            width=470,
            formatters={
                "price": NumberFormatter(format="0,0.00"),
                "change": NumberFormatter(format="+0,0." + "0" * CHANGE_DECIMALS),
                "change_pct": NumberFormatter(format="+0.00"),
                "direction": HTMLTemplateFormatter(template=_DIRECTION_TEMPLATE),
            },
            titles={"change_pct": "change %", "time": "time (UTC)"},
            stylesheets=[_WATCHLIST_CSS],
        )
        self.table.param.watch(self._on_selection, "selection")
        if cache is not None:
            self.bind(cache, symbols or cache.symbols())

    @staticmethod
    def _frame(symbols: list[str]) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "price": np.full(len(symbols), np.nan),
                "change": np.full(len(symbols), np.nan),
                "change_pct": np.full(len(symbols), np.nan),
                "direction": ["flat"] * len(symbols),
                "time": [""] * len(symbols),
            },
            index=pd.Index(symbols, name="symbol", dtype=object),
        )
        # object columns: cheaper to write into than pandas' arrow-backed strings
        return frame.astype({"direction": object, "time": object})

    def bind(self, cache: QuoteCache, symbols: list[str]) -> None:
        """Show ``symbols`` from ``cache`` (a new feed: the one time the table is rebuilt)."""
        self.cache = cache
        self._rows = {s: i for i, s in enumerate(symbols)}
        # The new table starts with the quotes so far: a patch sent before the browser
        # has drawn the table would be lost.
        self.version, quotes = cache.changed_since(0)
        frame = self._frame(list(symbols))
        for quote in quotes:
            if quote.symbol in self._rows:
                for column, value in _quote_row(quote).items():
                    frame.loc[quote.symbol, column] = value
        self.table.value = frame
        self.table.height = min(420, 40 + 29 * max(len(symbols), 1))

    def refresh(self) -> int:
        """Return the number of rows patched with the quotes changed since the last call."""
        if self.cache is None:
            return 0
        self.version, quotes = self.cache.changed_since(self.version)
        rows: list[int] = []
        values: dict[str, list[Any]] = {c: [] for c in WATCHLIST_COLUMNS}
        for quote in quotes:
            row = self._rows.get(quote.symbol)
            if row is None:
                continue
            rows.append(row)
            for column, value in _quote_row(quote).items():
                values[column].append(value)
        if rows:
            self._patch_rows(rows, values)
        self.patched_rows = len(rows)
        return len(rows)

    def _patch_rows(self, rows: list[int], values: dict[str, list[Any]]) -> None:
        """Patch ``rows`` of the table: one write per column here, changed cells to the browser.

        ``Tabulator.patch`` writes its frame one cell at a time through
        ``DataFrame.iloc`` (about 0.4 ms a cell: 50 symbols' updates cost 60 ms a tick,
        most of the monitor's lag); this writes each column once and hands the very
        same patch to Tabulator's own sender, which skips nothing it would have done
        for this table (no filters, sorters or pagination).
        """
        frame = self.table.value
        send = getattr(self.table, "_patch", None)
        if send is None:  # another Panel: the public, slower path
            self.table.patch(
                {c: list(zip(rows, v, strict=True)) for c, v in values.items()}, as_index=False
            )
            return
        for column, column_values in values.items():
            frame.iloc[rows, frame.columns.get_loc(column)] = column_values
        send({c: list(zip(rows, v, strict=True)) for c, v in values.items()})

    def _on_selection(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.selected = str(self.table.value.index[event.new[0]])

    def __panel__(self) -> Viewable:
        return self.table


class CandleChart(Viewer):
    """A candlestick chart of one symbol: closed candles streamed, the open one patched.

    The closed candles live in a ``ColumnDataSource`` named ``"candles-closed"``
    (``stream(..., rollover=rollover)``); the candle still forming in a one-row source
    named ``"candles-open"``; the figure is named ``"candle-chart"`` and its title is
    ``"{symbol} {timeframe}"``.  Switching symbol or timeframe resets both sources.
    """

    symbol = param.String(default="")
    timeframe = param.String(default="")
    rollover = param.Integer(default=500, bounds=(10, None), doc="Closed candles kept.")
    streamed = param.Integer(default=0, doc="Closed candles streamed by the last refresh.")

    def __init__(self, candles: CandleSource | None = None, **params: Any) -> None:
        super().__init__(**params)
        from bokeh.models import ColumnDataSource, HoverTool
        from bokeh.models.annotations import Title
        from bokeh.plotting import figure

        self.candles = candles
        self.version = 0
        self.closed: ColumnDataSource = ColumnDataSource(self._empty(), name="candles-closed")
        self.open: ColumnDataSource = ColumnDataSource(self._empty(), name="candles-open")
        fig: Figure = figure(
            name="candle-chart",
            title=self._title(),
            x_axis_type="datetime",
            height=420,
            sizing_mode="stretch_width",
            tools="pan,xwheel_zoom,box_zoom,reset",
            active_scroll="xwheel_zoom",
        )
        for source, alpha in ((self.closed, 1.0), (self.open, 0.55)):
            fig.segment("ts", "high", "ts", "low", source=source, color="color", alpha=alpha)
            fig.vbar(
                "ts",
                "width",
                "open",
                "close",
                source=source,
                fill_color="color",
                line_color="color",
                alpha=alpha,
            )
        fig.add_tools(
            HoverTool(
                tooltips=[
                    ("time", "@ts{%F %T}"),
                    ("open", "@open{0,0.00}"),
                    ("high", "@high{0,0.00}"),
                    ("low", "@low{0,0.00}"),
                    ("close", "@close{0,0.00}"),
                ],
                formatters={"@ts": "datetime"},
            )
        )
        self.figure = fig
        assert isinstance(fig.title, Title)  # figure() always makes a Title model
        self.title: Title = fig.title
        self.pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width", name="chart")
        if candles is not None:
            self.bind(candles, self.symbol, self.timeframe)

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {c: [] for c in ("ts", "open", "high", "low", "close", "volume", "color", "width")}

    def _title(self) -> str:
        return f"{self.symbol} {self.timeframe}".strip() or "no symbol"

    def _columns(self, frame: pd.DataFrame) -> dict[str, Any]:
        """Return the source columns of candles (``ts`` in epoch milliseconds)."""
        from quantdesk.data.schemas import parse_timeframe

        seconds = parse_timeframe(self.timeframe).seconds if self.timeframe else 60
        ts = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True))
        opens = frame["open"].to_numpy(dtype=float)
        closes = frame["close"].to_numpy(dtype=float)
        return {
            "ts": list(ts.as_unit("ms").asi8.astype(float)),
            "open": list(opens),
            "high": list(frame["high"].to_numpy(dtype=float)),
            "low": list(frame["low"].to_numpy(dtype=float)),
            "close": list(closes),
            "volume": list(frame["volume"].to_numpy(dtype=float)),
            "color": [
                UP_COLOR if c >= o else DOWN_COLOR for o, c in zip(opens, closes, strict=True)
            ],
            "width": [seconds * 1000 * 0.7] * len(frame),
        }

    def bind(self, candles: CandleSource, symbol: str, timeframe: str) -> None:
        """Show ``symbol`` at ``timeframe`` from ``candles``: reset the sources and the title."""
        self.candles = candles
        with param.parameterized.batch_call_watchers(self):
            self.symbol = symbol
            self.timeframe = timeframe
        self.title.text = self._title()
        self.version = candles.version
        history = candles.recent(symbol, self.rollover) if symbol else pd.DataFrame()
        self.closed.data = self._columns(history) if len(history) else self._empty()
        self.open.data = self._empty()
        self._patch_open()

    def refresh(self) -> int:
        """Return the number of closed candles streamed; the open candle is patched too."""
        if self.candles is None or not self.symbol:
            return 0
        self.version, closed = self.candles.closed_since(self.version)
        streamed = 0
        if len(closed):
            mine = closed.loc[closed["symbol"] == self.symbol]
            if len(mine):
                self.closed.stream(self._columns(mine), rollover=self.rollover)
                streamed = len(mine)
        self._patch_open()
        self.streamed = streamed
        return streamed

    def _patch_open(self) -> None:
        candle = self.candles.open_candle(self.symbol) if self.candles and self.symbol else None
        if candle is None:
            if len(self.open.data["ts"]):
                self.open.data = self._empty()
            return
        row = self._columns(pd.DataFrame([candle]))
        if len(self.open.data["ts"]) == 1:
            self.open.patch({c: [(0, v[0])] for c, v in row.items()})
        else:
            self.open.data = row

    def __panel__(self) -> Viewable:
        return self.pane


class MarketMonitor(Viewer):
    """The market monitor: controls, watchlist, candle chart, regime view and empty slots.

    Parameters
    ----------
    hub
        The process's :class:`~quantdesk.dashboards.hub.LiveHub` (one feed of each kind,
        shared by every session).
    period
        Milliseconds between two updates of a served session.

    Notes
    -----
    The feeds are the server's: changing the replay speed changes it for every session
    watching the replay.
    """

    feed: param.Selector = param.Selector(objects=list(FEED_KINDS), default="simulator")
    symbol: param.Selector = param.Selector(objects=[], default=None, allow_None=True)
    timeframe: param.Selector = param.Selector(objects=[], default=None, allow_None=True)
    speed = param.Number(default=3600.0, bounds=(1.0, None), doc="Replay speed (x real time).")
    message = param.String(default="", doc="What the monitor wants the user to know.")

    def __init__(
        self, hub: LiveHub, *, period: int = 250, panes: bool = True, **params: Any
    ) -> None:
        super().__init__(**params)
        self.hub = hub
        self.period = int(period)
        self.source: LiveSource | None = None
        self.callback: Any = None
        self.watchlist = Watchlist()
        self.chart = CandleChart()
        self.regime = RegimePane(store=hub.store)
        self.slots: dict[str, pn.Column] = {
            name: pn.Column(
                pn.pane.Markdown(text, styles={"color": "#777"}),
                name=name,
                sizing_mode="stretch_width",
            )
            for name, text in SLOTS.items()
        }
        self._filled: set[str] = set()
        self.panes: list[Any] = []
        self._message = pn.pane.Alert("", alert_type="warning", visible=False, name="message")
        self.speed = hub.speed
        # The replay speed is the server's (every session watches the same replay).
        self._speed_input = pn.widgets.FloatInput.from_param(
            self.param.speed, label="replay speed", width=120, start=1.0
        )
        self.watchlist.param.watch(self._on_row_click, "selected")
        if panes:
            self.add_default_panes()
        self._connect(self.feed)

    # -- state -------------------------------------------------------------------------

    def _connect(self, kind: str) -> bool:
        try:
            source = self.hub.source(kind)  # type: ignore[arg-type]
        except FeedUnavailableError as exc:
            self.message = str(exc)
            return False
        self.message = ""
        self.source = source
        self._speed_input.disabled = source.kind != "replay"
        self.watchlist.bind(source.cache, source.symbols)
        self._call_panes("bind_source", source, self.hub)
        symbols = source.symbols
        self.param.symbol.objects = symbols
        self.param.timeframe.objects = list(source.timeframes)
        with param.parameterized.discard_events(self):
            self.timeframe = source.timeframes[0]
            self.symbol = symbols[0] if symbols else None
        self._show_symbol()
        return True

    def _show_symbol(self) -> None:
        if self.source is None or not self.symbol or not self.timeframe:
            return
        candles = self.source.candles(self.timeframe)
        self.chart.bind(candles, self.symbol, self.timeframe)
        daily = self.timeframe == "1d"
        self.regime.bind(self.symbol, candles if daily else None)
        self._call_panes("show_symbol", self.symbol)

    @param.depends("feed", watch=True)
    def _on_feed(self) -> None:
        previous = self.source.kind if self.source is not None else None
        if not self._connect(self.feed) and previous is not None:
            message = self.message
            self.feed = previous  # back to the feed that works (its widget follows)
            self.message = message

    @param.depends("symbol", "timeframe", watch=True)
    def _on_symbol(self) -> None:
        self._show_symbol()

    @param.depends("speed", watch=True)
    def _on_speed(self) -> None:
        self.hub.set_speed(self.speed)

    @param.depends("message", watch=True)
    def _on_message(self) -> None:
        self._message.object = escape(self.message)
        self._message.visible = bool(self.message)

    def _on_row_click(self, event: param.parameterized.Event) -> None:
        if event.new and event.new in (self.param.symbol.objects or []):
            self.symbol = event.new

    # -- updates -----------------------------------------------------------------------

    def update(self) -> None:
        """Bring the watchlist, the chart, the regime view and the panes up to date (one tick)."""
        self.watchlist.refresh()
        self.chart.refresh()
        self.regime.refresh()
        self._call_panes("refresh")

    def start_updates(self) -> Any:
        """Return the session's periodic callback after starting it (guarded; released on close).

        In a served session the callback and this monitor's references are released
        when the session is destroyed; outside a server call :meth:`release` yourself.
        """
        if self.callback is None:
            served = pn.state.curdoc is not None
            self.callback = pn.state.add_periodic_callback(
                guarded(self.update, "market monitor update"),
                period=self.period,
                start=not served,
            )
            if served:
                # Patches that reach Tabulator while it is still building its table fail
                # in the browser (tabulator-tables#4800): start once the page has loaded.
                pn.state.onload(self._start_callback)
                pn.state.on_session_destroyed(self._session_destroyed)
        return self.callback

    def _start_callback(self) -> None:
        if self.callback is not None and not self.callback.running:
            self.callback.start()

    def _session_destroyed(self, session_context: Any) -> None:
        # bokeh insists on exactly this signature for session-destroyed callbacks.
        self.release()

    def release(self) -> None:
        """Stop the periodic callback and drop the references to the shared feed."""
        if self.callback is not None:
            self.callback.stop()
            self.callback = None
        self.source = None
        self.watchlist.cache = None
        self.chart.candles = None
        self.regime.candles = None
        self._call_panes("release")
        logger.debug("market monitor session released")

    # -- slots -------------------------------------------------------------------------

    def _call_panes(self, method: str, *args: Any) -> None:
        """Call ``method`` of every pane that has it, each guarded.

        One pane failing (a store locked too long, a bad row) is logged and leaves the
        others, the monitor and the next tick running.
        """
        for pane in self.panes:
            fn = getattr(pane, method, None)
            if callable(fn):
                guarded(functools.partial(fn, *args), f"{type(pane).__name__}.{method}")()

    def add_pane(self, slot: str, viewable: Any) -> None:
        """Put ``viewable`` in a named slot (alerts, positions, sentiment, forecasts).

        The first pane replaces the slot's placeholder; later ones stack below it.

        Raises
        ------
        KeyError
            ``slot`` is not one of :data:`SLOTS`.
        """
        if slot not in self.slots:
            raise KeyError(f"no slot {slot!r}; slots are {sorted(self.slots)}")
        column = self.slots[slot]
        if slot not in self._filled:
            column.objects = []
            self._filled.add(slot)
        column.append(viewable)
        self.panes.append(viewable)
        if self.source is not None and hasattr(viewable, "bind_source"):
            viewable.bind_source(self.source, self.hub)
        if self.symbol and hasattr(viewable, "show_symbol"):
            viewable.show_symbol(self.symbol)

    def add_default_panes(self) -> None:
        """Put the alerts, positions (``hub.ledger``), sentiment, forecasts, pipeline panes in."""
        from quantdesk.portfolio.ledger import PaperLedger

        store = self.hub.store
        self.add_pane("alerts", AlertsPane())
        self.add_pane("positions", PositionsPane(PaperLedger(store, name=self.hub.ledger)))
        self.add_pane("sentiment", SentimentPane(store.path))
        self.add_pane("forecasts", ForecastsPane(store.path))
        self.add_pane("pipeline", PipelinePane(store.path))

    # -- layout ------------------------------------------------------------------------

    def __panel__(self) -> Viewable:
        controls = pn.Row(
            pn.widgets.RadioButtonGroup.from_param(self.param.feed),
            pn.widgets.Select.from_param(self.param.symbol, width=140),
            pn.widgets.Select.from_param(self.param.timeframe, width=100),
            self._speed_input,
        )
        self._on_message()
        # The trading panes side by side; the pipeline's step table below them, full
        # width (beside them it grows over their buttons).
        panes = dict(self.slots)
        pipeline = panes.pop("pipeline")
        return pn.Column(
            pn.pane.Markdown("## quantdesk market monitor", margin=(0, 10)),
            controls,
            self._message,
            pn.Row(
                pn.Column(self.watchlist, self.regime, width=490),
                pn.Column(self.chart, sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            ),
            pn.Row(*panes.values(), sizing_mode="stretch_width"),
            pn.Row(pipeline, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
