"""Every notebook in notebooks/ runs top to bottom through papermill without an error."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
# Small parameters per notebook; a list runs the notebook once per parameter set.
SMALL_PARAMETERS: dict[str, list[dict]] = {
    "quickstart": [{"symbols": ["SPX"], "start": "2008-01-01", "end": "2008-12-31"}],
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
def test_notebook_executes(path: Path, parameters: dict, tmp_path: Path) -> None:
    import nbformat
    import papermill

    source = nbformat.read(path, as_version=4)
    tagged = [c for c in source.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(tmp_path),
    )
    executed = nbformat.read(out, as_version=4)
    errors = [
        o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
    code_cells = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells)
