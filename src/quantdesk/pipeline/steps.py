"""The built-in steps of the evening pipeline, each a call of an existing library job.

A step is a function ``step(context, **params) -> StepOutput``: it does one session's
work through the job the matching CLI command calls, and returns its counts.  Every
step is idempotent by session key, so a run killed inside one and resumed adds
nothing twice: bars are upserted by ``(symbol, timeframe, ts)``, alerts by
``(symbol, rule, ts)``, news scores by story and model, drop-folder files by content
hash, and a paper ledger that already traded at the session's close is left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.data.store.market import MarketStore, as_store
from quantdesk.data.store.pipeline import PipelineRecord

__all__ = [
    "BUILTIN_STEPS",
    "FORECAST_MODULE",
    "StepContext",
    "StepOutput",
    "advance_simulated",
    "demo_start",
    "forecasts_available",
    "run_session_report",
    "session_ts",
]

logger = logging.getLogger(__name__)

#: The package the ``forecasts`` step needs (the forecasts issue); without it the step
#: is skipped and says why.
FORECAST_MODULE = "quantdesk.forecast"


@dataclass
class StepContext:
    """What a step gets: the store, the session, the pipeline's name and record."""

    store: MarketStore
    session: pd.Timestamp
    pipeline: str
    record: PipelineRecord
    root: Path = field(default_factory=Path.cwd)

    @property
    def ts(self) -> pd.Timestamp:
        """Return the session's bar time (its date at 00:00 UTC, the bar contract)."""
        return session_ts(self.session)


@dataclass(frozen=True)
class StepOutput:
    """What a step did: counts by name, ``empty`` when the session brought nothing new.

    ``skipped``: the step had nothing it could do (the note says why); the steps that
    need it still run.
    """

    counts: Mapping[str, Any] = field(default_factory=dict)
    empty: bool = False
    note: str = ""
    skipped: bool = False

    def summary(self) -> str:
        """Return one line: the counts (and the note)."""
        text = ", ".join(f"{k} {v}" for k, v in self.counts.items()) or "nothing to do"
        return text + (f" ({self.note})" if self.note else "")


def session_ts(session: Any) -> pd.Timestamp:
    """Return a session date as its daily bar's time: 00:00 UTC that day."""
    return pd.Timestamp(pd.Timestamp(session).date()).tz_localize("UTC")


def demo_start(
    days: int,
    *,
    exchange: str = "XNYS",
    delay_minutes: float = 75.0,
    now: Any = None,
    store: MarketStore | str | Path | None = None,
) -> pd.Timestamp:
    """Return the first day of a simulated history of ``days`` business days that ends
    just before the latest closed session.

    ``make demo`` simulates its market from this day, so its closing ``quantdesk
    pipeline run`` (which, on a store it never ran on, runs the latest closed session)
    advances the simulated market exactly one session, continuing the stored prices.
    When ``store`` (default: the configured store, if its file exists) already holds a
    simulated market, its first day is returned, so a second ``make demo`` rewrites the
    same days instead of storing a shifted history.

    >>> import pathlib, tempfile
    >>> no_store = pathlib.Path(tempfile.mkdtemp()) / "none.duckdb"  # holds no market yet
    >>> demo_start(5, now=pd.Timestamp("2024-07-09T18:00-04:00"), store=no_store).date()
    datetime.date(2024, 7, 2)
    """
    from quantdesk.data.sessions import SessionCalendar
    from quantdesk.errors import StoreNotFoundError

    market = None
    with contextlib.suppress(StoreNotFoundError):  # a store not created yet holds nothing
        market = as_store(store, read_only=True)
    if market is not None and market.exists():
        first = market.sql("SELECT min(ts) AS first FROM bars WHERE symbol = 'SIM000'")["first"]
        if len(first) and not pd.isna(first.iloc[0]):
            return pd.Timestamp(first.iloc[0]).tz_convert(None)
    calendar = SessionCalendar(exchange)
    clock = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    latest = calendar.last_closed(clock, pd.Timedelta(minutes=delay_minutes))
    end = calendar.previous_session(latest)
    return pd.Timestamp(pd.bdate_range(end=end, periods=days)[0])


