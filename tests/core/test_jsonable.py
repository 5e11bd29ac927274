"""JSON cleaning: numpy, pandas, datetime and path values as plain JSON."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.core.jsonable import json_scalar, jsonable


def test_nested_values_become_plain_python() -> None:
    value = {
        "n": np.int64(3),
        "x": np.float32(0.5),
        "flag": np.bool_(True),
        "nan": np.float64("nan"),
        "inf": float("-inf"),
        "ts": pd.Timestamp("2024-03-01 12:00", tz="UTC"),
        "day": dt.date(2024, 3, 1),
        "arr": np.array([[1, 2], [3, 4]]),
        "path": Path("/tmp/x"),
        7: ("a", None),
    }
    out = jsonable(value)
    assert out == {
        "n": 3,
        "x": 0.5,
        "flag": True,
        "nan": None,
        "inf": None,
        "ts": "2024-03-01T12:00:00+00:00",
        "day": "2024-03-01",
        "arr": [[1, 2], [3, 4]],
        "path": "/tmp/x",
        "7": ["a", None],
    }
    assert type(out["n"]) is int and type(out["flag"]) is bool
    # Strict JSON: no NaN token.
    json.dumps(out, allow_nan=False)


def test_keep_non_finite_leaves_floats() -> None:
    out = jsonable([np.float64("nan"), float("inf")], non_finite="keep")
    assert math.isnan(out[0]) and out[1] == math.inf


def test_unknown_objects_raise_or_take_the_fallback() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing"

    with pytest.raises(TypeError, match="Thing"):
        jsonable({"a": Thing()})
    assert jsonable({"a": [Thing()]}, fallback=str) == {"a": ["thing"]}


def test_json_scalar_is_a_json_dumps_default() -> None:
    text = json.dumps(
        {"v": np.float64(1.25), "a": np.arange(3), "t": dt.datetime(2024, 1, 2, 3, 4)},
        default=json_scalar,
    )
    assert json.loads(text) == {"v": 1.25, "a": [0, 1, 2], "t": "2024-01-02T03:04:00"}
    with pytest.raises(TypeError, match="set"):
        json_scalar({1})
