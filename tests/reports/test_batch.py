"""Batch runs of real notebooks through the real runner: a local process pool with two
workers, retries, isolated failures, exceptions inside a worker, and a real Dask
LocalCluster.  The notebooks are tiny and written here with nbformat.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from quantdesk.reports.batch import BatchResult, run_batch
from quantdesk.reports.catalog import Catalog, RunSpec
from quantdesk.reports.publish import list_runs

pytestmark = pytest.mark.slow


def write_notebook(path: Path, parameters: str, body: str) -> Path:
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    title = nbformat.v4.new_markdown_cell(f"# {path.stem}")
    nb = nbformat.v4.new_notebook(cells=[title, params, nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.metadata["kernelspec"]["language"] = "python"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebooks(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    return {
        "ok": write_notebook(folder / "ok.ipynb", "x = 1", "print('x doubled', x * 2)"),
        "fail": write_notebook(
            folder / "fail.ipynb", "x = 1", "raise ValueError(f'bad input x={x}')"
        ),
        # Fails on its first attempt only: the first run leaves a marker file behind.
        "flaky": write_notebook(
            folder / "flaky.ipynb",
            "marker = ''",
            textwrap.dedent(
                """\
                import pathlib
                p = pathlib.Path(marker)
                if not p.exists():
                    p.write_text("attempted")
                    raise RuntimeError("first attempt fails")
                print("second attempt ok")
                """
            ),
        ),
    }


def test_process_pool_isolates_failures_retries_and_summarises(
    notebooks: dict[str, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"
    marker = tmp_path / "flaky.marker"
    runs = [
        RunSpec("grid", str(notebooks["ok"]), {"x": 1}),
        RunSpec("grid", str(notebooks["fail"]), {"x": 3}, retries=1),
        RunSpec("grid", str(notebooks["flaky"]), {"marker": str(marker)}, retries=1),
        # The runner refuses this before any kernel starts: an exception in the worker.
        RunSpec("grid", str(notebooks["ok"]), {"api_token": "abc"}),
        RunSpec("grid", str(notebooks["ok"]), {"x": 5}),
    ]
    result = run_batch(runs, executor="process", max_workers=2, reports_dir=reports)

    assert isinstance(result, BatchResult)
    assert result.executor == "process x2" and result.job == "grid"
    assert [r.status for r in result.runs] == ["ok", "failed", "ok", "failed", "ok"]
    assert [r.attempts for r in result.runs] == [1, 2, 2, 1, 1]
    assert not result.ok and [r.spec for r in result.failed] == [runs[1], runs[3]]
    failed_cell, secret = result.failed
    assert failed_cell.reason == "cell error: ValueError: bad input x=3"
    assert failed_cell.record is not None and failed_cell.record["status"] == "failed"
    # The exception raised inside the worker is a failed run with its traceback's last line.
    assert secret.reason is not None
    assert "SecretParameterError: parameter name(s) 'api_token' look like" in secret.reason
    assert secret.record is None and secret.error is not None
    assert "Traceback" in secret.error
    assert marker.exists()  # the flaky notebook really failed once, then passed

    summary = result.summary()
    lines = summary.splitlines()
    assert lines[0].startswith("batch grid on process x2: 5 runs, 3 ok, 2 failed in ")
    assert len(lines) == 2 + len(runs)
    assert "FAILED  2      " in lines[3] and "ValueError: bad input x=3" in lines[3]
    assert "ok      2" in lines[4]
    assert "SecretParameterError" in lines[5]

    # Every attempt is a published report: 5 runs + 2 retries - 1 refused = 6 folders.
    table = list_runs(reports)
    assert len(table) == 6
    assert sorted(table["status"]) == ["failed", "failed", "failed", "ok", "ok", "ok"]
    assert (reports / "index.html").is_file()
    for run in result.succeeded:
        assert run.record is not None and Path(run.record["run_dir"]).parent.parent == reports
    as_dict = result.to_dict()
    assert as_dict["n_failed"] == 2 and len(as_dict["runs"]) == 5
    assert "batch grid" in capfd.readouterr().err  # the progress bar, on stderr


def test_serial_job_from_the_catalog(notebooks: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "reports.yaml"
    path.write_text(
        f"jobs:\n  pair:\n    notebook: {notebooks['ok']}\n    grid: {{x: [10, 20]}}\n"
        "    timeout: 60\n"
    )
    job = Catalog.load(path).job("pair")
    result = run_batch(job, executor="serial", reports_dir=tmp_path / "out", progress=False)
    assert result.ok and result.executor == "serial" and result.job == "pair"
    assert [dict(r.parameters) for r in result.runs] == [{"x": 10}, {"x": 20}]
    assert all(r.record is not None and r.record["timeout"] == 60 for r in result.runs)
    assert "2 runs, 2 ok, 0 failed" in result.summary()


def test_unknown_executor_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown executor 'threads'"):
        run_batch([RunSpec("j", "ok")], executor="threads", progress=False)


# Without a dashboard the scheduler still serves health checks over HTTP on 8787, and
# warns when another cluster on the machine holds that port.
@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_dask_local_cluster_runs_the_grid(notebooks: dict[str, Path], tmp_path: Path) -> None:
    from distributed import LocalCluster

    path = tmp_path / "reports.yaml"
    path.write_text(
        "jobs:\n  cluster:\n"
        f"    reports:\n      - notebook: {notebooks['ok']}\n        grid: {{x: [1, 2]}}\n"
        f"      - notebook: {notebooks['fail']}\n"
    )
    job = Catalog.load(path).job("cluster")
    reports = tmp_path / "reports"
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        # The address, as `--scheduler tcp://HOST:PORT` gives it: run_batch connects.
        result = run_batch(job, executor=cluster.scheduler_address, reports_dir=reports)
        assert result.executor == f"dask {cluster.scheduler_address}"
        workers = list(cluster.scheduler_info["workers"])
    assert len(workers) == 2
    assert [r.status for r in result.runs] == ["ok", "ok", "failed"]
    assert result.failed[0].reason == "cell error: ValueError: bad input x=1"
    table = list_runs(reports)
    assert sorted(table["notebook"]) == ["fail", "ok", "ok"]
    assert "3 runs, 2 ok, 1 failed" in result.summary()


def test_a_kernel_that_dies_before_starting_is_started_again_once(
    notebooks: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import sys

    # A real kernelspec whose first launch dies at once (as when two kernels race for
    # the same port) and whose later launches start a normal ipykernel.
    marker = tmp_path / "died_once"
    launcher = tmp_path / "flaky_kernel.py"
    launcher.write_text(
        textwrap.dedent(
            f"""\
            import os, pathlib, sys
            marker = pathlib.Path({str(marker)!r})
            if not marker.exists():
                marker.write_text("died")
                sys.exit(1)
            os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *sys.argv[1:]])
            """
        )
    )
    spec_dir = tmp_path / "jupyter" / "kernels" / "flaky"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, str(launcher), "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "flaky", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    runs = [RunSpec("k", str(notebooks["ok"]), {"x": 7})]
    result = run_batch(
        runs, executor="serial", kernel_name="flaky", reports_dir=tmp_path / "r", progress=False
    )
    assert marker.exists()
    assert result.ok and result.runs[0].attempts == 1  # the dead start was not an attempt


def test_a_dead_worker_process_fails_only_its_run(
    notebooks: dict[str, Path], tmp_path: Path
) -> None:
    # The notebook's kernel kills its parent: the pool's worker process.
    killer = write_notebook(
        tmp_path / "notebooks" / "killer.ipynb",
        "x = 1",
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    )
    runs = [RunSpec("k", str(killer), {}), RunSpec("k", str(notebooks["ok"]), {"x": 2})]
    result = run_batch(runs, max_workers=1, reports_dir=tmp_path / "r", progress=False)
    assert [r.status for r in result.runs] == ["failed", "ok"]
    assert result.runs[0].reason is not None and "BrokenProcessPool" in result.runs[0].reason
