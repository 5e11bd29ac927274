"""Publishing: static HTML with inputs hidden, the runs index and list_runs."""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import (
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
)

from quantdesk.reports import list_runs, render_html, run_report, write_index
from quantdesk.reports.publish import RUN_COLUMNS, atomic_write_text, banner_html

MARKER = "CODE_MARKER_51d2"


def executed_notebook(path: Path) -> Path:
    """Return ``path`` after writing a notebook that looks executed (no kernel needed)."""
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Regime report\nSome *story* text."),
            new_code_cell(
                f"# {MARKER}\nprint('hello')",
                execution_count=1,
                outputs=[new_output("stream", name="stdout", text="hello from the output\n")],
            ),
            new_code_cell(
                f"display_table()  # {MARKER}",
                execution_count=2,
                outputs=[
                    new_output(
                        "display_data",
                        data={"text/html": "<table><tr><td>rich-output</td></tr></table>"},
                    ),
                    new_output("display_data", data={}),  # what holoviews emits at times
                ],
            ),
        ]
    )
    nbformat.write(nb, path)
    return path


def test_render_html_hides_inputs_and_keeps_outputs(tmp_path: Path) -> None:
    out = render_html(executed_notebook(tmp_path / "nb.ipynb"), tmp_path / "out" / "nb.html")
    page = out.read_text()
    assert out == tmp_path / "out" / "nb.html"
    assert "hello from the output" in page and "rich-output" in page
    assert "Regime report" in page  # markdown stays: it is the story
    assert MARKER not in page
    assert "In&nbsp;[1]" not in page and "In [1]" not in page  # no prompts
    assert "quantdesk-run-banner" not in page
    assert "<title>nb</title>" in page


def test_render_html_banner_is_first_and_escaped(tmp_path: Path) -> None:
    nb = executed_notebook(tmp_path / "nb.ipynb")
    page = render_html(
        nb, tmp_path / "nb.html", banner="Run failed: <script>alert(1)</script>", title="t & u"
    ).read_text()
    body = re.search(r"<body[^>]*>\s*", page)
    assert body is not None
    assert page[body.end() :].startswith('<div id="quantdesk-run-banner"')
    assert "Run failed: &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page
    assert "<title>t &amp; u</title>" in page
    assert "#b00020" in banner_html("x")


