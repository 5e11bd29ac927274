"""Screener rules: small, pure, composable conditions over bars.

A rule looks at wide arrays of bar fields (rows are bars in time order, columns are
symbols: ``open, high, low, close, volume``, and ``regime`` or ``sentiment`` when a rule
asks for them) and says, for every bar, whether it fires, at what price, and what it
saw (its *conditions*, e.g. the gap in percent and the previous close).  Rules do no
I/O: the same rule runs in a backfill over years, on the latest day of the whole
universe and on each new candle of the live feed.

Every rule is causal: its value at bar ``t`` uses bars up to ``t`` only, and needs at
most :attr:`Rule.lookback` earlier bars, which is what lets the streaming scan keep a
short window per symbol instead of the history.  A bar whose look-back is incomplete
(missing bars are NaN) never fires.

Window sums are added one lagged slice at a time, in the same order whatever the
array's length, so a rule gives bit-identical results on a year of bars and on the
short window the streaming scan keeps.

Built-in rules (:data:`BUILTIN_RULES`): :func:`gap_up`, :func:`gap_down`,
:func:`volume_spike`, :func:`new_high`, :func:`new_low`, :func:`ma_cross`,
:func:`regime_change`, :func:`sentiment_shock`.  Combine them with ``&``, ``|`` and
``~`` (or :func:`all_of`, :func:`any_of`, :func:`not_`), and write your own with
:func:`rule`.

Examples
--------
>>> close = np.array([[10.0], [10.4], [10.5]])
>>> data = {"open": np.array([[10.0], [10.4], [10.4]]), "close": close}
>>> out = gap_up(pct=3.0).evaluate(data)
>>> out.hits[:, 0].tolist(), round(float(out.conditions["gap_pct"][1, 0]), 6)
([False, True, False], 4.0)
"""

from __future__ import annotations

import abc
import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "BUILTIN_RULES",
    "Fields",
    "Rule",
    "RuleOutput",
    "RuleParameterError",
    "all_of",
    "any_of",
    "builtin_parameters",
    "gap_down",
    "gap_up",
    "ma_cross",
    "new_high",
    "new_low",
    "not_",
    "regime_change",
    "rule",
    "sentiment_shock",
    "volume_spike",
]

#: What a rule reads: field name -> float array of shape (bars, symbols).
Fields = Mapping[str, np.ndarray]


