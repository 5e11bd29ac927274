"""Saving and loading regime models: numeric arrays plus JSON metadata, no pickle.

An artifact is ``(arrays, metadata)``: the fitted parameters in cell order as numpy arrays
and everything else (settings, feature configuration, standardiser, training window,
diagnostics, library versions) as JSON-serialisable metadata.  The model registry
(:mod:`quantdesk.regimes.registry`) writes them as ``arrays.npz`` and ``metadata.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from quantdesk.core.provenance import library_versions
from quantdesk.data.schemas import REGIME_CELL_NAMES, REGIME_PROBABILITY_COLUMNS
from quantdesk.regimes.chain import GaussianChain, used_features
from quantdesk.regimes.features import REGIME_FEATURE_NAMES, FeatureConfig, Standardizer

__all__ = ["model_artifact", "model_from_artifact"]

_ARTIFACT_FORMAT = 1
# The model class is handed in (``RegimeModel.load`` passes itself), so this module
# never imports quantdesk.regimes.model, which imports it: no circle between them.
_Model = TypeVar("_Model")
# What a saved model records of its environment.
_LIBRARIES = ("quantdesk", "hmmlearn", "numpy", "pandas", "scipy", "scikit-learn")


def model_artifact(model: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``(arrays, metadata)`` of a fitted model (see :meth:`RegimeModel.to_artifact`)."""
    arrays: dict[str, np.ndarray] = {"state_map": model.state_map_.copy()}
    prefixes = ("joint",) if model.kind_ == "joint" else ("vol", "trend")
    for prefix, chain in zip(prefixes, model._chains, strict=True):
        arrays.update(chain.arrays(f"{prefix}_"))
    meta: dict[str, Any] = {
        "format": _ARTIFACT_FORMAT,
        "model": "quantdesk.regimes.RegimeModel",
        "kind": model.kind_,
        "degenerate": model.degenerate_,
        "n_states": model.n_states,
        "structure": model.structure,
        "covariance_type": model.covariance_type,
        "hmm_features": (
            model.hmm_features if model.hmm_features == "auto" else list(model.hmm_features)
        ),
        "chain_columns": {p: list(c.columns) for p, c in zip(prefixes, model._chains, strict=True)},
        "params": {
            "random_state": model.random_state,
            "n_init": model.n_init,
            "n_iter": model.n_iter,
            "tol": model.tol,
            "prior_weight": model.prior_weight,
            "trend_prior_weight": model.trend_prior_weight,
            "trend_prior_days": model.trend_prior_days,
            "min_occupancy": model.min_occupancy,
            "min_separation": model.min_separation,
            "drift_separation": model.drift_separation,
        },
        "features": model.features.to_dict(),
        "feature_names": list(REGIME_FEATURE_NAMES),
        "standardizer": model.standardizer_.to_dict(),
        "train_start": model.train_start_.isoformat(),
        "train_end": model.train_end_.isoformat(),
        "n_obs": model.n_obs_,
        "log_likelihood": model.log_likelihood_,
        "converged": model.converged_,
        "n_iter": model.n_iter_,
        "state_map": [int(c) for c in model.state_map_],
        "cells": list(REGIME_CELL_NAMES),
        "state_columns": list(REGIME_PROBABILITY_COLUMNS),
        "occupancy": [float(v) for v in model.occupancy_],
        "cell_means": {c: [float(v) for v in model.cell_means_[c]] for c in REGIME_FEATURE_NAMES},
        "versions": library_versions(_LIBRARIES, missing="unknown"),
    }
    return arrays, meta


def model_from_artifact(
    model_class: type[_Model],
    arrays: Mapping[str, np.ndarray],
    metadata: Mapping[str, Any],
) -> _Model:
    """Return the ``model_class`` instance saved by :func:`model_artifact`.

    Raises
    ------
    ValueError
        If the metadata is not a regime model artifact this version can read.
    """
    if metadata.get("model") != "quantdesk.regimes.RegimeModel":
        raise ValueError(f"not a RegimeModel artifact: model={metadata.get('model')!r}")
    if metadata.get("format") != _ARTIFACT_FORMAT:
        raise ValueError(
            f"RegimeModel artifact format {metadata.get('format')!r} is not supported "
            f"(this version reads {_ARTIFACT_FORMAT})"
        )
    kind = metadata["kind"]
    if kind not in ("joint", "product"):
        raise ValueError(f"unknown RegimeModel kind {kind!r}")
    params = metadata["params"]
    hmm_features = metadata["hmm_features"]
    model: Any = model_class(  # type: ignore[call-arg]
        int(metadata["n_states"]),
        random_state=int(params["random_state"]),
        n_init=int(params["n_init"]),
        n_iter=int(params["n_iter"]),
        tol=float(params["tol"]),
        features=FeatureConfig.from_dict(metadata["features"]),
        # Artifacts written before the factorial structure existed are all "free".
        structure=metadata.get("structure", "free"),
        covariance_type=metadata["covariance_type"],
        hmm_features="auto" if hmm_features == "auto" else tuple(hmm_features),
        prior_weight=float(params["prior_weight"]),
        # Artifacts written before the trend-chain prior existed were fitted without it,
        # and separated drifts by min_separation.
        trend_prior_weight=float(params.get("trend_prior_weight", 0.0)),
        trend_prior_days=float(params.get("trend_prior_days", 63.0)),
        min_occupancy=float(params["min_occupancy"]),
        min_separation=float(params["min_separation"]),
        drift_separation=float(params.get("drift_separation", params["min_separation"])),
    )
    prefixes = ("joint",) if kind == "joint" else ("vol", "trend")
    model._chains = tuple(
        GaussianChain.from_arrays(
            arrays,
            f"{p}_",
            tuple(metadata["chain_columns"][p]),
            model.covariance_type,
        )
        for p in prefixes
    )
    model.kind_ = kind
    model.hmm_features_ = used_features(model._chains)
    model.degenerate_ = metadata["degenerate"]
    model.state_map_ = np.asarray(arrays["state_map"], dtype=np.int64)
    model.standardizer_ = Standardizer.from_dict(metadata["standardizer"])
    model.train_start_ = pd.Timestamp(metadata["train_start"])
    model.train_end_ = pd.Timestamp(metadata["train_end"])
    model.n_obs_ = int(metadata["n_obs"])
    model.log_likelihood_ = float(metadata["log_likelihood"])
    model.converged_ = bool(metadata["converged"])
    model.n_iter_ = int(metadata["n_iter"])
    model.occupancy_ = pd.Series(
        metadata["occupancy"], index=list(REGIME_CELL_NAMES), name="share", dtype=float
    )
    model.cell_means_ = pd.DataFrame(
        {c: metadata["cell_means"][c] for c in REGIME_FEATURE_NAMES},
        index=list(REGIME_CELL_NAMES),
        dtype=float,
    )
    rebuilt: _Model = model
    return rebuilt
