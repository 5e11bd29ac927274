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
