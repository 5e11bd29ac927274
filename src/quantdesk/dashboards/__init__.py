"""Dashboards: the Panel market monitor and the Voila launcher (the only place Panel is known).

Names load on first use, so importing :mod:`quantdesk.dashboards` stays cheap.
"""

from __future__ import annotations

from quantdesk._lazy import lazy_attributes

_EXPORTS: dict[str, str] = {}
_SUBMODULES = frozenset({"security"})

__all__: list[str] = []

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
