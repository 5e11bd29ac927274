"""Strategies by name: what the paper ledger, the CLI, the pipeline and notebooks run.

A strategy is a pure function of a wide close panel and keyword parameters that
returns target weights aligned to it (NaN: no opinion, no order).  Registering one
here makes it available by name to :func:`quantdesk.portfolio.follow.follow_strategy`
(``quantdesk paper rebalance --strategy NAME``) and to anything that looks names up
with :func:`get_strategy`.

Examples
--------
>>> sorted(STRATEGIES)
['vol_target_trend']
>>> get_strategy("vol_target_trend").__name__
'vol_target_trend'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import pandas as pd

from quantdesk.strategies.trend import vol_target_trend

__all__ = [
    "STRATEGIES",
    "Strategy",
    "UnknownStrategyError",
    "get_strategy",
    "register",
    "unregister",
]

#: A strategy: ``weights = strategy(close, **params)``.
Strategy = Callable[..., pd.DataFrame]

_REGISTRY: dict[str, Strategy] = {"vol_target_trend": vol_target_trend}

#: The registered strategies by name (read-only; add with :func:`register`).
STRATEGIES: Mapping[str, Strategy] = MappingProxyType(_REGISTRY)


class UnknownStrategyError(ValueError):
    """Raised for a strategy name that is not registered; the message lists the known ones."""


def get_strategy(name: str) -> Strategy:
    """Return the strategy registered as ``name``.

    Raises
    ------
    UnknownStrategyError
        For a name not registered, naming the ones that are.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownStrategyError(
            f"unknown strategy {name!r}; known strategies: {', '.join(sorted(_REGISTRY))}"
        ) from None


def register(name: str, strategy: Strategy | None = None, *, replace: bool = False) -> Any:
    """Return ``strategy`` after registering it as ``name`` (or a decorator that does).

    A name already taken by another function is refused unless ``replace=True``, so a
    notebook cannot silently change what a scheduled ledger follows.

    Examples
    --------
    >>> @register("flat_doc_example")
    ... def flat(close, **params):
    ...     return close * 0.0
    >>> get_strategy("flat_doc_example") is flat
    True
    >>> unregister("flat_doc_example") is flat
    True
    """

    def add(function: Strategy) -> Strategy:
        if not name or not name.strip():
            raise ValueError("a strategy needs a name")
        known = _REGISTRY.get(name)
        if known is not None and known is not function and not replace:
            raise ValueError(f"strategy {name!r} is already registered ({known!r}); replace=True")
        _REGISTRY[name] = function
        return function

    return add if strategy is None else add(strategy)


def unregister(name: str) -> Strategy:
    """Return the strategy that was registered as ``name``, after removing it.

    Raises
    ------
    UnknownStrategyError
        For a name not registered.
    """
    strategy = get_strategy(name)
    del _REGISTRY[name]
    return strategy
