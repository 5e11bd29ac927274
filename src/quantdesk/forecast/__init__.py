"""Forecasts with a tracked accuracy: targets, models, scores, walk-forward evaluation.

Names load on first use (LightGBM, arch and hmmlearn only when a model needs them)::

    from quantdesk.forecast import walk_forward, models_for
    wf = walk_forward(store, target="vol_1d")      # every vol model beside its baselines
    wf.scores()                                   # model, target, metric, value, baseline, ...
    print(wf.summary())

Targets are ``return_1d``, ``vol_1d``, ``vol_5d`` and ``regime_1d``
(:mod:`quantdesk.forecast.targets`); models share one interface
(:class:`~quantdesk.forecast.base.ForecastModel`: ``fit(panels, end)``,
``predict(panels, as_of)``); forecasts are recorded in the store by
:class:`quantdesk.data.store.forecasts.ForecastStore`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "TARGETS": "quantdesk.forecast.targets",
    "ForecastModel": "quantdesk.forecast.base",
    "models_for": "quantdesk.forecast.models",
    "load_model": "quantdesk.forecast.models",
    "save_model": "quantdesk.forecast.models",
    "WalkForwardForecasts": "quantdesk.forecast.evaluation",
    "walk_forward": "quantdesk.forecast.evaluation",
    "fit_forecasts": "quantdesk.forecast.jobs",
    "run_forecasts": "quantdesk.forecast.jobs",
    "score_forecasts": "quantdesk.forecast.scoring",
    "backfill_forecasts": "quantdesk.forecast.jobs",
    "forecast_view": "quantdesk.forecast.view",
    "pipeline_step": "quantdesk.forecast.evening",
}
_SUBMODULES = frozenset(
    {
        "base",
        "baselines",
        "boosting",
        "evaluation",
        "evening",
        "jobs",
        "models",
        "regime_models",
        "scores",
        "scoring",
        "targets",
        "view",
        "volatility",
    }
)

__all__ = [
    "TARGETS",
    "ForecastModel",
    "WalkForwardForecasts",
    "backfill_forecasts",
    "fit_forecasts",
    "forecast_view",
    "load_model",
    "models_for",
    "pipeline_step",
    "run_forecasts",
    "save_model",
    "score_forecasts",
    "walk_forward",
]

if TYPE_CHECKING:
    from quantdesk.forecast.base import ForecastModel
    from quantdesk.forecast.evaluation import WalkForwardForecasts, walk_forward
    from quantdesk.forecast.evening import pipeline_step
    from quantdesk.forecast.jobs import backfill_forecasts, fit_forecasts, run_forecasts
    from quantdesk.forecast.models import load_model, models_for, save_model
    from quantdesk.forecast.scoring import score_forecasts
    from quantdesk.forecast.targets import TARGETS
    from quantdesk.forecast.view import forecast_view


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
