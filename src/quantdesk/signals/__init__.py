"""Signals: pure, causal functions on wide panels (index ts, one column per symbol)."""

from __future__ import annotations

from quantdesk.signals.features import FEATURE_NAMES, common_features

__all__ = ["FEATURE_NAMES", "common_features"]
