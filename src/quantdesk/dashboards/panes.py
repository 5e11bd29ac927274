"""The monitor's panes: live alerts, paper positions and P&L, news sentiment, forecasts.

Each pane is a :class:`panel.viewable.Viewer` with ``param`` state that works as a plain
object (build it, call ``refresh()``, read its widgets and parameters).  The monitor
(:class:`~quantdesk.dashboards.monitor.MarketMonitor`) puts them in its slots
(:func:`add_default_panes`) and drives them from its one guarded periodic callback:

* ``bind_source(source)`` when the monitor connects to a feed,
* ``show_symbol(symbol)`` when the selected symbol changes,
* ``refresh()`` on every tick (each pane throttles its own reads),
* ``release()`` when the session is destroyed.

A pane does the work of its own session only: the streaming scan is the hub's (one per
feed per process, :meth:`~quantdesk.dashboards.hub.LiveHub.scanner`); the alerts pane
streams the hub's new alerts into its table.

Paper trades and the replay.  The positions pane trades at the live quote of the
feed shown, and the ledger refuses a quote older than its limit by wall clock.  The
simulator's quotes are stamped now, so trades go through; a replay's quotes carry
their historical dates, so on the replay feed the pane does not trade (its buttons are
disabled and say why) but still values the positions at the replay's prices (reading
never rejects a stale price).

Every text that comes from outside (headlines, sources, a rejection's message) is
HTML-escaped before display.
"""

from __future__ import annotations

import html
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewable, Viewer

if TYPE_CHECKING:
    from quantdesk.dashboards.hub import LiveHub, LiveSource
    from quantdesk.dashboards.live_scan import LiveScanner
    from quantdesk.dashboards.monitor import MarketMonitor
    from quantdesk.data.store.market import MarketStore
    from quantdesk.portfolio.ledger import PaperLedger

__all__ = ["AlertsPane", "ForecastsPane", "PositionsPane", "SentimentPane", "add_default_panes"]

logger = logging.getLogger(__name__)

ALERT_COLUMNS = ("seq", "time", "symbol", "rule", "trigger_price")
FORECAST_PANE_COLUMNS = ("target", "model", "version", "forecast", "origin")
ACCURACY_COLUMNS = ("target", "model", "origin", "n", "metrics")
POSITION_COLUMNS = (
    "symbol", "qty", "avg_cost", "price", "market_value", "unrealized_pnl", "realized_pnl",
)  # fmt: skip


def _alert_time(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


class AlertsPane(Viewer):
    """The latest alerts of the hub's streaming scan, newest first, streamed in.

    Parameters
    ----------
    scanner
        The :class:`~quantdesk.dashboards.live_scan.LiveScanner` to show (``None``:
        empty until :meth:`bind`).
    """

    limit = param.Integer(default=50, bounds=(1, None), doc="Alerts shown.")
    shown = param.Integer(default=0, doc="Alerts streamed in so far.")

    def __init__(self, scanner: LiveScanner | None = None, **params: Any) -> None:
        super().__init__(**params)
        from bokeh.models.widgets.tables import NumberFormatter

        self.scanner: LiveScanner | None = None
        self.seq = 0
        self.table = pn.widgets.Tabulator(
            self._frame([]),
            disabled=True,
            show_index=False,
            # Rows are streamed at the end; the sorter shows the newest first.
            sorters=[{"field": "seq", "dir": "desc"}],
            hidden_columns=["seq"],
            layout="fit_data_table",
            height=260,
            formatters={"trigger_price": NumberFormatter(format="0,0.00")},
            titles={"time": "time (UTC)", "trigger_price": "trigger price"},
            css_classes=["qd-alerts"],
        )
        if scanner is not None:
            self.bind(scanner)

    @staticmethod
    def _frame(alerts: list[dict[str, Any]]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "seq": [int(a["seq"]) for a in alerts],
                "time": [_alert_time(a["ts"]) for a in alerts],
                "symbol": [str(a["symbol"]) for a in alerts],
                "rule": [str(a["rule"]) for a in alerts],
                "trigger_price": [float(a["trigger_price"]) for a in alerts],
            },
            columns=list(ALERT_COLUMNS),
        ).astype({"time": object, "symbol": object, "rule": object})

    def bind(self, scanner: LiveScanner) -> None:
        """Show ``scanner``'s alerts (the table starts with the ones it keeps)."""
        self.scanner = scanner
        self.seq, alerts = scanner.alerts_since(0)
        self.table.value = self._frame(alerts[-self.limit :])
        self.shown = len(self.table.value)

    def bind_source(self, source: LiveSource, hub: LiveHub) -> None:
        """Show the streaming scan of ``source``'s feed."""
        self.bind(hub.scanner(source.kind))

    def refresh(self) -> int:
        """Return the number of alerts streamed into the table since the last call."""
        if self.scanner is None:
            return 0
        self.seq, alerts = self.scanner.alerts_since(self.seq)
        if alerts:
            self.table.stream(self._frame(alerts[-self.limit :]), rollover=self.limit)
            self.shown += len(alerts)
        return len(alerts)

    def rows(self) -> pd.DataFrame:
        """Return the alerts shown, newest first (as the browser sorts them)."""
        frame: pd.DataFrame = self.table.value
        return frame.sort_values("seq", ascending=False).reset_index(drop=True)

    def release(self) -> None:
        """Drop the reference to the hub's scanner."""
        self.scanner = None

    def __panel__(self) -> Viewable:
        return pn.Column(
            pn.pane.Markdown("**Alerts** (streaming scan)", margin=(0, 5)),
            self.table,
            sizing_mode="stretch_width",
        )


