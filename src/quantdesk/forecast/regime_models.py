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
import math
import weakref
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
_FILTERED: OrderedDict[tuple[str, str], tuple[pd.DatetimeIndex, np.ndarray]] = OrderedDict()
_FILTERED_SIZE = 2048
_LOADED: OrderedDict[str, RegimeModel] = OrderedDict()
_TRANSMATS: weakref.WeakKeyDictionary[RegimeModel, np.ndarray] = weakref.WeakKeyDictionary()
_MIN_OBS = 320  # the HMM's 250 training rows after the feature warm-up


def _digest(bars: pd.DataFrame) -> str:
    return _ohlc_digest(pd.DatetimeIndex(bars.index), bars.to_numpy(dtype=np.float64))


def _ohlc_digest(index: pd.DatetimeIndex, ohlc: np.ndarray) -> str:
    digest = hashlib.sha256(index.asi8.tobytes())
    digest.update(np.ascontiguousarray(ohlc, dtype=np.float64).tobytes())
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


def _filter_arrays(
    model: RegimeModel, index: pd.DatetimeIndex, ohlc: np.ndarray
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Return ``model.filter``'s sessions and nine probabilities for one symbol's bars.

    Bars ``ohlc`` (``open, high, low, close`` on ``index``, the close never missing) with
    every price finite and positive and a model that pins its bars per year take the
    array path: :func:`~quantdesk.regimes.features.feature_matrix`, the training
    standardisation, :func:`~quantdesk.regimes.filtering.gaussian_log_density` and
    :func:`~quantdesk.regimes.filtering.forward_filter` per chain, the very arithmetic of
    :meth:`RegimeModel.filter` without its per-symbol frames (the equality is tested).
    Anything else (close-only or partial bars, a bad price, too few bars) goes through
    :meth:`RegimeModel.filter` itself, with its checks and messages.
    """
    from quantdesk.regimes.chain import cell_probabilities
    from quantdesk.regimes.features import REGIME_FEATURE_NAMES, feature_matrix
    from quantdesk.regimes.filtering import forward_filter, gaussian_log_density

    config = model.features
    scaler = model.standardizer_
    plain = (
        config.periods_per_year is not None
        and len(index) > config.warmup
        and index.is_monotonic_increasing
        and index.is_unique
        and scaler.columns_ == REGIME_FEATURE_NAMES
        and bool(np.isfinite(ohlc).all() and (ohlc > 0).all())
    )
    if not plain:
        bars = pd.DataFrame(ohlc, index=index, columns=["open", "high", "low", "close"])
        found = model.filter(bars.rename_axis("ts"))[list(REGIME_PROBABILITY_COLUMNS)]
        return pd.DatetimeIndex(found.index), found.to_numpy()
    assert config.periods_per_year is not None
    features = feature_matrix(ohlc, config, config.periods_per_year)[config.warmup :]
    # Fortran order, as the filter's standardised frame hands its columns to the chains.
    z = np.asfortranarray((features - scaler.mean_) / scaler.scale_)
    parts = []
    for chain in model._chains:
        x = z[:, [REGIME_FEATURE_NAMES.index(c) for c in chain.columns]]
        log_b = gaussian_log_density(x, chain.means, chain.full_covars())
        parts.append(forward_filter(log_b, chain.startprob, chain.transmat))
    return index[config.warmup :], cell_probabilities(parts)


def _filtered(
    model: RegimeModel, identity: str | None, index: pd.DatetimeIndex, ohlc: np.ndarray
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Return :func:`_filter_arrays`, once per (HMM identity, bars)."""
    if identity is None:
        return _filter_arrays(model, index, ohlc)
    key = (identity, _ohlc_digest(index, ohlc))
    found = _FILTERED.get(key)
    if found is None:
        found = _filter_arrays(model, index, ohlc)
        _FILTERED[key] = found
        while len(_FILTERED) > _FILTERED_SIZE:
            _FILTERED.popitem(last=False)
    else:
        _FILTERED.move_to_end(key)
    return found


def _symbol_ohlc(panels: Panels) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray], np.ndarray]:
    """Return the panels' sessions, ``(T, N)`` open/high/low/close arrays and close mask."""
    close = panels["close"]
    arrays = {
        f: (
            panels[f].reindex(columns=close.columns).to_numpy(dtype=np.float64)
            if f in panels
            else np.full(close.shape, np.nan)
        )
        for f in ("open", "high", "low", "close")
    }
    return pd.DatetimeIndex(close.index), arrays, close.notna().to_numpy()


