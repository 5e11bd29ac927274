"""Files of a backtest: equity, weights, trades and metrics as Parquet, CSV and JSON.

:func:`write_result` writes one file per table and format into a directory, each
atomically (written beside its target, then renamed over it), so a reader never sees a
half-written file and a failed export leaves earlier files whole.

=================  ===================================================================
``equity``         ``ts, equity, returns``: portfolio value at each close, simple return
``weights``        ``ts`` and one column per symbol: realised weights after each bar's
                   orders (position value over portfolio value)
``trades``         every fill: ``ts, symbol, side, units, price, value, commission,
                   slippage``
``metrics``        ``metric, value`` (and ``metrics.json``: one object, NaN as null)
=================  ===================================================================

Examples
--------
>>> paths = write_result(result, "out/spx")  # doctest: +SKIP
>>> pd.read_parquet(paths["equity.parquet"]).tail()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from quantdesk.backtest.engine import BacktestResult

__all__ = ["TABLES", "result_tables", "write_result"]

#: Tables :func:`write_result` writes, in order.
TABLES: tuple[str, ...] = ("equity", "weights", "trades", "metrics")


def result_tables(
    result: BacktestResult, metrics: pd.Series | None = None
) -> dict[str, pd.DataFrame]:
    """Return the tables of a backtest as flat frames keyed by :data:`TABLES`.

    ``metrics`` defaults to ``result.metrics()``; pass ``result.metrics(benchmark=...)``
    to include the benchmark-relative ones.
    """
    metrics = result.metrics() if metrics is None else metrics
    equity = pd.DataFrame({"equity": result.equity, "returns": result.returns})
    weights = result.weights.copy()
    weights.columns = [str(c) for c in weights.columns]
    return {
        "equity": _with_ts(equity),
        "weights": _with_ts(weights),
        "trades": result.trades.reset_index(drop=True),
        "metrics": pd.DataFrame(
            {"metric": [str(k) for k in metrics.index], "value": metrics.to_numpy(dtype=float)}
        ),
    }


def _with_ts(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.index.name = "ts"
    return out.reset_index()


def write_result(
    result: BacktestResult,
    out_dir: str | Path,
    *,
    metrics: pd.Series | None = None,
) -> dict[str, Path]:
    """Return the paths written: each table of :func:`result_tables` as Parquet and CSV,
    and the metrics also as JSON, in ``out_dir`` (created if needed).

    Every file is written to a temporary name in ``out_dir`` and renamed into place, so
    it appears whole or not at all.
    """
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    tables = result_tables(result, metrics)
    written: dict[str, Path] = {}
    for name in TABLES:
        frame = tables[name]
        written[f"{name}.parquet"] = _atomic(
            target / f"{name}.parquet", functools.partial(_parquet, frame)
        )
        written[f"{name}.csv"] = _atomic(target / f"{name}.csv", functools.partial(_csv, frame))
    values = {
        str(k): (None if not math.isfinite(v) else v)
        for k, v in zip(tables["metrics"]["metric"], tables["metrics"]["value"], strict=True)
    }
    text = json.dumps(values, indent=2)
    written["metrics.json"] = _atomic(
        target / "metrics.json", functools.partial(Path.write_text, data=text, encoding="utf-8")
    )
    return written


def _parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def _csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False)


def _atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Return ``path`` after ``write(tmp)`` to a temporary sibling and renaming it over ``path``."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return path
