"""The ``quantdesk paper`` commands: trade a paper ledger in the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from quantdesk.cli.options import JsonOption, StoreOption, echo_result, fail, int_list, open_store
from quantdesk.core.coerce import as_symbols

__all__ = ["paper_app"]

paper_app = typer.Typer(
    help="Trade a paper ledger in the store: buy, sell, follow a strategy, show, watch.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

LedgerOption = Annotated[str, typer.Option("--ledger", help="Ledger name (default 'default').")]
CashOption = Annotated[
    float, typer.Option("--cash", help="Starting cash of a ledger created by this command.")
]
MaxAgeOption = Annotated[
    str | None,
    typer.Option(
        "--max-price-age",
        help="Oldest bar or quote a trade may use, e.g. '30min' or '10d' "
        "(default: 5 min for quotes, 4 days for bars).",
    ),
]


def _ledger(store: Path | None, name: str, cash: float, max_price_age: str | None = None) -> Any:
    import pandas as pd

    from quantdesk.portfolio.ledger import PaperLedger

    try:
        age = None if max_price_age is None else pd.Timedelta(max_price_age)
    except ValueError as exc:
        fail(f"--max-price-age {max_price_age!r}: {exc}")
    return PaperLedger(open_store(store), initial_cash=cash, name=name, max_price_age=age)


def _paper_trade(side: str, symbol: str, qty: float, price: float | None, **opts: Any) -> None:
    from quantdesk.errors import TradeRejected

    ledger = _ledger(opts["store"], opts["ledger"], opts["cash"], opts["max_price_age"])
    try:
        trade = ledger.buy(symbol, qty, price) if side == "buy" else ledger.sell(symbol, qty, price)
    except TradeRejected as exc:
        fail(f"rejected ({exc.reason}): {exc}")
    echo_result(trade, opts["as_json"])


@paper_app.command("buy")
def paper_buy(
    symbol: Annotated[str, typer.Argument(help="Symbol to buy.")],
    qty: Annotated[float, typer.Argument(help="Units to buy.")],
    price: Annotated[
        float | None, typer.Option("--price", help="Explicit price (default: latest bar).")
    ] = None,
    ledger: LedgerOption = "default",
    cash: CashOption = 100_000.0,
    max_price_age: MaxAgeOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Buy units at an explicit price or the latest stored bar; a rejection exits 1."""
    _paper_trade("buy", symbol, qty, price, ledger=ledger, cash=cash, store=store,
                 max_price_age=max_price_age, as_json=as_json)  # fmt: skip


@paper_app.command("sell")
def paper_sell(
    symbol: Annotated[str, typer.Argument(help="Symbol to sell.")],
    qty: Annotated[float, typer.Argument(help="Units to sell.")],
    price: Annotated[
        float | None, typer.Option("--price", help="Explicit price (default: latest bar).")
    ] = None,
    ledger: LedgerOption = "default",
    cash: CashOption = 100_000.0,
    max_price_age: MaxAgeOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Sell units at an explicit price or the latest stored bar; a rejection exits 1."""
    _paper_trade("sell", symbol, qty, price, ledger=ledger, cash=cash, store=store,
                 max_price_age=max_price_age, as_json=as_json)  # fmt: skip


@paper_app.command("rebalance")
def paper_rebalance(
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help="Strategy to follow: its name in quantdesk.strategies.STRATEGIES.",
        ),
    ] = "vol_target_trend",
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma-separated symbols (default: all).")
    ] = None,
    lookbacks: Annotated[
        str, typer.Option("--lookbacks", help="Momentum lookbacks in bars, blended.")
    ] = "21,63,126,252",
    target_vol: Annotated[
        float, typer.Option("--target-vol", help="Annualised volatility target.")
    ] = 0.10,
    ledger: LedgerOption = "default",
    cash: CashOption = 100_000.0,
    max_price_age: MaxAgeOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Rebalance the ledger, long only, to the strategy's latest weights at the latest bars.

    Long only: the strategy's short signals become weight 0 (flat), never a short sale.
    A held symbol the strategy has no opinion on yet (too little history) is kept, and
    the summary says so; with no opinion on any symbol nothing trades (exit 1).
    """
    from quantdesk.errors import TradeRejected
    from quantdesk.portfolio.follow import follow_strategy

    book = _ledger(store, ledger, cash, max_price_age)
    try:
        result = follow_strategy(
            book, strategy, (as_symbols(symbols) or None), lookbacks=int_list(lookbacks),
            target_vol=target_vol, long_only=True,  # the command's ledgers do not short
        )  # fmt: skip
    except TradeRejected as exc:
        fail(f"rejected ({exc.reason}): {exc}")
    except ValueError as exc:
        fail(str(exc))
    echo_result(result, as_json)


@paper_app.command("show")
def paper_show(
    ledger: LedgerOption = "default",
    cash: CashOption = 100_000.0,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Show cash, positions at the latest stored bars, and P&L."""
    snapshot = _ledger(store, ledger, cash).snapshot()
    echo_result(snapshot, as_json)


@paper_app.command("watch")
def paper_watch(
    action: Annotated[str, typer.Argument(help="add, remove or list.")],
    symbol: Annotated[str | None, typer.Argument(help="Symbol (for add and remove).")] = None,
    ledger: LedgerOption = "default",
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Add a symbol to the ledger's watchlist, remove one, or list them."""
    from quantdesk.errors import TradeRejected

    book = _ledger(store, ledger, 100_000.0)
    if action not in ("add", "remove", "list"):
        fail(f"watch action must be add, remove or list, not {action!r}")
    if action != "list" and not symbol:
        fail(f"watch {action} needs a symbol")
    try:
        if action == "add":
            symbols = book.watch_add(symbol)
        elif action == "remove":
            symbols = book.watch_remove(symbol)
        else:
            symbols = book.watchlist()
    except TradeRejected as exc:
        fail(f"rejected ({exc.reason}): {exc}")
    typer.echo(json.dumps({"ledger": ledger, "watchlist": symbols}) if as_json
               else "\n".join(symbols) or "(watchlist empty)")  # fmt: skip