def forecasts_available() -> bool:
    """Return whether the forecasts package is installed in this checkout."""
    return importlib.util.find_spec(FORECAST_MODULE) is not None


# -- update ------------------------------------------------------------------------------


def _derived_seed(seed: int, session: pd.Timestamp) -> int:
    entropy = np.random.SeedSequence([seed, int(session.strftime("%Y%m%d"))])
    return int(entropy.generate_state(1)[0])


def advance_simulated(store: MarketStore, session: Any, *, seed: int | None = None) -> int:
    """Return the new bars stored: the simulated symbols advanced to ``session``.

    Each symbol stored by the simulator (source ``simulator``) gets the bar of
    ``session`` drawn from the simulator's own model (seeded by the seed its first
    ingest recorded, ``simulator:seed=N``, or ``seed``, and the session date, so the
    same session always draws the same bar), scaled to continue from the symbol's last
    stored close before the session.  A session already stored is left as it is (0 new bars).
    """
    from quantdesk.data.sources.simulator import simulate

    meta = store.metadata()
    if meta.empty:
        return 0
    sim = meta[meta["source"].fillna("").str.startswith("simulator")]
    if sim.empty:
        return 0
    symbols = sorted(sim["symbol"].astype(str))
    ts = session_ts(session)
    last = store.sql(
        "SELECT symbol, max(ts) AS ts, arg_max(close, ts) AS close, "
        "arg_max(volume, ts) AS volume FROM bars "
        "WHERE timeframe = '1d' AND ts < ? AND symbol IN (SELECT unnest(?)) GROUP BY symbol",
        [ts.to_pydatetime(), symbols],
    ).set_index("symbol")
    done = store.sql(
        "SELECT DISTINCT symbol FROM bars WHERE timeframe = '1d' AND ts = ? "
        "AND symbol IN (SELECT unnest(?))",
        [ts.to_pydatetime(), symbols],
    )
    todo = [s for s in symbols if s in last.index and s not in set(done["symbol"])]
    if not todo:
        return 0
    base_seed = seed
    if base_seed is None:
        # The seed the simulated history was drawn with, as its ingest recorded it.
        log = store.ingest_log()
        sources = log.loc[log["source"].str.startswith("simulator:seed="), "source"]
        base_seed = int(str(sources.iloc[0]).split("=", 1)[1]) if len(sources) else 0
    market = simulate(n_symbols=len(symbols), n_days=2, seed=_derived_seed(base_seed, ts))
    drawn = market.bars.copy()
    drawn["symbol"] = drawn["symbol"].map(dict(zip(market.symbols, symbols, strict=True)))
    first = drawn.groupby("symbol")[["close", "volume"]].first()
    bars = drawn.groupby("symbol").tail(1).set_index("symbol").loc[todo]
    # Day one of the draw stands for the last stored bar: day two, scaled by the stored
    # close (and volume) over day one's, continues the stored history.
    scale = last.loc[todo, "close"] / first.loc[todo, "close"]
    for column in ("open", "high", "low", "close"):
        bars[column] = bars[column] * scale
    volume = last.loc[todo, "volume"].fillna(first.loc[todo, "volume"])
    bars["volume"] = (bars["volume"] * volume / first.loc[todo, "volume"]).round().clip(lower=1)
    bars = bars.reset_index().assign(ts=ts)
    source = f"simulator:seed={base_seed}"
    report = store.write_bars(bars, "1d", source=source, metadata=sim[sim["symbol"].isin(todo)])
    return report.inserted


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _drop_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".parquet")
    )


