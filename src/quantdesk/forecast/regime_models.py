"""Next-session regime forecasts from the fitted 9-state HMM, and their two baselines.

Each model fits :class:`quantdesk.regimes.RegimeModel` per symbol on the training window
and runs its causal filter (:meth:`RegimeModel.filter`, P(cell at t | bars up to t)) over
the bars.  With ``f[t]`` the filtered probabilities and ``A`` the fitted transition matrix:

:class:`HMMRegimeForecast`
    the one-step predictive distribution ``f[t] @ A``;
:class:`RegimePersistence` (baseline)
    ``f[t]``: tomorrow looks like today;
:class:`StationaryRegimes` (baseline)
    the chain's stationary distribution (:func:`quantdesk.core.markov.stationary_distribution`
    of ``A``), the same every day.

Fits are shared: the three models (and the walk-forward's regime target) fitted on the same
bars with the same seed reuse one HMM per symbol (a small in-process cache keyed by the
bars' digest).  So are filters: the three models holding the same HMM (fitted together, or
loaded from artifacts with the same arrays) filter the same bars once (a cache keyed by
the HMM's identity and the bars' digest).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from quantdesk.core.markov import stationary_distribution
from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS
from quantdesk.forecast.base import ForecastModel, Panels, as_session, symbol_bars

if TYPE_CHECKING:
    from quantdesk.regimes.model import RegimeModel

__all__ = ["HMMRegimeForecast", "RegimePersistence", "StationaryRegimes", "filtered_regimes"]

logger = logging.getLogger(__name__)

_CACHE: OrderedDict[tuple[str, int, str], RegimeModel] = OrderedDict()
_CACHE_SIZE = 256
_FILTERED: OrderedDict[tuple[str, str], pd.DataFrame] = OrderedDict()
_FILTERED_SIZE = 2048
_MIN_OBS = 320  # the HMM's 250 training rows after the feature warm-up


def _digest(bars: pd.DataFrame) -> str:
    digest = hashlib.sha256(pd.DatetimeIndex(bars.index).asi8.tobytes())
    digest.update(np.ascontiguousarray(bars.to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()


def _fitted(bars: pd.DataFrame, random_state: int) -> RegimeModel:
    from quantdesk.regimes.model import RegimeModel

    key = (_digest(bars), random_state, "hmm")
    model = _CACHE.get(key)
    if model is None:
        model = RegimeModel(random_state=random_state).fit(bars)
        _CACHE[key] = model
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return model


def _filtered(model: RegimeModel, identity: str | None, bars: pd.DataFrame) -> pd.DataFrame:
    """Return ``model.filter(bars)``'s probabilities, once per (HMM identity, bars)."""
    cols = list(REGIME_PROBABILITY_COLUMNS)
    if identity is None:
        return model.filter(bars)[cols]
    key = (identity, _digest(bars))
    found = _FILTERED.get(key)
    if found is None:
        found = model.filter(bars)[cols]
        _FILTERED[key] = found
        while len(_FILTERED) > _FILTERED_SIZE:
            _FILTERED.popitem(last=False)
    else:
        _FILTERED.move_to_end(key)
    return found


def _arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(
            name.encode() + b"\x00" + str(value.dtype).encode() + str(value.shape).encode()
        )
        digest.update(value.tobytes())
    return digest.hexdigest()


def filtered_regimes(models: Mapping[str, RegimeModel], panels: Panels) -> pd.DataFrame:
    """Return the long filtered probabilities ``symbol, ts, p_*`` of fitted models per symbol."""
    frames = []
    for symbol, model in models.items():
        probs = model.filter(symbol_bars(panels, symbol))[list(REGIME_PROBABILITY_COLUMNS)]
        frames.append(probs.reset_index().assign(symbol=symbol))
    if not frames:
        return pd.DataFrame(columns=["symbol", "ts", *REGIME_PROBABILITY_COLUMNS])
    return pd.concat(frames, ignore_index=True)[["symbol", "ts", *REGIME_PROBABILITY_COLUMNS]]