class RuleParameterError(ValueError):
    """A rule parameter out of range; ``field`` names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class RuleOutput:
    """What a rule says about every bar: ``hits`` (bool), ``trigger`` price, ``conditions``.

    Every array has the shape of the input fields, (bars, symbols).
    """

    hits: np.ndarray
    trigger: np.ndarray
    conditions: dict[str, np.ndarray] = field(default_factory=dict)


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    """Return ``x`` shifted down by ``k`` rows (row ``t`` holds row ``t - k``), NaN above."""
    out = np.full(x.shape, np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def _window_sum(x: np.ndarray, first_lag: int, n: int) -> np.ndarray:
    """Return the sum of rows ``t - first_lag - n + 1 .. t - first_lag``; NaN if incomplete."""
    out = np.full(x.shape, np.nan)
    start = first_lag + n - 1  # the first row with a complete window
    rows = len(x)
    if start >= rows:
        return out
    # One lagged slice at a time, oldest last, always in this order: the sum of a
    # window does not depend on how many rows the array has.
    acc = x[start - first_lag : rows - first_lag].astype(np.float64, copy=True)
    for lag in range(first_lag + 1, first_lag + n):
        acc += x[start - lag : rows - lag]
    out[start:] = acc
    return out


def _window_extreme(x: np.ndarray, first_lag: int, n: int, *, high: bool) -> np.ndarray:
    """Return the max (or min) of rows ``t - first_lag - n + 1 .. t - first_lag``."""
    out = np.full(x.shape, np.nan)
    start = first_lag + n - 1
    rows = len(x)
    if start >= rows:
        return out
    pick = np.maximum if high else np.minimum  # NaN propagates: an incomplete window
    acc = x[start - first_lag : rows - first_lag].astype(np.float64, copy=True)
    for lag in range(first_lag + 1, first_lag + n):
        acc = pick(acc, x[start - lag : rows - lag])
    out[start:] = acc
    return out


def _compare(a: np.ndarray, op: Callable[[Any, Any], Any], b: Any) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        result: np.ndarray = np.asarray(op(a, b), dtype=bool)
    return result


def _positive(name: str, value: Any, *, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise RuleParameterError(name, f"must be a number, got {value!r}")
    if integer and int(value) != value:
        raise RuleParameterError(name, f"must be a whole number of bars, got {value!r}")
    if not value > 0:
        raise RuleParameterError(name, f"must be positive, got {value!r}")
    return int(value) if integer else float(value)


class Rule(abc.ABC):
    """A screener rule: a pure function of bar fields to hits, trigger prices, conditions.

    Subclasses set :attr:`name`, :attr:`lookback` (earlier bars needed), :attr:`fields`
    (what they read) and :attr:`params` (for the alert's metadata), and implement
    :meth:`evaluate`.
    """

    name: str
    lookback: int
    fields: frozenset[str]
    params: dict[str, Any]

    @abc.abstractmethod
    def evaluate(self, data: Fields) -> RuleOutput:
        """Return the rule's output on ``data`` (arrays of shape (bars, symbols))."""

    def named(self, name: str) -> Rule:
        """Return a copy of this rule called ``name`` (the ``rule`` of its alerts)."""
        if not name or not isinstance(name, str):
            raise RuleParameterError("name", f"must be non-empty text, got {name!r}")
        twin = copy.copy(self)
        twin.name = name
        return twin

    def __and__(self, other: Rule) -> Rule:
        return all_of([self, other])

    def __or__(self, other: Rule) -> Rule:
        return any_of([self, other])

    def __invert__(self) -> Rule:
        return not_(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"<rule {self.name}({args})>"


class _Builtin(Rule):
    """A rule made by a factory of this module: a kernel plus its parameters."""

    def __init__(
        self,
        name: str,
        kernel: Callable[[Fields], RuleOutput],
        lookback: int,
        fields: Sequence[str],
        params: dict[str, Any],
    ) -> None:
        self.name = name
        self._kernel = kernel
        self.lookback = lookback
        self.fields = frozenset(fields)
        self.params = params

    def evaluate(self, data: Fields) -> RuleOutput:
        """Return the rule's output on ``data`` (arrays of shape (bars, symbols))."""
        return self._kernel(data)


def gap_up(pct: float = 2.0, *, name: str = "gap_up") -> Rule:
    """Return a rule firing when a bar opens at least ``pct`` percent above the previous close.

    Conditions: ``gap_pct`` and ``prev_close``; the trigger price is the open.
    """
    return _gap(pct, up=True, name=name)


def gap_down(pct: float = 2.0, *, name: str = "gap_down") -> Rule:
    """Return a rule firing when a bar opens at least ``pct`` percent below the previous close.

    Conditions: ``gap_pct`` (negative) and ``prev_close``; the trigger price is the open.
    """
    return _gap(pct, up=False, name=name)


def _gap(pct: float, *, up: bool, name: str) -> Rule:
    threshold = _positive("pct", pct)

    def kernel(data: Fields) -> RuleOutput:
        prev_close = _lag(data["close"], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap_pct = (data["open"] / prev_close - 1.0) * 100.0
        hits = (
            _compare(gap_pct, np.greater_equal, threshold)
            if up
            else _compare(gap_pct, np.less_equal, -threshold)
        )
        return RuleOutput(hits, data["open"], {"gap_pct": gap_pct, "prev_close": prev_close})

    return _Builtin(name, kernel, 1, ("open", "close"), {"pct": threshold})


def volume_spike(k: float = 3.0, n: int = 20, *, name: str = "volume_spike") -> Rule:
    """Return a rule firing when volume is ``k`` times its average over the prior ``n`` bars.

    The average excludes the bar itself.  Conditions: ``volume``, ``avg_volume`` and
    ``ratio``; the trigger price is the close.
    """
    k = _positive("k", k)
    n = _positive("n", n, integer=True)

    def kernel(data: Fields) -> RuleOutput:
        volume = data["volume"]
        avg = _window_sum(volume, 1, n) / n
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(avg > 0, volume / avg, np.nan)
        hits = _compare(ratio, np.greater_equal, k)
        return RuleOutput(
            hits, data["close"], {"volume": volume, "avg_volume": avg, "ratio": ratio}
        )

    return _Builtin(name, kernel, n, ("close", "volume"), {"k": k, "n": n})


def new_high(n: int = 20, *, name: str = "new_high") -> Rule:
    """Return a rule firing when the close breaks above the highest high of the prior ``n`` bars.

    Conditions: ``prior_high``; the trigger price is the close.
    """
    return _breakout(n, high=True, name=name)


def new_low(n: int = 20, *, name: str = "new_low") -> Rule:
    """Return a rule firing when the close breaks below the lowest low of the prior ``n`` bars.

    Conditions: ``prior_low``; the trigger price is the close.
    """
    return _breakout(n, high=False, name=name)


def _breakout(n: int, *, high: bool, name: str) -> Rule:
    n = _positive("n", n, integer=True)
    source = "high" if high else "low"

    def kernel(data: Fields) -> RuleOutput:
        close = data["close"]
        prior = _window_extreme(data[source], 1, n, high=high)
        hits = _compare(close, np.greater if high else np.less, prior)
        return RuleOutput(hits, close, {f"prior_{source}": prior})

    return _Builtin(name, kernel, n, ("close", source), {"n": n})


def ma_cross(
    fast: int = 10,
    slow: int = 50,
    direction: Literal["up", "down", "both"] = "up",
    *,
    name: str = "ma_cross",
) -> Rule:
    """Return a rule firing on the bar where the ``fast`` close SMA crosses the ``slow`` one.

    ``direction="up"`` fires when the fast average moves above the slow one (it was at
    or below it on the previous bar), ``"down"`` the reverse, ``"both"`` either.
    Conditions: ``fast_ma``, ``slow_ma`` and ``cross`` (+1 up, -1 down); the trigger
    price is the close.
    """
    fast = _positive("fast", fast, integer=True)
    slow = _positive("slow", slow, integer=True)
    if fast >= slow:
        raise RuleParameterError("fast", f"must be shorter than slow ({fast} >= {slow})")
    if direction not in ("up", "down", "both"):
        raise RuleParameterError("direction", f"must be up, down or both, got {direction!r}")

    def kernel(data: Fields) -> RuleOutput:
        close = data["close"]
        fast_ma = _window_sum(close, 0, fast) / fast
        slow_ma = _window_sum(close, 0, slow) / slow
        diff = fast_ma - slow_ma
        prev = _lag(diff, 1)
        up = _compare(diff, np.greater, 0.0) & _compare(prev, np.less_equal, 0.0)
        down = _compare(diff, np.less, 0.0) & _compare(prev, np.greater_equal, 0.0)
        hits = {"up": up, "down": down, "both": up | down}[direction]
        cross = np.where(up, 1.0, np.where(down, -1.0, 0.0))
        return RuleOutput(hits, close, {"fast_ma": fast_ma, "slow_ma": slow_ma, "cross": cross})

    return _Builtin(
        name, kernel, slow, ("close",), {"fast": fast, "slow": slow, "direction": direction}
    )


def regime_change(to: str | None = None, *, name: str = "regime_change") -> Rule:
    """Return a rule firing when a symbol's stored regime state differs from the previous bar's.

    Reads the ``regime`` field: the state number of :mod:`quantdesk.regimes` (cell
    ``vol_index * 3 + trend_index``).  ``to`` (a cell such as ``"high/bearish"``) keeps
    only changes into that cell.  Conditions: ``from_state``, ``to_state``; the trigger
    price is the close.
    """
    from quantdesk.data.schemas import REGIME_CELL_NAMES

    target: int | None = None
    if to is not None:
        if to not in REGIME_CELL_NAMES:
            raise RuleParameterError("to", f"must be one of {list(REGIME_CELL_NAMES)}, got {to!r}")
        target = REGIME_CELL_NAMES.index(to)

    def kernel(data: Fields) -> RuleOutput:
        state = data["regime"]
        prev = _lag(state, 1)
        hits = _compare(state, np.not_equal, prev) & ~np.isnan(state) & ~np.isnan(prev)
        if target is not None:
            hits &= _compare(state, np.equal, float(target))
        return RuleOutput(hits, data["close"], {"from_state": prev, "to_state": state})

    return _Builtin(name, kernel, 1, ("close", "regime"), {"to": to})


def sentiment_shock(
    k: float = 2.0,
    window: int = 60,
    min_periods: int = 20,
    direction: Literal["up", "down", "both"] = "both",
    *,
    name: str = "sentiment_shock",
) -> Rule:
    """Return a rule firing when a day's news sentiment is ``k`` std away from its history.

    Reads the ``sentiment`` field, the daily mean score of
    :func:`quantdesk.signals.sentiment.daily_sentiment` (NaN on days without news), and
    flags it with :func:`quantdesk.signals.sentiment.sentiment_shock` over the prior
    ``window`` bars.  Conditions: ``score`` and ``shock`` (+1 / -1); the trigger price is
    the close.
    """
    k = _positive("k", k)
    window = _positive("window", window, integer=True)
    min_periods = _positive("min_periods", min_periods, integer=True)
    if min_periods > window:
        raise RuleParameterError("min_periods", f"must be at most window ({window})")
    if direction not in ("up", "down", "both"):
        raise RuleParameterError("direction", f"must be up, down or both, got {direction!r}")

    def kernel(data: Fields) -> RuleOutput:
        import pandas as pd

        from quantdesk.signals.sentiment import sentiment_shock as shock_flags

        score = data["sentiment"]
        shock = shock_flags(
            pd.DataFrame(score), k, window=window, min_periods=min_periods
        ).to_numpy(dtype=np.float64)
        want = {"up": (1.0,), "down": (-1.0,), "both": (1.0, -1.0)}[direction]
        hits = np.isin(shock, want)
        return RuleOutput(hits, data["close"], {"score": score, "shock": shock})

    params = {"k": k, "window": window, "min_periods": min_periods, "direction": direction}
    return _Builtin(name, kernel, window, ("close", "sentiment"), params)


class _Combined(Rule):
    def __init__(self, name: str, op: str, children: Sequence[Rule]) -> None:
        if not children:
            raise RuleParameterError(op, "needs at least one rule")
        for child in children:
            if not isinstance(child, Rule):
                raise RuleParameterError(op, f"expected rules, got {child!r}")
        self.name = name
        self._op = op
        self.children = tuple(children)
        self.lookback = max(c.lookback for c in children)
        self.fields = frozenset().union(*(c.fields for c in children)) | {"close"}
        self.params = {op: [c.name for c in children]}

    def evaluate(self, data: Fields) -> RuleOutput:
        """Return the combination of the children's outputs on ``data``."""
        outs = [c.evaluate(data) for c in self.children]
        conditions = {
            f"{child.name}.{key}": value
            for child, out in zip(self.children, outs, strict=True)
            for key, value in out.conditions.items()
        }
        if self._op == "not":
            return RuleOutput(~outs[0].hits, data["close"], {})
        if self._op == "all":
            hits = np.logical_and.reduce([o.hits for o in outs])
            return RuleOutput(hits, outs[0].trigger, conditions)
        hits = np.logical_or.reduce([o.hits for o in outs])
        # The trigger of an "any" is that of the first child that fired.
        trigger = np.select([o.hits for o in outs], [o.trigger for o in outs], np.nan)
        return RuleOutput(hits, trigger, conditions)


def all_of(rules: Sequence[Rule], *, name: str | None = None) -> Rule:
    """Return a rule firing where every one of ``rules`` fires (``a & b``).

    Its conditions are the children's, prefixed with their names (``gap_up.gap_pct``);
    its trigger price is the first rule's.
    """
    return _Combined(name or "&".join(r.name for r in rules), "all", rules)


def any_of(rules: Sequence[Rule], *, name: str | None = None) -> Rule:
    """Return a rule firing where any of ``rules`` fires (``a | b``)."""
    return _Combined(name or "|".join(r.name for r in rules), "any", rules)


def not_(inner: Rule, *, name: str | None = None) -> Rule:
    """Return a rule firing on every bar where ``inner`` does not (``~a``)."""
    return _Combined(name or f"~{inner.name}", "not", [inner])


class _FunctionRule(Rule):
    def __init__(
        self,
        name: str,
        fn: Callable[[Fields], Any],
        lookback: int,
        fields: Sequence[str],
        params: dict[str, Any],
    ) -> None:
        self.name = name
        self._fn = fn
        self.lookback = lookback
        self.fields = frozenset(fields) | {"close"}
        self.params = params

    def evaluate(self, data: Fields) -> RuleOutput:
        """Return the user function's output on ``data``, as a :class:`RuleOutput`."""
        result = self._fn(data)
        if isinstance(result, RuleOutput):
            return result
        conditions: dict[str, np.ndarray] = {}
        if isinstance(result, tuple):
            result, conditions = result
        hits = np.asarray(result, dtype=bool)
        if hits.shape != data["close"].shape:
            raise ValueError(
                f"rule {self.name!r} returned shape {hits.shape}, expected {data['close'].shape}"
            )
        return RuleOutput(hits, data["close"], dict(conditions))


def rule(
    name: str,
    fn: Callable[[Fields], Any],
    *,
    lookback: int,
    fields: Sequence[str] = ("close",),
    params: dict[str, Any] | None = None,
) -> Rule:
    """Return a user-defined rule from a pure function of bar fields.

    Parameters
    ----------
    name
        The rule's name (the ``rule`` of its alerts).
    fn
        Takes a mapping of field -> array (bars, symbols) and returns a bool array of the
        same shape, a ``(hits, conditions)`` pair, or a :class:`RuleOutput`.  It must be
        causal: row ``t`` may use rows up to ``t`` only.
    lookback
        How many earlier bars ``fn`` needs (the streaming scan keeps that many).
    fields
        The fields ``fn`` reads.
    params
        Recorded in each alert's metadata.

    Examples
    --------
    >>> def up_day(d):
    ...     prev = np.vstack([np.full((1, d["close"].shape[1]), np.nan), d["close"][:-1]])
    ...     return d["close"] > prev
    >>> rule("up_day", up_day, lookback=1).evaluate({"close": np.array([[1.0], [2.0], [1.5]])}
    ...     ).hits[:, 0].tolist()
    [False, True, False]
    """
    if not callable(fn):
        raise RuleParameterError("fn", f"must be callable, got {fn!r}")
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 0:
        raise RuleParameterError("lookback", f"must be a whole number >= 0, got {lookback!r}")
    return _FunctionRule(name, fn, lookback, fields, dict(params or {}))


#: The built-in rules by name, each a factory with sensible default thresholds.
BUILTIN_RULES: dict[str, Callable[..., Rule]] = {
    "gap_up": gap_up,
    "gap_down": gap_down,
    "volume_spike": volume_spike,
    "new_high": new_high,
    "new_low": new_low,
    "ma_cross": ma_cross,
    "regime_change": regime_change,
    "sentiment_shock": sentiment_shock,
}


def builtin_parameters(kind: str) -> list[str]:
    """Return the parameter names a built-in rule factory accepts (besides ``name``)."""
    return [p for p in inspect.signature(BUILTIN_RULES[kind]).parameters if p != "name"]
