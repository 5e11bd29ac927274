"""What the market store holds: its series and its rejected rows, as readable accounts.

``quantdesk data info`` and ``quantdesk data rejects`` print these; a notebook gets
the same text from ``.summary()`` and the same data from ``.to_dict()``.

Examples
--------
>>> import tempfile, pathlib
>>> from quantdesk.data.sources.ingest import ingest_samples
>>> home = tempfile.TemporaryDirectory()
>>> path = pathlib.Path(home.name, "demo.duckdb")
>>> _ = ingest_samples(path, ["nasdaq"], progress=False)
>>> print(store_contents(path).summary())  # doctest: +ELLIPSIS
store: .../demo.duckdb
chosen by: given
symbols: 1   ingests: 1
  symbol           timeframe       rows  first .. last  source
  IXIC                    1d      5,031  1999-01-04 .. 2018-12-31  arch:nasdaq
...
>>> print(rejected_rows(path).summary())
no rejects
>>> home.cleanup()
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantdesk.data.store.market import as_store

if TYPE_CHECKING:
    import pandas as pd

    from quantdesk.data.store.market import MarketStore

__all__ = ["RejectedRows", "StoreContents", "rejected_rows", "store_contents"]


@dataclass(frozen=True)
class StoreContents:
    """The store's inventory (:meth:`~quantdesk.data.store.market.MarketStore.info`)."""

    info: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return the inventory as plain data: path, series, bars, sources, ticks, rejects."""
        return self.info

    def summary(self) -> str:
        """Return the inventory as a table: one line per series, timeframe and source."""
        info = self.info
        lines = [
            f"store: {info['path']}",
            f"chosen by: {info.get('source', 'given')}",
            f"symbols: {info['symbols']}   ingests: {info['ingests']}",
        ]
        if info["series"]:
            lines.append(f"  {'symbol':<16} {'timeframe':>9} {'rows':>10}  first .. last  source")
        lines += [
            f"  {row['symbol']:<16} {row['timeframe']:>9} {row['rows']:>10,}  "
            f"{row['first'][:10]} .. {row['last'][:10]}  {row['source'] or '?'}"
            for row in info["series"]
        ]
        lines.append("bars by timeframe:")
        lines += [
            f"  {row['timeframe']:>6}  {row['symbols']:>5} symbols  {row['rows']:>10,} rows  "
            f"{row['first'][:10]} .. {row['last'][:10]}"
            for row in info["bars"]
        ]
        lines.append("bars by source:")
        lines += [
            f"  {row['source']:<24} {row['symbols']:>5} symbols  {row['rows']:>10,} rows  "
            f"{row['first'][:10]} .. {row['last'][:10]}"
            for row in info["sources"]
        ]
        ticks = info["ticks"]
        if ticks["rows"]:
            lines.append(
                f"ticks: {ticks['rows']:,} rows, {ticks['symbols']} symbols, "
                f"{ticks['first']} .. {ticks['last']}"
            )
        rejected = sum(info["rejects"].values())
        lines.append(f"rejects: {rejected}" + (f" {info['rejects']}" if rejected else ""))
        return "\n".join(lines)


@dataclass(frozen=True)
class RejectedRows:
    """Rejected rows with their ingest, source file, row number, field and reason."""

    frame: pd.DataFrame

    def to_json(self) -> str:
        """Return the rows as a JSON array of records (pandas' ``orient="records"``)."""
        return str(self.frame.to_json(orient="records"))

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"rejects": [record, ...]}`` (the records of :meth:`to_json`)."""
        return {"rejects": json.loads(self.to_json())}

    def summary(self) -> str:
        """Return the rows as a table of ingest, source, row, field and reason."""
        if self.frame.empty:
            return "no rejects"
        return str(self.frame[["ingest_id", "source", "row", "field", "reason"]].to_string())


def store_contents(store: MarketStore | str | Path | None = None) -> StoreContents:
    """Return what the store holds: every series, totals by timeframe and source, rejects.

    Raises
    ------
    FileNotFoundError
        No store at that path (it is never created by looking).
    """
    return StoreContents(as_store(store, read_only=True).info())


def rejected_rows(
    store: MarketStore | str | Path | None = None,
    ingest_id: int | None = None,
    limit: int | None = None,
) -> RejectedRows:
    """Return the first ``limit`` rejected rows (all when None), of one ingest or all.

    Raises
    ------
    FileNotFoundError
        No store at that path.
    """
    frame = as_store(store, read_only=True).rejects(ingest_id)
    return RejectedRows(frame if limit is None else frame.head(limit))
