"""The one small interface every forecast model has, and the session rules they share.

A model has a ``name``, a ``version`` and a ``target`` (one of
:data:`quantdesk.forecast.targets.TARGETS`), and three methods:

``fit(panels, end=None)``
    Learn from the bars up to and including session ``end`` (default: all).  Targets are
    computed on the truncated panels, so a training row whose outcome lies after ``end``
    is never seen.
``predict(panels, as_of)``
    The forecast made at the close of session ``as_of``: a Series per symbol (scalar
    targets) or a frame of the nine regime probabilities per symbol.  ``as_of`` must be a
    session of the panels; a later one is refused (there is no bar for it yet).
``predict_many(panels, sessions)``
    The forecasts of many sessions at once, long: ``ts, symbol, value`` (or the nine
    probability columns).  Row ``(t, s)`` equals ``predict(panels, t)`` for symbol ``s``:
    it uses the bars up to ``t`` only (every model has a truncation test).

Panels are wide (index ``ts``, one column per symbol) and keyed by field (``open, high,
low, close, volume``), as :meth:`quantdesk.data.MarketStore.panels` returns them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self, cast

import numpy as np
import pandas as pd

from quantdesk.core.coerce import as_utc
from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS

__all__ = [
    "ForecastModel",
    "Panels",
    "as_session",
    "check_session",
    "code_fingerprint",
    "stack_long",
    "symbol_bars",
    "truncate",
]

logger = logging.getLogger(__name__)

Panels = Mapping[str, pd.DataFrame]


def as_session(value: Any) -> pd.Timestamp:
    """Return a session label as a UTC timestamp (a naive date is taken as that UTC day)."""
    ts = as_utc(value)
    if ts is None:
        raise ValueError("a session is needed, got None")
    return ts


def check_session(panels: Panels, as_of: Any) -> pd.Timestamp:
    """Return ``as_of`` as a session of the panels, or raise a ValueError saying why not.

    A session after the last bar is refused (its bars do not exist yet: a forecast "as of"
    it would be made without them); so is a date that is not a session of the panels (a
    holiday, a weekend): the caller names the session it means.
    """
    index = panels["close"].index
    ts = as_session(as_of)
    if len(index) == 0:
        raise ValueError("no bars: a forecast needs at least one session")
    last = index[-1]
    if ts > last:
        raise ValueError(
            f"no bar for session {ts:%Y-%m-%d}: the last stored bar is {last:%Y-%m-%d}; "
            "a forecast as of a session is made from that session's bars"
        )
    if ts not in index:
        before = index[index <= ts]
        hint = f"; the session before is {before[-1]:%Y-%m-%d}" if len(before) else ""
        raise ValueError(f"{ts:%Y-%m-%d} is not a session of the bars{hint}")
    return ts


def truncate(panels: Panels, end: Any) -> dict[str, pd.DataFrame]:
    """Return the panels with every row after session ``end`` removed (None: all rows)."""
    if end is None:
        return dict(panels)
    ts = as_session(end)
    return {field: frame.loc[frame.index <= ts] for field, frame in panels.items()}


def symbol_bars(panels: Panels, symbol: str) -> pd.DataFrame:
    """Return one symbol's ``open, high, low, close`` indexed by ``ts``, its sessions only."""
    close = panels["close"][symbol]
    frame = pd.DataFrame(
        {
            f: (panels[f][symbol] if f in panels and symbol in panels[f] else np.nan)
            for f in ("open", "high", "low", "close")
        },
        index=close.index,
    )
    return frame.loc[close.notna().to_numpy()].rename_axis("ts")


def stack_long(wide: pd.DataFrame, name: str) -> pd.DataFrame:
    """Return a wide panel (index ``ts``, columns symbols) as long ``ts, symbol, {name}``."""
    frame = wide.rename_axis(index="ts", columns="symbol")
    stacked = cast("pd.Series", frame.stack(future_stack=True))
    return stacked.rename(name).reset_index()