class PositionsPane(Viewer):
    """A paper ledger's positions, cash, equity and P&L at live prices, with buy/sell.

    Parameters
    ----------
    ledger
        The :class:`~quantdesk.portfolio.ledger.PaperLedger` shown and traded.
    prices
        The live quote cache positions are valued (and trades priced) at.
    """

    symbol = param.String(default="", doc="Symbol to trade.")
    qty = param.Number(default=1.0, doc="Units to buy or sell.")
    message = param.String(default="", doc="The last trade's fill or rejection.")
    rejected = param.Boolean(default=False, doc="Whether the last trade was refused.")
    tradable = param.Boolean(default=True, doc="Whether this feed's quotes can price trades.")
    min_interval = param.Number(default=1.0, doc="Seconds between two valuations.")

    def __init__(self, ledger: PaperLedger, prices: Any = None, **params: Any) -> None:
        super().__init__(**params)
        from bokeh.models.widgets.tables import NumberFormatter

        self.ledger = ledger
        self.prices = prices
        self._last = -math.inf
        self.snapshot: Any = None
        money = NumberFormatter(format="0,0.00")
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(columns=list(POSITION_COLUMNS)),
            disabled=True,
            show_index=False,
            layout="fit_data_table",
            height=200,
            formatters={c: money for c in POSITION_COLUMNS if c not in ("symbol", "qty")},
            css_classes=["qd-positions"],
            sizing_mode="stretch_width",
        )
        self.summary = pn.pane.HTML("", name="account", sizing_mode="stretch_width")
        self.feedback = pn.pane.HTML("", name="trade-message", sizing_mode="stretch_width")
        self.symbol_input = pn.widgets.TextInput.from_param(
            self.param.symbol, width=100, css_classes=["qd-trade-symbol"]
        )
        self.qty_input = pn.widgets.FloatInput.from_param(
            self.param.qty, width=110, css_classes=["qd-trade-qty"]
        )
        self.buy_button = pn.widgets.Button(
            label="Buy", color="success", width=70, css_classes=["qd-buy"]
        )
        self.sell_button = pn.widgets.Button(
            label="Sell", color="danger", width=70, css_classes=["qd-sell"]
        )
        self.buy_button.on_click(self._on_buy)
        self.sell_button.on_click(self._on_sell)
        self._on_tradable()
        self.refresh(force=True)

    def bind_source(self, source: LiveSource, hub: LiveHub) -> None:
        """Value and trade at ``source``'s quotes (no trades on a replay: they are history)."""
        self.prices = source.cache
        self.tradable = source.kind == "simulator"
        self.refresh(force=True)

    def show_symbol(self, symbol: str) -> None:
        """Preset the trade's symbol to the monitor's selection."""
        self.symbol = symbol

    @param.depends("tradable", watch=True)
    def _on_tradable(self) -> None:
        for button in (self.buy_button, self.sell_button):
            button.disabled = not self.tradable
        if not self.tradable:
            self.message = (
                "Paper trades use the simulator's live quotes: a replay's quotes are "
                "history, stale by the wall clock."
            )
            self.rejected = False

    @param.depends("message", "rejected", watch=True)
    def _on_message(self) -> None:
        if not self.message:
            self.feedback.object = ""
            return
        color = "#c62828" if self.rejected else "#2e7d32"
        css = "qd-trade-rejected" if self.rejected else "qd-trade-filled"
        self.feedback.object = (
            f'<div class="{css}" style="color:{color}">{html.escape(self.message)}</div>'
        )

    def _on_buy(self, event: Any) -> None:
        self.trade("buy")

    def _on_sell(self, event: Any) -> None:
        self.trade("sell")

    def trade(self, side: str) -> bool:
        """Return whether a ``side`` ("buy" or "sell") of :attr:`qty` :attr:`symbol` filled.

        The ledger validates it; a refusal shows its message and writes nothing.
        """
        from quantdesk.errors import TradeRejected

        if not self.tradable:
            return False
        act = self.ledger.buy if side == "buy" else self.ledger.sell
        try:
            filled = act(self.symbol.strip(), self.qty, prices=self.prices)
        except TradeRejected as exc:
            with param.parameterized.batch_call_watchers(self):
                self.rejected = True
                self.message = str(exc)
            return False
        with param.parameterized.batch_call_watchers(self):
            self.rejected = False
            self.message = filled.summary()
        self.refresh(force=True)
        return True

    def refresh(self, force: bool = False) -> bool:
        """Return whether the ledger was valued again (at most every ``min_interval`` s)."""
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return False
        self._last = now
        snap = self.ledger.snapshot(self.prices, include_closed=False)
        self.snapshot = snap
        frame = snap.positions.loc[:, list(POSITION_COLUMNS)].astype({"symbol": object})
        self.table.value = frame.reset_index(drop=True)
        self.summary.object = (
            f'<div class="qd-account"><b>Paper ledger {html.escape(snap.ledger)}</b>: '
            f"cash {snap.cash:,.2f} &middot; equity {snap.equity:,.2f} &middot; "
            f"P&amp;L {snap.total_pnl:,.2f}: "
            f"unrealised P&amp;L {snap.unrealized_pnl:,.2f} &middot; "
            f"realised P&amp;L {snap.realized_pnl:,.2f}</div>"
        )
        return True

    def release(self) -> None:
        """Drop the reference to the shared quote cache."""
        self.prices = None

    def __panel__(self) -> Viewable:
        return pn.Column(
            self.summary,
            pn.Row(self.symbol_input, self.qty_input, self.buy_button, self.sell_button),
            self.feedback,
            self.table,
            sizing_mode="stretch_width",
        )