@pytest.mark.slow
def test_hvplot_output_stays_interactive_in_the_html(tmp_path: Path) -> None:
    """One kernel running hvplot (a few seconds): the bokeh document and its loader survive."""
    nb = new_notebook(
        cells=[
            new_code_cell("rows = 5", metadata={"tags": ["parameters"]}),
            new_code_cell(
                "import pandas as pd\nimport hvplot.pandas  # noqa: F401\n"
                "pd.DataFrame({'close': range(rows)}).hvplot.line(title='closing-prices')"
            ),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / "plot.ipynb")

    record = run_report(tmp_path / "plot.ipynb", {"rows": 8}, reports_dir=tmp_path / "reports")

    assert record.ok, record.reason
    page = record.html_path.read_text()
    assert "Bokeh.embed.embed_items_notebook" in page  # the plot's render call
    assert "closing-prices" in page  # the embedded document (the figure title)
    assert re.search(r'<script type="(text|application)/javascript"', page)
    assert "hvplot.line" not in page  # and still no input


def fake_run(
    root: Path,
    notebook: str,
    run_id: str,
    started: str,
    status: str = "ok",
    parameters: dict | None = None,
    reason: str | None = None,
) -> Path:
    """Return the folder of a hand-written run (what the runner leaves behind)."""
    run_dir = root / notebook / run_id
    run_dir.mkdir(parents=True)
    (run_dir / f"{notebook}.html").write_text("<html></html>")
    (run_dir / f"{notebook}.ipynb").write_text("{}")
    record = {
        "notebook": notebook,
        "run_id": run_id,
        "parameters": parameters or {},
        "status": status,
        "reason": reason,
        "started_at": started,
        "finished_at": started,
        "duration_s": 2.5,
        "outputs": {"ipynb": f"{notebook}.ipynb", "html": f"{notebook}.html", "record": "run.json"},
        "data_fingerprint": "no store",
    }
    (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    fake_run(root, "regime_report", "20260102T171500Z-aaaaaa", "2026-01-02T17:15:00+00:00")
    fake_run(
        root,
        "market_overview",
        "20260103T171500Z-bbbbbb",
        "2026-01-03T17:15:00.250000+00:00",
        status="failed",
        reason="cell error: KeyError: '<b>'",
        parameters={"symbols": ["SPX"], "note": "<script>alert('x')</script> & co"},
    )
    fake_run(root, "regime_report", "20260101T171500Z-cccccc", "2026-01-01T17:15:00+00:00")
    # A run still in progress (no run.json yet) and a damaged record are skipped.
    (root / "regime_report" / "20260104T000000Z-running").mkdir()
    damaged = root / "regime_report" / "20260105T000000Z-damaged"
    damaged.mkdir()
    (damaged / "run.json").write_text("{not json")
    return root


def test_index_lists_runs_newest_first_with_escaped_parameters(
    runs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        index = write_index(runs)
    assert index == runs / "index.html"
    page = index.read_text()
    order = [m.group(1) for m in re.finditer(r"<code>(\d{8}T\d{6}Z-\w+)</code>", page)]
    assert order == [
        "20260103T171500Z-bbbbbb",
        "20260102T171500Z-aaaaaa",
        "20260101T171500Z-cccccc",
    ]
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page
    assert "cell error: KeyError: &#x27;&lt;b&gt;&#x27;" in page
    assert 'href="market_overview/20260103T171500Z-bbbbbb/market_overview.html"' in page
    assert 'href="regime_report/20260101T171500Z-cccccc/regime_report.ipynb"' in page
    assert page.count('class="status" style="background:#b00020"') == 1
    assert page.count('class="status" style="background:#1b7f3b"') == 2
    assert "3 runs, 1 failed" in page
    assert "damaged" in caplog.text
    assert not list(runs.glob(".index.html.*"))  # no temp file left behind


def test_list_runs_matches_the_index(runs: Path) -> None:
    frame = list_runs(runs)
    assert list(frame.columns) == list(RUN_COLUMNS)
    assert list(frame["run_id"]) == [
        "20260103T171500Z-bbbbbb",
        "20260102T171500Z-aaaaaa",
        "20260101T171500Z-cccccc",
    ]
    assert list(frame["status"]) == ["failed", "ok", "ok"]
    assert frame["started_at"].is_monotonic_decreasing
    assert str(frame["started_at"].dt.tz) == "UTC"
    assert frame["parameters"].iloc[0]["symbols"] == ["SPX"]
    assert Path(frame["html"].iloc[0]).is_file()
    assert frame["duration_s"].tolist() == [2.5, 2.5, 2.5]


def test_list_runs_of_an_empty_or_missing_folder(tmp_path: Path) -> None:
    for root in (tmp_path / "missing", tmp_path):
        frame = list_runs(root)
        assert frame.empty and list(frame.columns) == list(RUN_COLUMNS)
        assert isinstance(frame["started_at"].dtype, pd.DatetimeTZDtype)
    assert "No runs yet." in write_index(tmp_path / "fresh").read_text()


def test_concurrent_index_writes_stay_whole(runs: Path) -> None:
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(5):
                write_index(runs)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    page = (runs / "index.html").read_text()
    assert page.rstrip().endswith("</html>") and page.count("<tr class=") == 3


def test_atomic_write_replaces_whole_files_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "page.html"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_report_pages_escape_through_core_html_only() -> None:
    """Issue 22: publish.py and runner.py built HTML by hand with html.escape.

    Every page of reports/ is made of quantdesk.core.html elements; only the redaction
    module imports the stdlib html module (to find a secret's escaped spellings).
    """
    import ast

    import quantdesk.reports

    folder = Path(quantdesk.reports.__file__).parent
    escaping = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if "html" in names or (isinstance(node, ast.ImportFrom) and node.module == "html"):
                escaping.add(path.name)
    assert escaping == {"redaction.py"}
    page = banner_html("<b>a</b> & 'b'")
    from quantdesk.core.html import escape

    assert escape("<b>a</b> & 'b'") in page and "<b>" not in page