def update(
    ctx: StepContext,
    *,
    simulated: bool = True,
    seed: int | None = None,
    drop_folder: str | None = None,
    file_options: Mapping[str, Any] | None = None,
) -> StepOutput:
    """Return the new bars of the session: the simulated market advanced, new drop files read.

    Each drop-folder file (CSV or Parquet) is ingested once, known by its content hash;
    its bad rows are kept as rejects and counted, and the step succeeds.
    """
    from quantdesk.data.sources.ingest import ingest_file

    counts: dict[str, Any] = {"simulated_bars": 0, "files": 0, "file_bars": 0, "rejected": 0}
    if simulated:
        counts["simulated_bars"] = advance_simulated(ctx.store, ctx.session, seed=seed)
    if drop_folder:
        folder = Path(drop_folder)
        folder = folder if folder.is_absolute() else ctx.root / folder
        if folder.is_dir():
            known = ctx.record.known_files()
            for path in _drop_files(folder):
                digest = _file_hash(path)
                if digest in known:
                    continue
                result = ingest_file(path, ctx.store, **dict(file_options or {}))
                inserted = sum(r.inserted + r.updated for r in result.reports)
                rejected = sum(r.rejected for r in result.reports)
                ctx.record.add_file(
                    digest, str(path), ctx.session, {"bars": inserted, "rejected": rejected}
                )
                known.add(digest)
                counts["files"] += 1
                counts["file_bars"] += inserted
                counts["rejected"] += rejected
        else:
            logger.warning("drop folder %s does not exist; no files read", folder)
    new = counts["simulated_bars"] + counts["file_bars"]
    counts["new_bars"] = new
    return StepOutput(counts, empty=new == 0, note="" if new else "no new bars")


# -- analytics and decisions -------------------------------------------------------------


def news(ctx: StepContext, *, model: str = "lexicon", scheduler: str | None = None) -> StepOutput:
    """Return the scoring of the news not yet scored (the sentiment cache makes it incremental).

    ``scheduler``: None scores in this process; ``"process"`` or a Dask scheduler
    address fans the chunks out on :func:`quantdesk.core.parallel.run_tasks`
    (:func:`quantdesk.sentiment.jobs.score_news`).
    """
    from quantdesk.sentiment.jobs import score_news

    result = score_news(ctx.store, model, scheduler=scheduler, progress=False)
    return StepOutput({"scored": result.scored, "cached": result.cached, "failed": result.failed})


def regimes(
    ctx: StepContext,
    *,
    symbols: Sequence[str] | None = None,
    refit_every: int = 63,
    name: str = "pipeline",
    history_start: str | None = None,
    registry: str | None = None,
    seed: int = 0,
    workers: int | None = 1,
    scheduler: str | None = None,
) -> StepOutput:
    """Return the regime update of the session: new sessions filtered, refits when due.

    Each symbol's new session(s) are filtered with its latest saved model (registry
    name ``name``) and stored; a model is refitted (version ``sYYYYMMDD``) only when it
    is missing or ``refit_every`` sessions old
    (:func:`quantdesk.regimes.jobs.update_regimes`).  The per-symbol work fans out on
    ``workers`` local processes or the Dask ``scheduler`` address.  A rerun fits and
    writes nothing; a symbol that fails fails the step, naming it.
    """
    from quantdesk.regimes.jobs import update_regimes

    run = update_regimes(
        ctx.store, ctx.session, list(symbols) if symbols else None, name=name,
        refit_every=refit_every, history_start=history_start, registry=registry, seed=seed,
        workers=workers, scheduler=scheduler,
    )  # fmt: skip
    if not run.ok:
        raise RuntimeError(run.summary())
    counts = {"fitted": len(run.fitted), "filtered": sum(run.filtered.values()),
              "symbols": len(run.filtered), "written": run.written}  # fmt: skip
    note = f"on {run.executor}" if run.filtered else "regimes up to date"
    if run.short:
        note += f"; {len(run.short)} symbols too short to fit yet"
    return StepOutput(counts, note=note)


