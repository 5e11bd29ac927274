"""`quantdesk report` and `quantdesk schedule` on real notebooks through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from typer.testing import CliRunner

from quantdesk.cli import app

runner = CliRunner()


def notebook(path: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "n = 1\nlabel = 'x'\nitems = []", metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(body),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def test_report_run_ok_and_failed_exit_codes(tmp_path: Path) -> None:
    good = notebook(tmp_path / "good.ipynb", "print('total', n * 2, label, len(items))")
    out = tmp_path / "reports"
    result = runner.invoke(
        app,
        ["report", "run", str(good), "-p", "n", "21", "-p", "label", "hello",
         "-p", "items", "[SPX, IXIC]", "--reports-dir", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "ok"
    assert record["parameters"] == {"n": 21, "label": "hello", "items": ["SPX", "IXIC"]}
    executed = nbformat.read(Path(record["run_dir"]) / "good.ipynb", as_version=4)
    assert "total 42 hello 2" in executed.cells[-1].outputs[0]["text"]
    assert (out / "index.html").exists()

    bad = notebook(tmp_path / "bad.ipynb", "raise RuntimeError('no data today')")
    result = runner.invoke(app, ["report", "run", str(bad), "--reports-dir", str(out)])
    assert result.exit_code == 1
    assert "no data today" in result.output


def test_report_run_refuses_secret_names_and_bad_pairs(tmp_path: Path) -> None:
    good = notebook(tmp_path / "good.ipynb", "print(n)")
    result = runner.invoke(app, ["report", "run", str(good), "-p", "api_token", "abc"])
    assert result.exit_code == 1 and "look like secrets" in result.output
    result = runner.invoke(app, ["report", "run", str(good), "-p", "n"])
    assert result.exit_code == 1 and "needs a name and a value" in result.output
    result = runner.invoke(app, ["report", "run", str(good), "stray"])
    assert result.exit_code == 1 and "unexpected argument" in result.output
    assert not (tmp_path / "reports").exists()


def test_report_list_and_crontab_read_the_project_catalog() -> None:
    result = runner.invoke(app, ["report", "list", "--json"])
    assert result.exit_code == 0, result.output
    jobs = {j["job"]: j for j in json.loads(result.stdout)}
    assert jobs["daily"]["schedule"] == "15 17 * * 1-5"
    assert jobs["daily"]["timezone"] == "America/New_York"
    assert jobs["daily"]["next_run"].endswith(("-05:00", "-04:00"))
    result = runner.invoke(app, ["schedule", "crontab"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "CRON_TZ=America/New_York" in lines
    assert any(line.startswith("15 17 * * 1-5 ") and "report batch daily" in line for line in lines)
    result = runner.invoke(app, ["report", "batch", "no_such_job"])
    assert result.exit_code == 1 and "no job" in result.output


def test_report_list_shows_a_jobs_own_runs_not_one_off_runs(tmp_path: Path) -> None:
    """Bug 10: a manual `report run` of a job's notebook was shown as the job's last run."""
    from quantdesk.reports.batch import run_batch
    from quantdesk.reports.catalog import Catalog

    good = notebook(tmp_path / "good.ipynb", "print(n)")
    catalog = tmp_path / "reports.yaml"
    catalog.write_text(f"jobs:\n  nightly:\n    notebook: {good}\n    parameters: {{n: 2}}\n")
    out = tmp_path / "reports"
    listing = ["report", "list", "--catalog", str(catalog), "--reports-dir", str(out), "--json"]

    manual = runner.invoke(app, ["report", "run", str(good), "--reports-dir", str(out), "--json"])
    assert manual.exit_code == 0, manual.output
    assert json.loads(manual.stdout)["job"] is None
    result = runner.invoke(app, listing)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["last_runs"] == {}

    batch = run_batch(
        Catalog.load(catalog).job("nightly"), executor="serial", reports_dir=out, progress=False
    )
    assert batch.ok
    result = runner.invoke(app, listing)
    last = json.loads(result.stdout)[0]["last_runs"]
    assert last["good"]["run_id"] == batch.runs[0].run_id
    assert batch.runs[0].record is not None and batch.runs[0].record["job"] == "nightly"
    # A second one-off run, newer than the batch, still does not count.
    again = runner.invoke(app, ["report", "run", str(good), "--reports-dir", str(out)])
    assert again.exit_code == 0, again.output
    result = runner.invoke(app, listing)
    assert json.loads(result.stdout)[0]["last_runs"]["good"]["run_id"] == batch.runs[0].run_id
