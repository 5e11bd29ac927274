"""The reports index shows the pipeline's status in a ``pipeline`` section, escaped."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from quantdesk.data.sources.ingest import ingest_simulated
from quantdesk.pipeline import pipeline_status, run_pipeline
from quantdesk.reports.publish import write_index

HERE = Path(__file__).resolve().parent
EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture(autouse=True)
def _steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.delenv("QUANTDESK_WEBHOOK_URL", raising=False)


def test_the_index_has_a_pipeline_section_with_each_step_state_and_failures(
    tmp_path: Path,
) -> None:
    market = tmp_path / "store.duckdb"
    ingest_simulated(market, symbols=2, days=300, seed=3, start="2023-05-08", progress=False)
    flag, log = tmp_path / "fail", str(tmp_path / "log")
    flag.touch()
    steps = {
        "update": {"params": {"simulated": True, "drop_folder": str(tmp_path / "drop")}},
        "ok": {"run": "pipeline_test_steps:log_step", "needs": ["update"],
               "params": {"log": log, "name": "ok"}},
        "bad": {"run": "pipeline_test_steps:log_step", "needs": ["update"],
                "params": {"log": log, "name": EVIL, "fail_while": str(flag)}},
        "after": {"run": "pipeline_test_steps:log_step", "needs": ["bad"],
                  "params": {"log": log, "name": "after"}},
    }  # fmt: skip
    catalog = tmp_path / "p.yaml"
    catalog.write_text(json.dumps({"pipeline": {"name": "evening", "steps": steps}}), "utf-8")
    run = run_pipeline(market, session="2024-07-01", definition=catalog)
    assert not run.ok

    reports = Path(os.environ["QUANTDESK_REPORTS"])
    page = (reports / "index.html").read_text(encoding="utf-8")
    assert '<h2 id="pipeline">pipeline</h2>' in page
    assert "last session 2024-07-01" in page
    # The same states as `pipeline status`, one row per step in the definition's order.
    status = pipeline_status(market, definition=catalog)
    rows = re.findall(r'<tr class="(ok|failed)"><td>([^<]*)</td><td>([^<]*)</td>', page)
    expected = [(r["step"], r["status"]) for r in status.steps.to_dict("records")]
    assert [(step, state) for _, step, state in rows] == expected
    assert expected == [("update", "succeeded"), ("ok", "succeeded"), ("bad", "failed"),
                        ("after", "skipped")]  # fmt: skip
    assert "failed sessions (quantdesk pipeline retry): 2024-07-01" in page
    # The error, which holds markup, is escaped: the page has no tag of it.
    assert EVIL not in page and "&lt;img src=x onerror=alert(1)&gt; told to fail" in page
    # Durations are shown; a later index rewrite by a report run keeps the section.
    assert re.search(r"<td>\d+\.\d s</td>", page)
    assert '<h2 id="pipeline">' in write_index(reports).read_text(encoding="utf-8")


def test_an_unreadable_status_file_does_not_break_the_index(tmp_path: Path) -> None:
    (tmp_path / "pipeline.json").write_text("{not json", encoding="utf-8")
    page = write_index(tmp_path).read_text(encoding="utf-8")
    assert "pipeline.json: unreadable" in page and "No runs yet." in page
