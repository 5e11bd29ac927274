"""Every notebook in notebooks/ runs top to bottom through papermill without an error."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
# Small parameters per notebook; a list runs the notebook once per parameter set.
SMALL_PARAMETERS: dict[str, list[dict]] = {
    "quickstart": [{"symbols": ["SPX"], "start": "2008-01-01", "end": "2008-12-31"}],
    "market_overview": [{"symbols": ["SPX", "IXIC"], "start": "2015-01-01", "max_symbols": 5}],
    "regime_report": [{"symbol": "SPX", "start": "2004-01-01", "n_init": 1}],
    "strategy_tearsheet": [
        {
            "universe": "sp500",
            "start": "2005-01-01",
            "sweep_lookbacks": [63, 252],
            "sweep_target_vols": [0.1, 0.2],
            "walk_forward_train": 504,
            "walk_forward_test": 252,
        },
        {
            "universe": "simulated",
            "n_symbols": 5,
            "sweep_lookbacks": [21, 126],
            "sweep_target_vols": [0.1],
            "walk_forward_train": 504,
            "walk_forward_test": 252,
        },
    ],
}
CASES = [
    pytest.param(path, params, id=f"{path.stem}-{i}")
    for path in NOTEBOOKS
    for i, params in enumerate(SMALL_PARAMETERS.get(path.stem, [{}]))
]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize(("path", "parameters"), CASES)
def test_notebook_executes_and_publishes(path: Path, parameters: dict, tmp_path: Path) -> None:
    import nbformat

    from quantdesk.reports import run_report

    source = nbformat.read(path, as_version=4)
    tagged = [c for c in source.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    record = run_report(path, parameters, reports_dir=tmp_path / "reports", cwd=tmp_path)
    assert record.ok, record.summary()
    executed = nbformat.read(record.ipynb_path, as_version=4)
    errors = [
        o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
    code_cells = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells)
    # The published HTML has every section of the story and no error output.
    html = record.html_path.read_text()
    headings = [
        line.lstrip("#").strip()
        for c in source.cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("#")
    ]
    assert headings
    for heading in headings:
        assert heading.replace("&", "&amp;") in html, f"{path.name}: section {heading!r} missing"
    assert "Traceback" not in html
    assert "run failed" not in html.lower()
    index = (tmp_path / "reports" / "index.html").read_text()
    assert record.run_id in index
