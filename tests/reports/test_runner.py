"""The report runner: real papermill runs of small real notebooks written by the tests.

Each kernel start costs about a second; every test that starts one says so in its name
or docstring, and the whole module stays well under a minute.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from quantdesk.reports import (
    RunRecord,
    SecretParameterError,
    check_parameters,
    list_runs,
    resolve_notebook,
    run_report,
)
from quantdesk.reports.fingerprint import store_fingerprint
from quantdesk.reports.redaction import looks_like_secret
from quantdesk.reports.runner import _make_run_dir

MARKER = "SOURCE_MARKER_7f3a"


def write_notebook(path: Path, parameters: str, *cells: str) -> Path:
    """Return ``path`` after writing a notebook: a tagged parameters cell, then code cells."""
    nb = new_notebook(
        cells=[
            new_markdown_cell("# A test report"),
            new_code_cell(parameters, metadata={"tags": ["parameters"]}),
            *[new_code_cell(source) for source in cells],
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def output_text(nb: nbformat.NotebookNode) -> str:
    """Return every output of every cell as one JSON string (sources excluded)."""
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def error_outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    return tmp_path / "reports"


# -- a successful run ----------------------------------------------------------------


def test_ok_run_publishes_notebook_html_and_record(
    tmp_path: Path, reports: Path, store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One kernel: parameters injected, inputs hidden, env and cwd reach the kernel."""
    from ..conftest import make_bars

    store.write_bars(make_bars(["AAA"], 20), "1d", source="test")
    monkeypatch.setenv("QUANTDESK_STORE", str(store.path))
    workdir = tmp_path / "work"
    workdir.mkdir()
    nb_path = write_notebook(
        tmp_path / "demo.ipynb",
        'symbol = "XXX"\nlookback = 5',
        f"# {MARKER}\nimport os\nprint(f'report for {{symbol}} over {{lookback}}')",
        "print('cwd', os.getcwd())\nprint('flag', os.environ.get('QD_TEST_FLAG'))",
        "from quantdesk.data import MarketStore\nprint('symbols', MarketStore().symbols())",
    )

    record = run_report(
        nb_path,
        {"symbol": "SPX", "lookback": 21},
        reports_dir=reports,
        env={"QD_TEST_FLAG": "on"},
        cwd=workdir,
        timeout=60,
    )

    assert record.ok and record.status == "ok" and record.reason is None and record.error is None
    assert record.run_dir == str((reports / "demo" / record.run_id).resolve())
    assert {p.name for p in Path(record.run_dir).iterdir()} == {
        "demo.ipynb",
        "demo.html",
        "run.json",
    }
    assert "QD_TEST_FLAG" not in os.environ  # the kernel's env never touches ours

    executed = nbformat.read(record.ipynb_path, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'symbol = "SPX"' in injected[0].source
    stdout = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "report for SPX over 21" in stdout
    assert f"cwd {workdir}" in stdout and "flag on" in stdout
    assert "symbols ['AAA']" in stdout  # the kernel reads the store the record fingerprints

    page = record.html_path.read_text()
    assert "report for SPX over 21" in page  # the output is there ...
    assert MARKER not in page  # ... the source code is not
    assert "quantdesk-run-banner" not in page

    saved = json.loads(record.record_path.read_text())
    assert saved == record.to_dict()
    assert RunRecord.load(record.run_dir) == record
    assert saved["parameters"] == {"symbol": "SPX", "lookback": 21}
    assert saved["timeout"] == 60.0 and saved["kernel_name"] == "python3"
    assert {"python", "quantdesk", "pandas", "numpy", "papermill", "duckdb"} <= set(
        saved["versions"]
    )
    assert saved["data_fingerprint"] == store_fingerprint(store.path)[0]
    assert saved["data_summary"]["bars"] == 20
    assert record.started_at < record.finished_at
    # The duration runs from the start to the published HTML, so it covers the execution
    # (a relation between the record's own times, whatever the machine's speed).
    executing = datetime.fromisoformat(record.finished_at) - datetime.fromisoformat(
        record.started_at
    )
    assert record.duration_s >= round(executing.total_seconds(), 3) - 0.001
    assert record.run_id.startswith(record.started_at[:10].replace("-", ""))
    assert "ok in" in record.summary() and str(record.html_path) in record.summary()

    index = (reports / "index.html").read_text()
    assert f"demo/{record.run_id}/demo.html" in index
    runs = list_runs(reports)
    assert list(runs["run_id"]) == [record.run_id]


# -- failures are reports too ----------------------------------------------------------


def test_failing_cell_is_a_failed_report_with_a_banner(reports: Path, tmp_path: Path) -> None:
    """One kernel: the error is recorded, the notebook keeps it, the HTML shows a banner."""
    nb_path = write_notebook(
        tmp_path / "broken.ipynb",
        "n = 1",
        "print('before the error')",
        "raise ValueError(f'bad input <{n}>')",
        "print('never printed')",
    )

    record = run_report(nb_path, {"n": 7}, reports_dir=reports)

    assert not record.ok and record.status == "failed"
    assert record.reason == "cell error: ValueError: bad input <7>"
    assert record.error is not None
    assert record.error["ename"] == "ValueError" and record.error["evalue"] == "bad input <7>"
    executed = nbformat.read(record.ipynb_path, as_version=4)
    errors = error_outputs(executed)
    assert [e["ename"] for e in errors] == ["ValueError"]
    assert "never printed" not in output_text(executed)
    page = record.html_path.read_text()
    # The banner comes right after <body>, escaped, in the agreed red.
    banner_at = page.index('id="quantdesk-run-banner"')
    assert banner_at < page.index("before the error")
    assert "background:#b00020" in page[banner_at - 200 : banner_at + 300]
    assert "Run failed: cell error: ValueError: bad input &lt;7&gt;" in page
    assert "papermill-error-cell" in page  # papermill's own marker is kept
    assert json.loads(record.record_path.read_text())["status"] == "failed"


# An upper bound for a hang (a runner that waits forever on a dead kernel), not a speed test.
@pytest.mark.timeout(300)
def test_dead_kernel_is_recorded_as_failed(reports: Path, tmp_path: Path) -> None:
    """One kernel, which kills itself in the middle of the notebook."""
    nb_path = write_notebook(
        tmp_path / "dies.ipynb",
        "code = 3",
        "print('alive')",
        "import os\nos._exit(code)",
        "print('never printed')",
    )
    record = run_report(nb_path, reports_dir=reports)

    assert not record.ok
    assert record.reason is not None and "kernel died" in record.reason
    assert record.error is not None and record.error["ename"] == "DeadKernelError"
    executed = nbformat.read(record.ipynb_path, as_version=4)
    # The cell that was running carries the reason, and what ran before it is kept.
    dying = executed.cells[record.error["cell_index"]]
    assert "os._exit" in dying.source
    assert dying.outputs[-1]["ename"] == "DeadKernelError"
    assert "alive" in output_text(executed)
    page = record.html_path.read_text()
    assert "Run failed: kernel died" in page and "alive" in page


# The cell waits on an event nobody sets, so only the cell timeout can end the run, however
# fast or slow the machine; the mark bounds a runner that would wait forever.
@pytest.mark.timeout(300)
def test_cell_over_the_timeout_is_recorded_as_failed(reports: Path, tmp_path: Path) -> None:
    """One kernel, stopped by a 3 s cell timeout in a cell that would never end."""
    nb_path = write_notebook(
        tmp_path / "slow.ipynb",
        "never = None",
        "print('started')",
        "import threading\nthreading.Event().wait(never)",
        "print('never printed')",
    )
    record = run_report(nb_path, reports_dir=reports, timeout=3)

    assert not record.ok
    assert record.reason == "cell exceeded timeout of 3 s"
    assert record.timeout == 3.0
    executed = nbformat.read(record.ipynb_path, as_version=4)
    assert "Event().wait" in executed.cells[record.error["cell_index"]].source
    assert "started" in output_text(executed)
    assert "never printed" not in output_text(executed)
    assert "Run failed: cell exceeded timeout of 3 s" in record.html_path.read_text()


def test_a_kernel_that_cannot_start_is_a_failed_report(reports: Path, tmp_path: Path) -> None:
    """No kernel starts: the input notebook is published with the banner."""
    nb_path = write_notebook(tmp_path / "nokernel.ipynb", "x = 1", "print(x)")
    record = run_report(nb_path, reports_dir=reports, kernel_name="no-such-kernel-qd")
    assert not record.ok
    assert record.reason is not None and record.reason.startswith("execution error:")
    assert "no-such-kernel-qd" in record.reason
    assert record.ipynb_path.is_file()
    assert "Run failed: execution error" in record.html_path.read_text()


# -- request errors raise before anything runs ---------------------------------------


@pytest.mark.parametrize(
    "name",
    ["api_key", "API_TOKEN", "secret", "db_password", "passwd", "aws_credentials", "myApiKey"],
)
def test_secret_looking_parameter_names_are_refused(
    name: str, reports: Path, tmp_path: Path
) -> None:
    nb_path = write_notebook(tmp_path / "nb.ipynb", "x = 1", "print(x)")
    with pytest.raises(SecretParameterError, match="environment variable") as info:
        run_report(nb_path, {"symbol": "SPX", name: "hunter2-value"}, reports_dir=reports)
    assert isinstance(info.value, ValueError)
    assert repr(name) in str(info.value)
    assert "hunter2-value" not in str(info.value)
    assert not reports.exists()  # nothing written, nothing run


@pytest.mark.parametrize("name", ["symbol", "lookback", "start", "target_vol", "n_states"])
def test_ordinary_parameter_names_pass(name: str) -> None:
    assert not looks_like_secret(name)
    check_parameters({name: 1})


def test_undeclared_parameters_and_bad_arguments_are_refused(reports: Path, tmp_path: Path) -> None:
    nb_path = write_notebook(tmp_path / "nb.ipynb", 'symbol = "SPX"', "print(symbol)")
    with pytest.raises(ValueError, match=r"does not declare parameter\(s\) \['symbl'\]"):
        run_report(nb_path, {"symbl": "IXIC"}, reports_dir=reports)
    with pytest.raises(ValueError, match="run_id"):
        run_report(nb_path, run_id="../escape", reports_dir=reports)
    with pytest.raises(ValueError, match="timeout"):
        run_report(nb_path, timeout=0, reports_dir=reports)
    with pytest.raises(ValueError, match="identifiers"):
        check_parameters({"not an identifier": 1})
    assert not reports.exists()


def test_run_ids_never_collide(tmp_path: Path) -> None:
    first, id1 = _make_run_dir(tmp_path, "20260101T000000Z-abcdef", explicit=False)
    second, id2 = _make_run_dir(tmp_path, "20260101T000000Z-abcdef", explicit=False)
    assert (id1, id2) == ("20260101T000000Z-abcdef", "20260101T000000Z-abcdef-2")
    assert first.is_dir() and second.is_dir()
    with pytest.raises(FileExistsError, match="choose another run_id"):
        _make_run_dir(tmp_path, "20260101T000000Z-abcdef", explicit=True)


# -- secrets never land in a report --------------------------------------------------


def test_a_secret_from_the_environment_never_lands_in_any_output(
    reports: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One kernel: the notebook uses (and carelessly prints) secrets it reads from the env."""
    # Characters that JSON, repr and HTML each spell differently.
    token = 'tok-9f8e7d6c5b4a<&>"it\'s"\\x'
    other = "s3cr3t-from-env-argument"
    monkeypatch.setenv("QD_TEST_API_TOKEN", token)
    nb_path = write_notebook(
        tmp_path / "uses_secret.ipynb",
        'endpoint = "https://example.invalid/"',
        "import os\ntoken = os.environ['QD_TEST_API_TOKEN']\nprint('token length', len(token))",
        "print(token)\nprint(os.environ['QD_OTHER_SECRET'])",
        "from IPython.display import HTML\nHTML(f'<b>{token}</b>')",
        "token",  # the repr, as an execute_result
        "raise RuntimeError(f'request failed with {token}')",
    )
    with caplog.at_level(logging.INFO):
        record = run_report(
            nb_path,
            {"endpoint": f"https://example.invalid/?auth={other}"},
            reports_dir=reports,
            env={"QD_OTHER_SECRET": other},
        )

    assert not record.ok  # the deliberate error at the end
    assert record.redacted == ["QD_OTHER_SECRET", "QD_TEST_API_TOKEN"]
    outputs = [p for p in reports.rglob("*") if p.is_file()]
    assert {p.name for p in outputs} >= {
        "uses_secret.ipynb",
        "uses_secret.html",
        "run.json",
        "index.html",
    }
    import html as html_lib

    for path in outputs:
        text = path.read_bytes().decode("utf-8", errors="replace")
        for secret in (token, other, "tok-9f8e7d6c5b4a", html_lib.escape(token)):
            assert secret not in text, f"{secret!r} leaked into {path}"
    executed = json.dumps(nbformat.read(record.ipynb_path, as_version=4))
    assert f"token length {len(token)}" in executed  # the notebook did use the value
    assert "***" in executed
    assert record.parameters == {"endpoint": "https://example.invalid/?auth=***"}
    # The warning names the variable, never the value; no log line carries a value.
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "QD_TEST_API_TOKEN" in messages and "QD_OTHER_SECRET" in messages
    assert token not in messages and other not in messages


# -- locating notebooks --------------------------------------------------------------


def test_resolve_notebook_by_name_under_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "research").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    nb = write_notebook(project / "notebooks" / "regime_report.ipynb", "symbol = 'SPX'")
    sub = write_notebook(project / "notebooks" / "dashboards" / "live.ipynb", "x = 1")
    monkeypatch.chdir(project / "research")

    assert resolve_notebook("regime_report") == nb.resolve()
    assert resolve_notebook("regime_report.ipynb") == nb.resolve()
    assert resolve_notebook("dashboards/live") == sub.resolve()
    assert resolve_notebook(nb) == nb.resolve()
    with pytest.raises(FileNotFoundError, match=r"available: .*regime_report"):
        resolve_notebook("regime_reprot")


def test_project_notebooks_resolve_from_the_repository() -> None:
    root = Path(__file__).resolve().parents[2]
    for path in (root / "notebooks").glob("*.ipynb"):
        assert resolve_notebook(path.stem) == path.resolve()


# -- data fingerprint ----------------------------------------------------------------


def test_store_fingerprint_follows_the_data(tmp_path: Path, store) -> None:
    from ..conftest import make_bars

    assert store_fingerprint(tmp_path / "missing.duckdb")[0] == "no store"
    empty, _ = store_fingerprint(store.path)
    store.write_bars(make_bars(["AAA", "BBB"], 10), "1d", source="test")
    first, summary = store_fingerprint(store.path)
    again, _ = store_fingerprint(store.path)
    store.write_bars(make_bars(["CCC"], 10, seed=3), "1d", source="test")
    second, _ = store_fingerprint(store.path)
    assert len(first) == 16 and first == again
    assert len({empty, first, second}) == 3
    assert summary["bars"] == 20 and summary["ingests"] == 1
    damaged = tmp_path / "damaged.duckdb"
    damaged.write_bytes(b"not a duckdb file")
    assert store_fingerprint(damaged)[0] == "unavailable"


def test_importing_the_runner_loads_no_execution_machinery() -> None:
    import subprocess
    import sys

    heavy = ["papermill", "nbconvert", "nbclient", "pandas", "duckdb"]
    code = (
        "import sys, json, quantdesk.reports, quantdesk.reports.runner; "
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