class SentimentPane(Viewer):
    """The selected symbol's latest scored headlines and its daily sentiment score.

    Parameters
    ----------
    store
        The market store holding the news and its scores.
    """

    symbol = param.String(default="")
    n = param.Integer(default=8, bounds=(1, None), doc="Headlines shown.")
    daily_score = param.Number(default=None, allow_None=True, doc="Latest daily mean score.")
    min_interval = param.Number(default=30.0, doc="Seconds between two reads of the news.")

    def __init__(self, store: MarketStore | Any = None, **params: Any) -> None:
        super().__init__(**params)
        self.store = store
        self.headlines = pd.DataFrame()
        self._last = -math.inf
        self.pane = pn.pane.HTML(self._html(), sizing_mode="stretch_width", name="sentiment")

    def show_symbol(self, symbol: str) -> None:
        """Show ``symbol``'s news (read now)."""
        self.symbol = symbol
        self.refresh(force=True)

    def _scored(self) -> pd.DataFrame:
        from quantdesk.data.store.news import NewsStore
        from quantdesk.errors import StoreNotFoundError

        if self.store is None:
            return pd.DataFrame()
        try:
            return NewsStore(self.store, read_only=True).scored_news([self.symbol])
        except StoreNotFoundError:
            return pd.DataFrame()  # no store file yet: no news, as with no news tables

    def refresh(self, force: bool = False) -> bool:
        """Return whether the news was read again (at most every ``min_interval`` s)."""
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return False
        self._last = now
        from quantdesk.sentiment.headlines import latest_headlines

        scored = self._scored() if self.symbol else pd.DataFrame()
        if scored.empty:
            self.headlines = pd.DataFrame()
            self.daily_score = None
        else:
            self.headlines = latest_headlines(scored, n=self.n, symbols=[self.symbol])
            self.daily_score = _daily_score(scored, self.symbol)
        self.pane.object = self._html()
        return True

    def _html(self) -> str:
        symbol = html.escape(self.symbol or "-")
        head = f'<div class="qd-sentiment"><b>Sentiment of {symbol}</b>'
        if self.headlines.empty:
            return head + ': <span class="qd-no-news">no news</span></div>'
        if self.daily_score is not None:
            head += f': daily score <span class="qd-daily-score">{self.daily_score:+.3f}</span>'
        frame = self.headlines
        rows = [
            f"<tr><td>{ts:%Y-%m-%d %H:%M}</td>"
            f"<td style='text-align:right'>{score:+.3f}</td>"
            f"<td>{html.escape(str(source))}</td>"
            f"<td class='qd-headline'>{html.escape(str(headline))}</td></tr>"
            for ts, score, source, headline in zip(
                pd.to_datetime(frame["ts"], utc=True),
                frame["score"].to_numpy(dtype=float),
                frame["source"],
                frame["headline"],
                strict=True,
            )
        ]
        return head + "<table class='qd-headlines'>" + "".join(rows) + "</table></div>"

    def release(self) -> None:
        """Nothing shared to drop (the store is read per refresh)."""

    def __panel__(self) -> Viewable:
        return self.pane