def _transmat(model: RegimeModel) -> np.ndarray:
    """Return ``model.transition_matrix()`` as an array, built once per fitted model."""
    found = _TRANSMATS.get(model)
    if found is None:
        found = model.transition_matrix().to_numpy()
        _TRANSMATS[model] = found
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
    """Return the long filtered probabilities ``symbol, ts, p_*`` of the panels' symbols.

    Symbols with a fitted model but no column in ``panels`` are left out (a model fitted
    on a universe scores only the symbols asked for).
    """
    frames = []
    present = set(panels["close"].columns)
    for symbol, model in models.items():
        if symbol not in present:
            continue
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
        index, fields, priced = _symbol_ohlc(panels)
        where = {str(c): j for j, c in enumerate(panels["close"].columns)}
        # The asked sessions as rows of the panels (a session not there has no forecast).
        asked = index.get_indexer(wanted)
        asked = asked[asked >= 0]
        ts_parts, symbol_parts, prob_parts = [], [], []
        for symbol, model in self.models_.items():
            j = where.get(symbol)
            if j is None:
                continue
            rows = priced[:, j]
            ohlc = np.column_stack([fields[f][rows, j] for f in ("open", "high", "low", "close")])
            _, filtered = _filtered(model, self.identities_.get(symbol), index[rows], ohlc)
            # The filter's rows are the symbol's last len(filtered) sessions.
            local = np.cumsum(rows)[asked] - 1 - (len(ohlc) - len(filtered))
            mine = rows[asked] & (local >= 0)
            if not mine.any():
                continue
            ts_parts.append(asked[mine])
            symbol_parts.append(np.full(int(mine.sum()), symbol, dtype=object))
            prob_parts.append(self._forecast(filtered[local[mine]], _transmat(model)))
        if not prob_parts:
            return pd.DataFrame(columns=["ts", "symbol", *cols])
        out = pd.DataFrame(np.concatenate(prob_parts), columns=cols)
        out.insert(0, "ts", index[np.concatenate(ts_parts)])
        out.insert(1, "symbol", np.concatenate(symbol_parts))
        return out.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        # Every symbol's HMM arrays packed into one flat array per dtype: a registry
        # reads each stored array on its own, and 500 symbols hold about 2,500 of them.
        packed: dict[str, list[np.ndarray]] = {}
        sizes: dict[str, int] = {}
        metas: dict[str, Any] = {}
        for i, (symbol, model) in enumerate(sorted(self.models_.items())):
            a, meta = model.to_artifact()
            layout = []
            for name, value in a.items():
                value = np.asarray(value)
                kind = value.dtype.name
                layout.append([name, kind, list(value.shape), sizes.get(kind, 0)])
                packed.setdefault(kind, []).append(value.ravel())
                sizes[kind] = sizes.get(kind, 0) + value.size
            metas[symbol] = {"index": i, "model": meta, "arrays": layout}
        arrays = {f"packed_{kind}": np.concatenate(parts) for kind, parts in packed.items()}
        return arrays, {"symbols": metas}

    def _load_state(self, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
        from quantdesk.regimes.model import RegimeModel

        self.models_ = {}
        self.identities_ = {}
        # Artifacts written before the packing hold one array per symbol and name.
        by_index: dict[str, dict[str, np.ndarray]] = {}
        for key, value in arrays.items():
            prefix, sep, name = key.partition("__")
            if sep:
                by_index.setdefault(prefix, {})[name] = value
        for entry in state["symbols"].values():
            if "arrays" in entry:
                by_index[f"s{entry['index']}"] = {
                    name: arrays[f"packed_{kind}"][at : at + math.prod(shape)].reshape(shape)
                    for name, kind, shape, at in entry["arrays"]
                }
        for symbol, entry in state["symbols"].items():
            own = by_index.get(f"s{entry['index']}", {})
            meta = json.dumps(entry["model"], sort_keys=True, default=str)
            identity = f"artifact:{_arrays_digest(own)}:{hashlib.sha256(meta.encode()).hexdigest()}"
            # The three regime models saved together hold the same HMMs: load each once.
            model = _LOADED.get(identity)
            if model is None:
                model = RegimeModel.from_artifact(own, entry["model"])
                _LOADED[identity] = model
                while len(_LOADED) > _FILTERED_SIZE:
                    _LOADED.popitem(last=False)
            else:
                _LOADED.move_to_end(identity)
            self.models_[symbol] = model
            self.identities_[symbol] = identity


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
