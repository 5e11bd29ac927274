"""JSON cleaning: numpy and pandas values as the plain Python that ``json`` writes.

One rule for every JSON file and JSON output quantdesk writes (run records, the model
registry, ``--json`` CLI output): numpy scalars become Python scalars, arrays become
lists, timestamps become ISO 8601 text, paths become text.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import PurePath
from typing import Any, Literal

__all__ = ["json_scalar", "jsonable"]


def json_scalar(value: Any) -> Any:
    """Return a JSON-able stand-in for a numpy, pandas, datetime or path value.

    Meant as ``json.dumps(..., default=json_scalar)``: it is called only for values the
    ``json`` module cannot write itself.

    Raises
    ------
    TypeError
        Anything else, named by type (what ``json`` itself would raise).

    Examples
    --------
    >>> import json
    >>> import numpy as np
    >>> import pandas as pd
    >>> json.dumps([np.int64(3), np.arange(2), pd.Timestamp("2024-01-02", tz="UTC")],
    ...            default=json_scalar)
    '[3, [0, 1], "2024-01-02T00:00:00+00:00"]'
    """
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    # pandas.Timestamp is a datetime subclass.
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def jsonable(
    value: Any,
    *,
    non_finite: Literal["null", "keep"] = "null",
    fallback: Callable[[Any], Any] | None = None,
) -> Any:
    """Return ``value`` as plain JSON-able Python: dicts, lists, str, int, float, bool, None.

    Mappings become dicts with text keys, tuples and lists become lists, and other
    values go through :func:`json_scalar`.

    Parameters
    ----------
    value
        Any nesting of mappings, lists and tuples over scalars.
    non_finite
        ``"null"`` turns NaN and infinities into None (strict JSON); ``"keep"`` leaves
        them as floats (``json`` then writes ``NaN``, as pandas and papermill read).
    fallback
        Called for a value :func:`json_scalar` refuses (``str`` records its text);
        None lets the ``TypeError`` through.

    Returns
    -------
    Any
        A structure ``json.dumps`` writes without a ``default``.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"sharpe": np.float64("nan"), "n": np.int64(3), 1: (1.5, "a")})
    {'sharpe': None, 'n': 3, '1': [1.5, 'a']}
    >>> jsonable([float("inf")], non_finite="keep")
    [inf]
    """
    if isinstance(value, dict):
        return {
            str(k): jsonable(v, non_finite=non_finite, fallback=fallback) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [jsonable(v, non_finite=non_finite, fallback=fallback) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if non_finite == "null" and not math.isfinite(value) else float(value)
    try:
        plain = json_scalar(value)
    except TypeError:
        if fallback is None:
            raise
        return fallback(value)
    return jsonable(plain, non_finite=non_finite, fallback=fallback)