def _daily_score(scored: pd.DataFrame, symbol: str) -> float | None:
    """Return ``symbol``'s latest daily mean sentiment (``daily_sentiment``), or None.

    The calendar is the weekdays from the first story to the day after the last, so
    every story counts for a session (a story after the close counts for the next day).
    """
    from quantdesk.signals.sentiment import daily_sentiment

    ts = pd.DatetimeIndex(pd.to_datetime(scored["ts"], utc=True))
    start = ts.min().normalize().tz_localize(None)
    end = ts.max().normalize().tz_localize(None) + pd.Timedelta(days=4)
    calendar = pd.bdate_range(start, end, tz="UTC")
    mean = daily_sentiment(scored, calendar, symbols=[symbol]).mean[symbol].dropna()
    return float(mean.iloc[-1]) if len(mean) else None


class ForecastsPane(Viewer):
    """The selected symbol's latest recorded forecasts and their trailing accuracy.

    Reads the forecast record (:func:`quantdesk.forecast.jobs.forecast_view`): the
    forecasts of the latest session forecast, one row per (target, model), and per
    (target, model, origin) the mean losses of the last ``trailing`` scored sessions.
    A symbol without forecasts shows "no forecasts yet"; a record that cannot be read
    (a locked or damaged store) is logged and shown as unavailable, and the next
    refresh tries again.

    Parameters
    ----------
    store
        The market store (or its path) holding the forecast record.
    """

    symbol = param.String(default="")
    session = param.String(default="", doc="The session of the forecasts shown (YYYY-MM-DD).")
    trailing = param.Integer(default=60, bounds=(1, None), doc="Scored sessions in accuracy.")
    error = param.String(default="", doc="Why the record could not be read, if it could not.")
    min_interval = param.Number(default=60.0, doc="Seconds between two reads of the record.")

    def __init__(self, store: MarketStore | Any = None, **params: Any) -> None:
        super().__init__(**params)
        self.store = store
        self.predictions = pd.DataFrame(columns=FORECAST_PANE_COLUMNS)
        self.accuracy = pd.DataFrame(columns=ACCURACY_COLUMNS)
        self._last = -math.inf
        self.pane = pn.pane.HTML(self._html(), sizing_mode="stretch_width", name="forecasts")

    def show_symbol(self, symbol: str) -> None:
        """Show ``symbol``'s forecasts (read now)."""
        self.symbol = symbol
        self.refresh(force=True)

    def _read(self) -> Any:
        from quantdesk.data.store.market import MarketStore
        from quantdesk.forecast.jobs import forecast_view

        store = self.store
        if not isinstance(store, MarketStore):
            store = MarketStore(store, read_only=True)
        return forecast_view(store, self.symbol, history=0, trailing=self.trailing)

    def refresh(self, force: bool = False) -> bool:
        """Return whether the record was read again (at most every ``min_interval`` s)."""
        import duckdb

        from quantdesk.errors import StoreNotFoundError

        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return False
        self._last = now
        self.error, self.session = "", ""
        self.predictions = pd.DataFrame(columns=FORECAST_PANE_COLUMNS)
        self.accuracy = pd.DataFrame(columns=ACCURACY_COLUMNS)
        if self.symbol and self.store is not None:
            try:
                view = self._read()
            except (ValueError, StoreNotFoundError) as exc:  # no forecast of it recorded
                logger.debug("forecasts pane: %s", exc)
            except (duckdb.Error, OSError) as exc:
                logger.exception("forecasts pane: the record of %s is unreadable", self.symbol)
                self.error = str(exc)
            else:
                self._show(view)
        self.pane.object = self._html()
        return True

    def _show(self, view: Any) -> None:
        from quantdesk.forecast.jobs import forecast_text

        self.session = f"{view.session:%Y-%m-%d}"
        self.predictions = pd.DataFrame(
            [
                (p["target"], p["model"], p["version"], forecast_text(p["value"]), p["origin"])
                for p in view.predictions
            ],
            columns=FORECAST_PANE_COLUMNS,
        )
        self.accuracy = pd.DataFrame(
            [
                (
                    a["target"],
                    a["model"],
                    a["origin"],
                    a["n"],
                    ", ".join(f"{k} {v:.4g}" for k, v in a["metrics"].items()),
                )
                for a in view.accuracy
            ],
            columns=ACCURACY_COLUMNS,
        )

    def _html(self) -> str:
        symbol = html.escape(self.symbol or "-")
        head = f'<div class="qd-forecasts"><b>Forecasts of {symbol}</b>'
        if self.error:
            return (
                head + ': <span class="qd-forecast-error">record unavailable: '
                f"{html.escape(self.error)}</span></div>"
            )
        if self.predictions.empty:
            return head + ': <span class="qd-no-forecasts">no forecasts yet</span></div>'
        head += f" as of {html.escape(self.session)}"
        accuracy = (
            _table(self.accuracy, "qd-forecast-accuracy")
            if len(self.accuracy)
            else '<span class="qd-no-scores">none scored yet</span>'
        )
        return (
            head
            + _table(self.predictions, "qd-forecast-latest")
            + f"<b>Accuracy, last {self.trailing} scored sessions</b>"
            + accuracy
            + "</div>"
        )

    def release(self) -> None:
        """Nothing shared to drop (the record is read per refresh)."""

    def __panel__(self) -> Viewable:
        return self.pane


def _table(frame: pd.DataFrame, css: str) -> str:
    """Return ``frame`` as an HTML table, every header and cell escaped."""
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table class='{css}'><tr>{header}</tr>{rows}</table>"


def add_default_panes(monitor: MarketMonitor, hub: LiveHub) -> None:
    """Put the alerts, positions (ledger ``hub.ledger``), sentiment and forecasts panes in."""
    from quantdesk.portfolio.ledger import PaperLedger

    monitor.add_pane("alerts", AlertsPane())
    monitor.add_pane("positions", PositionsPane(PaperLedger(hub.store, name=hub.ledger)))
    monitor.add_pane("sentiment", SentimentPane(hub.store.path))
    monitor.add_pane("forecasts", ForecastsPane(hub.store.path))
