"""The catalogue of forecast models by target, and loading a model saved in the registry.

:func:`models_for` gives a fresh instance of every model of a target, baselines first;
:func:`save_model` and :func:`load_model` keep fitted models in the model registry
(:class:`quantdesk.regimes.ModelRegistry`), one artifact per model under the name
``forecast-{target}-{model}`` and the symbol ``@universe`` (a model may cover many symbols).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quantdesk.forecast.base import ForecastModel
from quantdesk.forecast.baselines import EWMAVol, LastReturn, PreviousVol, ZeroReturn
from quantdesk.forecast.boosting import LightGBMReturn
from quantdesk.forecast.regime_models import (
    HMMRegimeForecast,
    RegimePersistence,
    StationaryRegimes,
)
from quantdesk.forecast.targets import target_horizon
from quantdesk.forecast.volatility import GARCHVol, HARVol

if TYPE_CHECKING:
    from quantdesk.regimes.registry import ModelRecord, ModelRegistry

__all__ = ["MODEL_CLASSES", "UNIVERSE", "load_model", "models_for", "registry_name", "save_model"]

#: The symbol component under which a forecast model is saved (it may cover many symbols).
UNIVERSE = "@universe"

_CATALOGUE: dict[str, tuple[Callable[[str], ForecastModel], ...]] = {
    "return_1d": (ZeroReturn, LastReturn, LightGBMReturn),
    "vol_1d": (PreviousVol, EWMAVol, HARVol, GARCHVol),
    "vol_5d": (PreviousVol, EWMAVol, HARVol, GARCHVol),
    "regime_1d": (RegimePersistence, StationaryRegimes, HMMRegimeForecast),
}
MODEL_CLASSES: dict[str, type[ForecastModel]] = {
    cls.__name__: cls for classes in _CATALOGUE.values() for cls in classes if isinstance(cls, type)
}


def models_for(target: str) -> list[ForecastModel]:
    """Return a fresh instance of every model of ``target``, baselines first.

    Examples
    --------
    >>> [m.name for m in models_for("vol_5d")]
    ['previous', 'ewma', 'har', 'garch']
    """
    target_horizon(target)
    return [factory(target) for factory in _CATALOGUE[target]]


def registry_name(model: ForecastModel) -> str:
    """Return the registry name of a model: ``forecast-{target}-{name}``."""
    return f"forecast-{model.target}-{model.name}"


def save_model(
    registry: ModelRegistry,
    model: ForecastModel,
    *,
    version: str | None = None,
    data_fingerprint: str | None = None,
    extra: dict[str, Any] | None = None,
) -> ModelRecord:
    """Return the record of a fitted model saved in the registry (a new immutable version)."""
    model._require_fitted()
    return registry.save(
        model,
        registry_name(model),
        UNIVERSE,
        version=version,
        data_fingerprint=data_fingerprint,
        extra=extra,
    )


def load_model(registry: ModelRegistry, name: str, version: str = "latest") -> ForecastModel:
    """Return the forecast model saved as ``name`` (``forecast-{target}-{model}``)."""
    import pandas as pd

    arrays, meta = registry.load_artifact(name, UNIVERSE, version)
    cls = MODEL_CLASSES.get(str(meta.get("class")))
    if cls is None:
        raise ValueError(f"{name}: not a forecast model artifact (class {meta.get('class')!r})")
    model = cls(meta["target"])  # type: ignore[call-arg]
    model._load_state(arrays, meta["state"])
    model.train_end_ = None if meta["train_end"] is None else pd.Timestamp(meta["train_end"])
    return model
