"""The monitor's pipeline pane on a real store after a real pipeline run.

The expected rows come from the record itself (``PipelineRecord.attempts``), read
independently of :func:`~quantdesk.pipeline.engine.pipeline_status`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quantdesk.dashboards.panes import PipelinePane
from quantdesk.data.sources.ingest import ingest_simulated
from quantdesk.data.store.market import MarketStore
from quantdesk.pipeline import PipelineRecord, run_pipeline
from quantdesk.pipeline.definition import PipelineDefinition

TESTS = Path(__file__).resolve().parents[1]
STEPS = {
    "update": {"params": {"simulated": True}},
    "boom": {
        "run": "pipeline_test_steps:fail_with",
        "needs": ["update"],
        "params": {"message": "the vendor <b>refused</b>\nTraceback line two"},
    },
    "after": {"run": "pipeline_test_steps:log_step", "needs": ["boom"],
              "params": {"log": "unused", "name": "after"}},
}  # fmt: skip


@pytest.fixture(autouse=True)
def _user_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS / "pipeline"))
    monkeypatch.delenv("QUANTDESK_WEBHOOK_URL", raising=False)


def test_pipeline_pane_says_no_run_on_a_missing_store_and_on_one_without_a_record(
    tmp_path: Path,
) -> None:
    definition = PipelineDefinition.from_mapping({"steps": STEPS})
    missing = tmp_path / "nothing" / "store.duckdb"
    pane = PipelinePane(missing, definition=definition)
    assert pane.refresh(force=True)
    assert "no pipeline run recorded yet" in pane.pane.object
    assert pane.error == "" and not missing.exists()  # reading created nothing
    bars_only = tmp_path / "bars.duckdb"
    ingest_simulated(bars_only, symbols=2, days=20, seed=1, start="2024-06-03", progress=False)
    pane = PipelinePane(bars_only, definition=definition)
    pane.refresh(force=True)
    assert "no pipeline run recorded yet" in pane.pane.object and pane.error == ""


def test_pipeline_pane_shows_each_steps_state_duration_and_a_failures_first_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.duckdb"
    ingest_simulated(path, symbols=3, days=300, seed=3, start="2023-05-08", progress=False)
    definition = PipelineDefinition.from_mapping({"steps": STEPS})
    store = MarketStore(path)
    run = run_pipeline(store, session="2024-07-01", definition=definition, root=tmp_path)
    assert not run.ok

    pane = PipelinePane(path, definition=definition)
    pane.refresh(force=True)
    assert pane.session == "2024-07-01" and pane.error == ""
    record = PipelineRecord(path).attempts("evening", "2024-07-01")
    latest = record.sort_values("attempt").groupby("step").tail(1).set_index("step")
    seconds = (latest["ended_at"] - latest["started_at"]).dt.total_seconds()
    expected = pd.DataFrame(
        {
            "step": ["update", "boom", "after"],
            "state": ["succeeded", "failed", "skipped"],
            "attempt": [1, 1, 1],
            "duration": [f"{seconds[s]:.1f} s" for s in ("update", "boom", "after")],
        }
    )
    pd.testing.assert_frame_equal(pane.steps.drop(columns="error"), expected, check_dtype=False)
    errors = dict(zip(pane.steps["step"], pane.steps["error"], strict=True))
    assert errors["update"] == ""
    # The first line of the error only, as recorded (its second line is left out).
    assert errors["boom"] == "RuntimeError: the vendor <b>refused</b>"
    assert str(latest.loc["boom", "error"]).startswith(errors["boom"] + "\n")
    assert errors["after"] == "needs boom, which did not succeed"

    html = pane.pane.object
    assert "Pipeline evening" in html and "last session 2024-07-01" in html
    assert "the vendor &lt;b&gt;refused&lt;/b&gt;" in html and "<b>refused" not in html
    assert "Traceback line two" not in html
    assert "failed sessions (quantdesk pipeline retry): 2024-07-01" in html
