"""The causality check every signal test uses: truncating the future changes no past value."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

Panels = Mapping[str, pd.DataFrame]


def truncate(data: pd.DataFrame | Panels, cut: int) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Return ``data`` (a panel or a mapping of panels) keeping its first ``cut`` rows."""
    if isinstance(data, pd.DataFrame):
        return data.iloc[:cut]
    return {k: v.iloc[:cut] for k, v in data.items()}


def assert_causal(
    fn: Callable[..., pd.DataFrame], data: pd.DataFrame | Panels, cuts: list[int]
) -> None:
    """Assert ``fn(data)`` up to each cut equals ``fn`` of the data truncated there."""
    full = fn(data)
    for cut in cuts:
        short = fn(truncate(data, cut))
        assert short.notna().to_numpy().any(), "nothing to compare before the cut"
        pd.testing.assert_frame_equal(short, full.iloc[:cut], check_exact=True)