def code_fingerprint(model: ForecastModel) -> str:
    """Return ``"sha256:<hex>"`` of the forecast package's source and the model's settings.

    Two forecasts share it only when the same code made them with the same settings.
    """
    digest = hashlib.sha256(b"quantdesk-forecast-code/1\x00")
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\x00" + path.read_bytes())
    settings = {"class": type(model).__name__, "version": model.version, **model.params()}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return f"sha256:{digest.hexdigest()}"


class ForecastModel(ABC):
    """Base of the forecast models: ``fit``, ``predict``, ``predict_many``, name and version.

    Subclasses set ``name`` and ``version`` and implement :meth:`predict_many` (and
    :meth:`_fit` when they learn anything).  ``is_baseline`` marks the naive models every
    other model is scored against.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    is_baseline: ClassVar[bool] = False

    def __init__(self, target: str) -> None:
        self.target = target
        self.train_end_: pd.Timestamp | None = None

    def __repr__(self) -> str:
        fitted = f", fitted to {self.train_end_:%Y-%m-%d}" if self.train_end_ is not None else ""
        return f"{type(self).__name__}(target={self.target!r}{fitted})"

    @property
    def probabilistic(self) -> bool:
        """Return whether the model forecasts the nine regime probabilities."""
        return self.target == "regime_1d"

    @property
    def value_columns(self) -> list[str]:
        """Return the columns of a forecast: ``value``, or the nine regime probabilities."""
        return list(REGIME_PROBABILITY_COLUMNS) if self.probabilistic else ["value"]

    def params(self) -> dict[str, Any]:
        """Return the model's settings (JSON-ready), part of its code fingerprint."""
        return {}

    def fit(self, panels: Panels, end: Any = None) -> Self:
        """Return ``self`` fitted on the bars up to and including session ``end``."""
        train = truncate(panels, end)
        if not len(train["close"].index):
            raise ValueError(f"{self.name}: no bars up to {end} to fit on")
        self._fit(train)
        self.train_end_ = train["close"].index[-1]
        return self

    def _fit(self, panels: Panels) -> None:  # noqa: B027 - baselines learn nothing
        """Learn from ``panels`` (already truncated at the training end)."""

    def predict(self, panels: Panels, as_of: Any) -> pd.Series | pd.DataFrame:
        """Return the forecast made at the close of session ``as_of``, one row per symbol.

        Raises
        ------
        ValueError
            For a session after the last bar, or a date that is not a session.
        """
        ts = check_session(panels, as_of)
        frame = self.predict_many(truncate(panels, ts), [ts]).set_index("symbol")
        frame = frame.drop(columns="ts")
        if self.probabilistic:
            return frame
        values: pd.Series = frame["value"]
        return values.rename(f"{self.name}:{self.target}@{ts:%Y-%m-%d}")

    @abstractmethod
    def predict_many(self, panels: Panels, sessions: Iterable[Any]) -> pd.DataFrame:
        """Return the forecasts as of each session, long: ``ts, symbol`` and the values.

        Row ``(t, s)`` uses the bars up to ``t`` only; symbols without a forecast (too
        little history) have no row.
        """

    # -- shared helpers ----------------------------------------------------------------

    @staticmethod
    def _long(wide: pd.DataFrame, sessions: Iterable[Any]) -> pd.DataFrame:
        """Return the rows ``sessions`` of a wide forecast panel as ``ts, symbol, value``."""
        wanted = pd.DatetimeIndex([as_session(s) for s in sessions])
        picked = wide.reindex(wanted)
        picked.index.name = "ts"
        picked.columns.name = "symbol"
        long = stack_long(picked, "value")
        return long.dropna(subset=["value"]).reset_index(drop=True)

    def _require_fitted(self) -> None:
        if self.train_end_ is None:
            raise ValueError(f"{self.name} is not fitted; call fit(panels, end) first")

    def to_artifact(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Return ``(arrays, metadata)`` for the model registry (no pickle)."""
        arrays, state = self._state()
        meta = {
            "class": type(self).__name__,
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "params": self.params(),
            "train_end": None if self.train_end_ is None else self.train_end_.isoformat(),
            "state": state,
        }
        return arrays, meta

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {}

    def _load_state(  # noqa: B027 - baselines have no state
        self, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]
    ) -> None:
        """Restore what :meth:`_state` saved (baselines have nothing)."""
