"""The monitor's panes: the current regime, live alerts, paper positions and P&L, news
sentiment, forecasts, the evening pipeline's status.

Each pane is a :class:`panel.viewable.Viewer` with ``param`` state that works as a plain
object (build it, call ``refresh()``, read its widgets and parameters).  The monitor
(:class:`~quantdesk.dashboards.monitor.MarketMonitor`) assembles them (its slots and
:meth:`~quantdesk.dashboards.monitor.MarketMonitor.add_default_panes`; a pane never
imports the monitor) and drives them from its one guarded periodic callback:

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
HTML-escaped before display: the panes' HTML is made by :func:`quantdesk.core.html.element`.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewable, Viewer

from quantdesk.core.html import Html, element, frame_table

if TYPE_CHECKING:
    from quantdesk.dashboards.hub import LiveHub, LiveSource
    from quantdesk.data.live.recorder import CandleSource
    from quantdesk.data.store.market import MarketStore
    from quantdesk.portfolio.ledger import PaperLedger
    from quantdesk.regimes.snapshot import CurrentRegime
    from quantdesk.screener.live import LiveScanner

__all__ = [
    "AlertsPane",
    "ForecastsPane",
    "PipelinePane",
    "PositionsPane",
    "RegimePane",
    "SentimentPane",
]

logger = logging.getLogger(__name__)

ALERT_COLUMNS = ("seq", "time", "symbol", "rule", "trigger_price")
FORECAST_PANE_COLUMNS = ("target", "model", "version", "forecast", "origin")
ACCURACY_COLUMNS = ("target", "model", "origin", "n", "metrics")
POSITION_COLUMNS = (
    "symbol", "qty", "avg_cost", "price", "market_value", "unrealized_pnl", "realized_pnl",
)  # fmt: skip
PIPELINE_COLUMNS = ("step", "state", "attempt", "duration", "error")


def _alert_time(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


class RegimePane(Viewer):
    """The selected symbol's current regime and its nine filtered probabilities.

    With a saved model (``ModelRegistry``, name ``model_name``) for the symbol, the
    model filters the symbol's daily bars (stored bars, or the replay's candles so far);
    without one, the newest stored regime row is shown; with neither, "no model".  The
    regime shown is :func:`quantdesk.regimes.snapshot.current_regime` of those rows.
    """

    symbol = param.String(default="")
    label = param.String(default="no model", doc="The current regime, or why there is none.")
    source = param.String(default="", doc="Where the regime comes from.")
    model_name = param.String(default="regimes")
    min_interval = param.Number(default=2.0, doc="Seconds between two filter runs.")

    def __init__(
        self,
        store: MarketStore | Any = None,
        models: str | None = None,
        candles: CandleSource | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.store = store
        self.models_url = models
        self.candles = candles
        self.current: CurrentRegime | None = None
        self._models: dict[str, Any] = {}
        self._last = -math.inf
        self._seen = -1
        self.pane = pn.pane.HTML(self._html(), sizing_mode="stretch_width", name="regime")

    @property
    def probabilities(self) -> dict[str, float]:
        """Return the nine probabilities of the regime shown, keyed ``"vol/trend"`` (or {})."""
        return dict(self.current.probabilities) if self.current is not None else {}

    def bind(self, symbol: str, candles: CandleSource | None = None) -> None:
        """Show ``symbol`` (its regime from ``candles`` when daily, else from the store)."""
        self.symbol = symbol
        self.candles = candles
        self.refresh(force=True)

    def _model(self, symbol: str) -> Any:
        if symbol not in self._models:
            from quantdesk.regimes.registry import ModelRegistry

            try:
                self._models[symbol] = ModelRegistry(self.models_url).load(self.model_name, symbol)
            except (KeyError, ValueError, OSError, ImportError):
                self._models[symbol] = None
        return self._models[symbol]

    def _bars(self) -> pd.DataFrame:
        if self.candles is not None:
            bars = self.candles.recent(self.symbol, 2000)
            if len(bars):
                return bars
        if self.store is None:
            return pd.DataFrame()
        from quantdesk.data.store.market import UnknownSymbolError

        try:
            stored: pd.DataFrame = self.store.bars(self.symbol, timeframe="1d")
        except UnknownSymbolError:
            return pd.DataFrame()
        return stored

    def refresh(self, force: bool = False) -> bool:
        """Return whether the regime was computed again.

        Stored bars and regimes are read once per :meth:`bind`; live daily candles are
        filtered again when new ones closed, at most every ``min_interval`` seconds.
        """
        from quantdesk.regimes.snapshot import current_regime

        now = time.monotonic()
        version = self.candles.version if self.candles is not None else 0
        if not force and (version == self._seen or now - self._last < self.min_interval):
            return False
        self._last, self._seen = now, version
        current, source = None, ""
        model = self._model(self.symbol) if self.symbol else None
        if model is not None:
            bars = self._bars()
            filtered = model.filter(bars) if len(bars) else pd.DataFrame()
            if len(filtered):
                as_of = pd.Timestamp(filtered.index[-1])
                source = f"model {self.model_name}, filtered to {as_of:%F}"
                current = current_regime(filtered, self.symbol, source=source)
            else:
                source = f"model {self.model_name}: too few bars to filter yet ({len(bars)})"
        elif self.store is not None and self.symbol:
            current = self._stored()
            if current is not None:
                source = f"stored regimes {current.source} at {current.as_of:%F}"
        self.current = current
        with param.parameterized.batch_call_watchers(self):
            self.label = current.label if current is not None else "no model"
            self.source = source
        self.pane.object = self._html()
        return True

    def _stored(self) -> CurrentRegime | None:
        from quantdesk.regimes.snapshot import current_regime

        try:
            return current_regime(self.store, self.symbol)
        except LookupError:  # nothing stored for the symbol
            return None
        except Exception:  # an unreadable store shows "no model", the log says why
            logger.exception("could not read stored regimes of %s", self.symbol)
            return None

    def _html(self) -> Html:
        from quantdesk.core.charts import REGIME_COLORS

        head: list[Any] = [
            element("b", f"Regime of {self.symbol or '-'}"),
            ": ",
            element("span", self.label, cls="qd-regime-label"),
        ]
        if self.source:
            head += [" ", element("small", f"({self.source})", style="color:#777")]
        if not self.probabilities:
            return element("div", *head, cls="qd-regime")
        rows = [
            element(
                "tr",
                element("td", cell),
                element(
                    "td",
                    element(
                        "div",
                        style=f"background:{REGIME_COLORS.get(cell, '#999999')};"
                        f"width:{max(p, 0.0) * 100:.1f}%;height:10px",
                    ),
                    style="width:140px",
                ),
                element("td", f"{p:.3f}"),
            )
            for cell, p in self.probabilities.items()
        ]
        return element(
            "div", *head, element("table", *rows, cls="qd-regime-probs"), cls="qd-regime"
        )

    def __panel__(self) -> Viewable:
        return self.pane


class AlertsPane(Viewer):
    """The latest alerts of the hub's streaming scan, newest first, streamed in.

    Parameters
    ----------
    scanner
        The :class:`~quantdesk.screener.live.LiveScanner` to show (``None``:
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
        self.feedback.object = element("div", self.message, cls=css, style=f"color:{color}")

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
        self.summary.object = element(
            "div",
            element("b", f"Paper ledger {snap.ledger}"),
            f": cash {snap.cash:,.2f} \u00b7 equity {snap.equity:,.2f} \u00b7 "
            f"P&L {snap.total_pnl:,.2f}: unrealised P&L {snap.unrealized_pnl:,.2f} \u00b7 "
            f"realised P&L {snap.realized_pnl:,.2f}",
            cls="qd-account",
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
        from quantdesk.data.store.market import as_store
        from quantdesk.data.store.news import NewsStore

        if self.store is None:
            return pd.DataFrame()
        if not as_store(self.store).exists():  # a handle: it opens nothing
            return pd.DataFrame()  # no store file yet: no news, as with no news tables
        return NewsStore(self.store, read_only=True).scored_news([self.symbol])

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

    def _html(self) -> Html:
        title = element("b", f"Sentiment of {self.symbol or '-'}")
        if self.headlines.empty:
            no_news = element("span", "no news", cls="qd-no-news")
            return element("div", title, ": ", no_news, cls="qd-sentiment")
        head: list[Any] = [title]
        if self.daily_score is not None:
            score = element("span", f"{self.daily_score:+.3f}", cls="qd-daily-score")
            head += [": daily score ", score]
        frame = self.headlines
        rows = [
            element(
                "tr",
                element("td", f"{ts:%Y-%m-%d %H:%M}"),
                element("td", f"{score:+.3f}", style="text-align:right"),
                element("td", source),
                element("td", headline, cls="qd-headline"),
            )
            for ts, score, source, headline in zip(
                pd.to_datetime(frame["ts"], utc=True),
                frame["score"].to_numpy(dtype=float),
                frame["source"],
                frame["headline"],
                strict=True,
            )
        ]
        table = element("table", *rows, cls="qd-headlines")
        return element("div", *head, table, cls="qd-sentiment")

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

    Reads the forecast record (:func:`quantdesk.forecast.view.forecast_view`): the
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
        from quantdesk.data.store.market import as_store
        from quantdesk.forecast.view import forecast_view

        store = as_store(self.store, read_only=True)
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
        from quantdesk.forecast.view import forecast_text

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

    def _html(self) -> Html:
        title = element("b", f"Forecasts of {self.symbol or '-'}")
        if self.error:
            error = element("span", f"record unavailable: {self.error}", cls="qd-forecast-error")
            return element("div", title, ": ", error, cls="qd-forecasts")
        if self.predictions.empty:
            none = element("span", "no forecasts yet", cls="qd-no-forecasts")
            return element("div", title, ": ", none, cls="qd-forecasts")
        accuracy = (
            frame_table(self.accuracy, "qd-forecast-accuracy")
            if len(self.accuracy)
            else element("span", "none scored yet", cls="qd-no-scores")
        )
        return element(
            "div",
            title,
            f" as of {self.session}",
            frame_table(self.predictions, "qd-forecast-latest"),
            element("b", f"Accuracy, last {self.trailing} scored sessions"),
            accuracy,
            cls="qd-forecasts",
        )

    def release(self) -> None:
        """Nothing shared to drop (the record is read per refresh)."""

    def __panel__(self) -> Viewable:
        return self.pane


def _first_line(error: Any) -> str:
    """Return the first line of a recorded error ("" for none)."""
    return str(error).strip().splitlines()[0] if isinstance(error, str) and error.strip() else ""


class PipelinePane(Viewer):
    """The evening pipeline's last session: each step's state and duration, and failures.

    Reads :func:`quantdesk.pipeline.engine.pipeline_status` of the store (the record
    the runs write): the last session run, one row per step (its latest attempt's
    state, attempt, duration, and a failure's error, first line only), the sessions
    with a failed step and the next session due.  A store that does not exist, or one
    with no run recorded, shows "no pipeline run recorded yet"; a record that cannot
    be read (a store locked too long, no pipeline definition) is logged and shown as
    unavailable, and the next refresh tries again.

    Parameters
    ----------
    store
        The market store (or its path) holding the pipeline's record.
    definition
        The pipeline definition or its catalog file (default: the report catalog's).
    """

    session = param.String(default="", doc="The last session run (YYYY-MM-DD), or empty.")
    error = param.String(default="", doc="Why the record could not be read, if it could not.")
    min_interval = param.Number(default=30.0, doc="Seconds between two reads of the record.")

    def __init__(self, store: MarketStore | Any = None, definition: Any = None, **params: Any):
        super().__init__(**params)
        self.store = store
        self.definition = definition
        self.status: Any = None
        self.steps = pd.DataFrame(columns=PIPELINE_COLUMNS)
        self._last = -math.inf
        self.pane = pn.pane.HTML(self._html(), sizing_mode="stretch_width", name="pipeline")

    def _read(self) -> Any:
        from quantdesk.data.store.market import as_store
        from quantdesk.pipeline.engine import pipeline_status

        if self.store is None or not as_store(self.store).exists():  # a handle: opens nothing
            return None
        return pipeline_status(self.store, definition=self.definition)

    def refresh(self, force: bool = False) -> bool:
        """Return whether the record was read again (at most every ``min_interval`` s)."""
        import duckdb

        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return False
        self._last = now
        self.error, self.session, self.status = "", "", None
        self.steps = pd.DataFrame(columns=PIPELINE_COLUMNS)
        try:
            status = self._read()
        except (duckdb.Error, OSError, ValueError) as exc:  # busy store, bad definition
            logger.exception("pipeline pane: the record is unreadable")
            self.error = _first_line(str(exc)) or type(exc).__name__
        else:
            if status is not None and status.last_session is not None:
                self._show(status)
        self.pane.object = self._html()
        return True

    def _show(self, status: Any) -> None:
        self.status = status
        self.session = f"{status.last_session:%Y-%m-%d}"
        self.steps = pd.DataFrame(
            [
                (
                    row["step"],
                    row["status"],
                    int(row["attempt"]),
                    "" if pd.isna(row["duration_s"]) else f"{float(row['duration_s']):.1f} s",
                    _first_line(row["error"]),
                )
                for row in status.steps.to_dict("records")
            ],
            columns=PIPELINE_COLUMNS,
        )

    def _html(self) -> Html:
        name = self.status.pipeline if self.status is not None else ""
        title = element("b", f"Pipeline {name}".strip())
        if self.error:
            error = element("span", f"status unavailable: {self.error}", cls="qd-pipeline-error")
            return element("div", title, ": ", error, cls="qd-pipeline")
        if self.status is None:
            none = element("span", "no pipeline run recorded yet", cls="qd-no-pipeline")
            return element("div", title, ": ", none, cls="qd-pipeline")
        parts: list[Any] = [title, f": last session {self.session}"]
        parts.append(frame_table(self.steps, "qd-pipeline-steps"))
        failed = self.status.failed_sessions
        if failed:
            days = ", ".join(f"{d:%Y-%m-%d}" for d in failed)
            text = f"failed sessions (quantdesk pipeline retry): {days}"
            parts.append(element("div", text, cls="qd-pipeline-failed"))
        if self.status.next_due is not None:
            due = f"next session due: {self.status.next_due:%Y-%m-%d}"
            parts.append(element("div", due, cls="qd-pipeline-due"))
        return element("div", *parts, cls="qd-pipeline")

    def release(self) -> None:
        """Nothing shared to drop (the record is read per refresh)."""

    def __panel__(self) -> Viewable:
        return self.pane