def forecasts(ctx: StepContext, **params: Any) -> StepOutput:
    """Return the forecasts step's output: the hook of the forecasts package.

    The forecasts issue provides ``quantdesk.forecast``; when it is importable, its
    ``pipeline_step(store, session, **params)`` (returning a mapping of counts) is
    called.  Without the package the step is skipped and says so.
    """
    if not forecasts_available():
        return StepOutput({}, note=f"{FORECAST_MODULE} is not installed", skipped=True)
    module = importlib.import_module(FORECAST_MODULE)
    hook = getattr(module, "pipeline_step", None)
    if hook is None:
        return StepOutput({}, note=f"{FORECAST_MODULE} has no pipeline_step yet", skipped=True)
    return StepOutput(dict(hook(ctx.store, ctx.session, **params)))


def screen(
    ctx: StepContext,
    *,
    rules: str | Sequence[str] = ("gap_up", "gap_down", "volume_spike"),
    deliver_alerts: bool = True,
) -> StepOutput:
    """Return the screen of the session's bars: alerts stored (once each), queued, delivered."""
    from quantdesk.screener import scan
    from quantdesk.screener.webhooks import WebhookConfig, deliver, record_alerts

    rule_set: Any = rules if isinstance(rules, str) else list(rules)
    if isinstance(rule_set, str) and not Path(rule_set).is_absolute():
        rule_set = str(ctx.root / rule_set) if (ctx.root / rule_set).exists() else rule_set
    alerts = scan(ctx.store, rule_set, date=ctx.ts)
    webhook = WebhookConfig.from_env()
    # "latest": an evening's session is the store's newest, so its alerts are queued; a
    # backfill of old sessions (newer bars already stored) stores them without a flood.
    written = record_alerts(ctx.store, alerts, webhook, queue="latest")
    counts: dict[str, Any] = {"alerts": written.found, "stored": written.stored}
    if webhook is not None and deliver_alerts:
        report = deliver(ctx.store, webhook)
        counts["delivered"] = report.delivered
        if not report.ok:
            raise RuntimeError(f"webhook delivery incomplete: {report.summary()}")
    return StepOutput(counts)


def paper(
    ctx: StepContext,
    *,
    ledgers: Sequence[str] | None = ("paper",),
    symbols: Sequence[str] | None = None,
    cash: float = 100_000.0,
    lookbacks: Sequence[int] = (21, 63, 126, 252),
    target_vol: float = 0.10,
    strategy: str = "vol_target_trend",
) -> StepOutput:
    """Return the rebalance of each named ledger to ``strategy`` at the session's closes.

    ``strategy`` is a name in the registry (:data:`quantdesk.strategies.STRATEGIES`),
    run long-only with ``lookbacks`` and ``target_vol``, as ``quantdesk paper
    rebalance --strategy`` runs it.

    The trades carry the session's bar time, so a ledger that already has trades at that
    time was rebalanced for the session and is left alone (a resumed run trades nothing).
    A ledger named for the first time is created with ``cash``; with no ledger named
    (``ledgers: []`` or null) the step is skipped and says so.
    """
    from quantdesk.portfolio.follow import strategy_weights
    from quantdesk.portfolio.ledger import PaperLedger

    if not ledgers:
        return StepOutput({}, note="no ledger named (params: ledgers: [NAME, ...])", skipped=True)

    close = ctx.store.panel("close", list(symbols) if symbols else None, end=ctx.ts)
    if close.empty or close.index[-1] != ctx.ts:
        return StepOutput({"ledgers": 0}, empty=True, note="no closes at the session")
    weights = strategy_weights(close, strategy, lookbacks=list(lookbacks),
                               target_vol=target_vol, long_only=True).iloc[-1]  # fmt: skip
    prices = close.iloc[-1].dropna()
    counts: dict[str, Any] = {"ledgers": 0, "trades": 0, "already_done": 0}
    for name in ledgers:
        book = PaperLedger(ctx.store, initial_cash=cash, name=name)
        trades = book.trades()
        if len(trades) and (pd.to_datetime(trades["ts"], utc=True) == ctx.ts).any():
            counts["already_done"] += 1
            continue
        result = book.rebalance(weights.reindex(prices.index), prices, ts=ctx.ts)
        counts["ledgers"] += 1
        counts["trades"] += len(result.fills)
    return StepOutput(counts)


