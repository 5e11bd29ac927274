"""Market regimes: a 9-state HMM (3 volatility x 3 trend), walk-forward, model registry.

Names load on first use, so importing :mod:`quantdesk.regimes` stays cheap (hmmlearn,
fsspec, HoloViews and Dask load only when a model, registry, figure or cluster is used)::

    from quantdesk.regimes import RegimeModel, walk_forward, ModelRegistry
    model = RegimeModel(random_state=0).fit(bars)
    regimes = model.filter(bars)            # causal: P(state_t | data up to t)
    wf = walk_forward(bars, window=2520, refit=21)
    print(wf.summary())
    run = fit_regimes(store, ["SPX"])        # fit, save to the registry, store the regimes
    print(regime_snapshot(store, "SPX").summary())
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "CELL_NAMES": "quantdesk.regimes.model",
    "RegimeModel": "quantdesk.regimes.model",
    "STATE_COLUMNS": "quantdesk.regimes.model",
    "TREND_LABELS": "quantdesk.regimes.model",
    "VOL_LABELS": "quantdesk.regimes.model",
    "FeatureConfig": "quantdesk.regimes.features",
    "compute_features": "quantdesk.regimes.features",
    "ModelRecord": "quantdesk.regimes.registry",
    "ModelRegistry": "quantdesk.regimes.registry",
    "data_fingerprint": "quantdesk.regimes.registry",
    "SymbolFits": "quantdesk.regimes.walkforward",
    "WalkForwardRegimes": "quantdesk.regimes.walkforward",
    "fit_symbols": "quantdesk.regimes.walkforward",
    "walk_forward": "quantdesk.regimes.walkforward",
    "empirical_transition_matrix": "quantdesk.regimes.analysis",
    "expected_durations": "quantdesk.regimes.analysis",
    "price_by_regime_figure": "quantdesk.regimes.analysis",
    "regime_probability_figure": "quantdesk.regimes.analysis",
    "regime_stats": "quantdesk.regimes.analysis",
    "RegimeFitRun": "quantdesk.regimes.jobs",
    "fit_regimes": "quantdesk.regimes.jobs",
    "RegimeSnapshot": "quantdesk.regimes.snapshot",
    "regime_snapshot": "quantdesk.regimes.snapshot",
}
_SUBMODULES = frozenset(
    {
        "analysis",
        "chain",
        "diagnostics",
        "em",
        "factorial",
        "features",
        "filtering",
        "jobs",
        "labels",
        "model",
        "persistence",
        "registry",
        "snapshot",
        "walkforward",
    }
)

__all__ = [
    "CELL_NAMES",
    "STATE_COLUMNS",
    "TREND_LABELS",
    "VOL_LABELS",
    "FeatureConfig",
    "ModelRecord",
    "ModelRegistry",
    "RegimeFitRun",
    "RegimeModel",
    "RegimeSnapshot",
    "SymbolFits",
    "WalkForwardRegimes",
    "compute_features",
    "data_fingerprint",
    "empirical_transition_matrix",
    "expected_durations",
    "fit_regimes",
    "fit_symbols",
    "price_by_regime_figure",
    "regime_probability_figure",
    "regime_snapshot",
    "regime_stats",
    "walk_forward",
]

if TYPE_CHECKING:
    from quantdesk.regimes.analysis import (
        empirical_transition_matrix,
        expected_durations,
        price_by_regime_figure,
        regime_probability_figure,
        regime_stats,
    )
    from quantdesk.regimes.features import FeatureConfig, compute_features
    from quantdesk.regimes.jobs import RegimeFitRun, fit_regimes
    from quantdesk.regimes.model import (
        CELL_NAMES,
        STATE_COLUMNS,
        TREND_LABELS,
        VOL_LABELS,
        RegimeModel,
    )
    from quantdesk.regimes.registry import ModelRecord, ModelRegistry, data_fingerprint
    from quantdesk.regimes.snapshot import RegimeSnapshot, regime_snapshot
    from quantdesk.regimes.walkforward import (
        SymbolFits,
        WalkForwardRegimes,
        fit_symbols,
        walk_forward,
    )


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