class _RegimeForecast(ForecastModel):
    """Shared fitting and filtering of the regime forecasts."""

    def __init__(self, target: str = "regime_1d", random_state: int = 0) -> None:
        if target != "regime_1d":
            raise ValueError(f"{type(self).__name__} forecasts 'regime_1d', not {target!r}")
        super().__init__(target)
        self.random_state = int(random_state)
        self.models_: dict[str, RegimeModel] = {}
        # An identity per symbol's HMM: equal identities hold equal parameters.
        self.identities_: dict[str, str] = {}

    def params(self) -> dict[str, Any]:
        """Return the HMM's seed."""
        return {"random_state": self.random_state}

    def _fit(self, panels: Panels) -> None:
        self.models_ = {}
        self.identities_ = {}
        for symbol in panels["close"].columns:
            bars = symbol_bars(panels, str(symbol))
            if len(bars) < _MIN_OBS:
                logger.info(
                    "%s: %s has %d bars (< %d): no fit", self.name, symbol, len(bars), _MIN_OBS
                )
                continue
            self.models_[str(symbol)] = _fitted(bars, self.random_state)
            self.identities_[str(symbol)] = f"fit:{_digest(bars)}:{self.random_state}"

    def _forecast(self, filtered: np.ndarray, transmat: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_many(self, panels: Panels, sessions: Iterable[Any]) -> pd.DataFrame:
        """Return the nine next-session probabilities per symbol and session."""
        self._require_fitted()
        wanted = pd.DatetimeIndex([as_session(s) for s in sessions])
        cols = list(REGIME_PROBABILITY_COLUMNS)
        frames = []
        for symbol, model in self.models_.items():
            if symbol not in panels["close"].columns:
                continue
            bars = symbol_bars(panels, symbol)
            filt = _filtered(model, self.identities_.get(symbol), bars)
            filt = filt.reindex(wanted).dropna()
            probs = self._forecast(filt.to_numpy(), model.transition_matrix().to_numpy())
            frames.append(pd.DataFrame(probs, columns=cols).assign(ts=filt.index, symbol=symbol))
        if not frames:
            return pd.DataFrame(columns=["ts", "symbol", *cols])
        out = pd.concat(frames, ignore_index=True)[["ts", "symbol", *cols]]
        return out.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {}
        metas: dict[str, Any] = {}
        for i, (symbol, model) in enumerate(sorted(self.models_.items())):
            a, meta = model.to_artifact()
            arrays.update({f"s{i}__{k}": v for k, v in a.items()})
            metas[symbol] = {"index": i, "model": meta}
        return arrays, {"symbols": metas}

    def _load_state(self, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
        from quantdesk.regimes.model import RegimeModel

        self.models_ = {}
        self.identities_ = {}
        for symbol, entry in state["symbols"].items():
            prefix = f"s{entry['index']}__"
            own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            self.models_[symbol] = RegimeModel.from_artifact(own, entry["model"])
            meta = json.dumps(entry["model"], sort_keys=True, default=str)
            self.identities_[symbol] = (
                f"artifact:{_arrays_digest(own)}:{hashlib.sha256(meta.encode()).hexdigest()}"
            )


class HMMRegimeForecast(_RegimeForecast):
    """The fitted HMM's one-step predictive distribution, ``filtered[t] @ transmat``."""

    name: ClassVar[str] = "hmm"

    def _forecast(self, filtered: np.ndarray, transmat: np.ndarray) -> np.ndarray:
        return np.asarray(filtered @ transmat)


class RegimePersistence(_RegimeForecast):
    """Baseline: tomorrow's regime probabilities are today's filtered ones."""

    name: ClassVar[str] = "persistence"
    is_baseline: ClassVar[bool] = True

    def _forecast(self, filtered: np.ndarray, transmat: np.ndarray) -> np.ndarray:
        return filtered


class StationaryRegimes(_RegimeForecast):
    """Baseline: the fitted chain's stationary distribution, every day."""

    name: ClassVar[str] = "stationary"
    is_baseline: ClassVar[bool] = True

    def _forecast(self, filtered: np.ndarray, transmat: np.ndarray) -> np.ndarray:
        return np.tile(stationary_distribution(transmat), (len(filtered), 1))