def run_session_report(
    notebook: str,
    parameters: Mapping[str, Any],
    run_id: str,
    *,
    reports_dir: str | None = None,
    timeout: float | None = None,
    job: str | None = None,
    store: str | Path | None = None,
) -> bool:
    """Return whether the report ``run_id`` ran now (False: it was done already).

    The run id names the pipeline, session and report, so a resumed run finds a report
    it finished (its ``run.json`` says ok) and leaves it, and replaces the folder a
    killed run left half-written: one report per session, never two.  With ``store``,
    the notebook's kernel reads that store file, and a finished report counts as done
    only if it read the same one: one made from another store (two stores sharing a
    reports folder) is run again, with a warning.
    """
    import json
    import shutil

    from quantdesk.config import settings
    from quantdesk.reports.runner import run_report

    root = Path(reports_dir) if reports_dir else settings().reports_dir
    folder = root / Path(notebook).stem / run_id
    meta = folder / "run.json"
    why = "left unfinished by an earlier run"
    if meta.is_file():
        earlier = json.loads(meta.read_text(encoding="utf-8"))
        read = (earlier.get("data_summary") or {}).get("store")
        other = store is not None and read and Path(read).resolve() != Path(store).resolve()
        if earlier.get("status") == "ok" and not other:
            return False
        if other:
            why = f"made from the store {read}, not {store}"
    if folder.exists():
        logger.warning("replacing %s, %s", folder, why)
        shutil.rmtree(folder)
    options: dict[str, Any] = {"reports_dir": root, "run_id": run_id, "job": job}
    if store is not None:  # the kernel reads the pipeline's store, whatever it is configured to
        options["env"] = {"QUANTDESK_STORE": str(Path(store).absolute())}
    if timeout is not None:
        options["timeout"] = timeout
    record = run_report(notebook, dict(parameters), **options)
    if record.status != "ok":
        raise RuntimeError(f"report {notebook} ({run_id}) failed: {record.reason}")
    return True


def reports(
    ctx: StepContext,
    *,
    jobs: Sequence[str] = ("daily",),
    reports_dir: str | None = None,
) -> StepOutput:
    """Return the runs of the catalog's evening report jobs on the updated store.

    Each run of each job is one report of the session (run id
    ``<pipeline>-<YYYYMMDD>-<job>-<n>``), run one after the other (each notebook already
    uses the cores it needs); the reports index is rewritten at the end.
    """
    from quantdesk.reports.catalog import load_catalog
    from quantdesk.reports.publish import write_index

    catalog = load_catalog()
    ran = done = 0
    for name in jobs:
        for i, spec in enumerate(catalog.job(name).runs()):
            run_id = f"{ctx.pipeline}-{ctx.session:%Y%m%d}-{name}-{i}"
            fresh = run_session_report(spec.notebook, spec.parameters, run_id,
                                       reports_dir=reports_dir, timeout=spec.timeout,
                                       job=name, store=ctx.store.path)  # fmt: skip
            ran, done = ran + fresh, done + (not fresh)
    write_index(reports_dir)
    return StepOutput({"reports": ran, "already_done": done})


StepFunction = Callable[..., Any]

#: The built-in steps by name.
BUILTIN_STEPS: dict[str, StepFunction] = {
    "update": update,
    "news": news,
    "regimes": regimes,
    "forecasts": forecasts,
    "screen": screen,
    "paper": paper,
    "reports": reports,
}
