"""The report catalog: the project's file loads, bad fields are named, grids expand, cron+DST."""

from __future__ import annotations

import doctest
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from quantdesk.reports import catalog as catalog_module
from quantdesk.reports.catalog import Catalog, CatalogError, Job, Report, default_catalog_path

ROOT = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reports.yaml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
jobs:
  daily:
    description: after the close
    schedule: "15 17 * * 1-5"
    timezone: America/New_York
    timeout: 120
    retries: 2
    reports:
      - notebook: market_overview
        parameters: {symbols: [SPX, IXIC]}
      - notebook: regime_report
        parameters: {start: "2010-01-01"}
        grid: {symbols: [SPX, IXIC]}
  sweep:
    notebook: strategy_tearsheet
    parameters: {universe: samples, target_vol: 0.1}
    grid:
      lookbacks: [[21, 63], [126, 252]]
      target_vol: [0.10, 0.15, 0.20]
    scheduler: tcp://127.0.0.1:8786
"""


def test_project_catalog_loads_and_names_real_notebooks() -> None:
    cat = Catalog.load(ROOT / "research" / "reports.yaml")
    assert {"daily", "demo", "sweep"} <= set(cat.jobs)
    daily = cat.job("daily")
    assert (daily.schedule, daily.timezone) == ("15 17 * * 1-5", "America/New_York")
    assert {"market_overview", "regime_report", "strategy_tearsheet"} <= set(daily.notebooks)
    symbols = [r.parameters["symbols"] for r in daily.runs() if r.notebook == "regime_report"]
    assert symbols == ["SPX", "IXIC"]
    for job in cat:
        for run in job.runs():
            assert (ROOT / "notebooks" / f"{run.notebook}.ipynb").is_file(), run.notebook
    assert len(cat.job("sweep").runs()) > 1
    assert cat.root == ROOT


def test_good_file_parses_every_field(tmp_path: Path) -> None:
    cat = Catalog.load(write(tmp_path, GOOD))
    daily, sweep = cat.job("daily"), cat.job("sweep")
    assert daily.timeout == 120.0 and daily.retries == 2 and daily.description == "after the close"
    assert daily.scheduler is None and sweep.scheduler == "tcp://127.0.0.1:8786"
    assert sweep.schedule is None and sweep.timeout == 600.0 and sweep.retries == 0
    assert [j.name for j in cat.scheduled()] == ["daily"]
    runs = daily.runs()
    assert [(r.notebook, dict(r.parameters)) for r in runs] == [
        ("market_overview", {"symbols": ["SPX", "IXIC"]}),
        ("regime_report", {"start": "2010-01-01", "symbols": "SPX"}),
        ("regime_report", {"start": "2010-01-01", "symbols": "IXIC"}),
    ]
    assert all(r.timeout == 120.0 and r.retries == 2 and r.job == "daily" for r in runs)


def test_grid_is_the_cartesian_product_merged_over_fixed_parameters(tmp_path: Path) -> None:
    runs = Catalog.load(write(tmp_path, GOOD)).job("sweep").runs()
    got = [dict(r.parameters) for r in runs]
    # Worked by hand: 2 lookback sets x 3 targets, in grid order; the grid's target_vol
    # replaces the fixed one, the fixed universe is in every run.
    assert got == [
        {"universe": "samples", "target_vol": tv, "lookbacks": lb}
        for lb in ([21, 63], [126, 252])
        for tv in (0.10, 0.15, 0.20)
    ]
    assert len({repr(sorted(p.items())) for p in got}) == 6


def test_job_without_grid_has_one_run() -> None:
    job = Job("one", (Report("nb", {"a": 1}),))
    assert [dict(r.parameters) for r in job.runs()] == [{"a": 1}]
    assert job.notebook == "nb"


N = "notebook: regime_report\n"


@pytest.mark.parametrize(
    ("job_yaml", "field", "message"),
    [
        (N + 'schedule: "61 17 * * *"\ntimezone: UTC', "schedule", "bad cron"),
        (N + 'schedule: "15 17 * *"\ntimezone: UTC', "schedule", "bad cron"),
        (N + 'schedule: "0 0 15 17 * * *"\ntimezone: UTC', "schedule", "bad cron"),
        (N + "schedule: 5\ntimezone: UTC", "schedule", "cron expression"),
        (N + 'schedule: "15 17 * * 1-5"\ntimezone: America/Gotham', "timezone", "unknown"),
        (N + 'schedule: "15 17 * * 1-5"', "timezone", "needs a timezone"),
        (N + "grid: {symbols: SPX}", "grid.symbols", "must be a list"),
        (N + "grid: {symbols: []}", "grid.symbols", "empty"),
        (N + "grid: [SPX]", "grid", "mapping"),
        (N + "parameters: [1, 2]", "parameters", "mapping"),
        (N + "parameters: {api_key: abc}", "parameters.api_key", "looks like a secret"),
        (N + "parameters: {db_password: x}", "parameters.db_password", "secret"),
        (N + "grid: {AUTH_TOKEN: [a, b]}", "grid.AUTH_TOKEN", "secret"),
        (N + "parameters: {1x: 2}", "parameters.1x", "identifier"),
        (N + "timeout: -5", "timeout", "positive"),
        (N + "timeout: soon", "timeout", "positive"),
        (N + "retries: 1.5", "retries", "whole number"),
        (N + "retries: -1", "retries", "whole number"),
        (N + "scheduler: localhost", "scheduler", "Dask address"),
        (N + "shedule: daily", "shedule", "unknown field"),
        ("parameters: {a: 1}", "notebook", "needs a notebook"),
        ("notebook: ''", "notebook", "must name a notebook"),
        ("reports: []", "reports", "non-empty"),
        ("reports: [{notebook: R, grid: {s: x}}]", "reports[0].grid.s", "must be a list"),
        ("reports: [{notebook: R, params: {}}]", "reports[0].params", "unknown field"),
        ("notebook: regime_reprot", "notebook", "available: "),
        ("notebook: nowhere/missing.ipynb", "notebook", "no notebook file"),
        (N + "grid: {symbl: [SPX]}", "grid.symbl", "declares no parameter"),
        (
            "reports: [{notebook: market_overview, parameters: {start: '2020', lookback: 5}}]",
            "reports[0].parameters.lookback",
            "market_overview.ipynb declares no parameter 'lookback'; it takes: end, max_symbols",
        ),
        ("reports: [{notebook: a}]\nnotebook: b", "notebook", "not both"),
    ],
)
def test_bad_fields_are_named_with_file_job_and_field(
    tmp_path: Path, job_yaml: str, field: str, message: str
) -> None:
    body = textwrap.indent(job_yaml.replace("notebook: R,", "notebook: regime_report,"), "    ")
    good = "jobs:\n  good:\n    notebook: regime_report\n"
    path = write(tmp_path, f"{good}  broken:\n{body}\n")
    with pytest.raises(CatalogError) as info:
        Catalog.load(path)
    err = info.value
    assert (err.path, err.job, err.field) == (path, "broken", field)
    text = str(err)
    assert str(path) in text and "'broken'" in text and f"'{field}'" in text
    assert message in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs: [a, b]", "'jobs' must be a mapping"),
        ("- a\n- b", "top level"),
        ("jobs: {}\nschedules: {}", "unknown top-level"),
        ("jobs: {a: [\n", "not valid YAML"),
        ("jobs:\n  'bad name!': {notebook: regime_report}", "job name"),
        ("jobs:\n  plain: nb", "must be a mapping"),
    ],
)
def test_bad_file_structure_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CatalogError, match=message) as info:
        Catalog.load(path)
    assert str(path) in str(info.value)


def test_notebook_paths_are_relative_to_the_project_root(tmp_path: Path) -> None:
    import nbformat

    project = tmp_path / "project"
    (project / "notebooks" / "team").mkdir(parents=True)
    (project / "research").mkdir()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("window = 5")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, project / "notebooks" / "team" / "mine.ipynb")
    path = project / "research" / "reports.yaml"
    path.write_text(
        "jobs:\n"
        "  by_path: {notebook: notebooks/team/mine.ipynb, grid: {window: [5, 10]}}\n"
        "  by_name: {notebook: team/mine, parameters: {window: 3}}\n"
    )
    cat = Catalog.load(path)
    expected = str((project / "notebooks" / "team" / "mine.ipynb").resolve())
    assert [r.notebook for r in cat.job("by_path").runs()] == [expected, expected]
    assert cat.job("by_name").notebook == expected  # not the runner's: the catalog's project
    assert cat.root == project.resolve()


def test_check_notebooks_can_be_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "jobs:\n  later: {notebook: not_written_yet, parameters: {x: 1}}\n")
    assert Catalog.load(path, check_notebooks=False).job("later").notebook == "not_written_yet"
    with pytest.raises(CatalogError, match="not_written_yet"):
        Catalog.load(path)


def test_missing_file_and_unknown_job_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="QUANTDESK_CATALOG"):
        Catalog.load(tmp_path / "nope.yaml")
    cat = Catalog.load(write(tmp_path, GOOD))
    with pytest.raises(KeyError, match=r"no job 'nightly'.*daily, sweep"):
        cat.job("nightly")


def test_env_var_overrides_the_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUANTDESK_CATALOG", raising=False)
    monkeypatch.chdir(ROOT / "notebooks")  # found by walking up from the cwd
    assert default_catalog_path() == ROOT / "research" / "reports.yaml"
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("QUANTDESK_CATALOG", str(path))
    assert default_catalog_path() == path
    assert set(Catalog.load().jobs) == {"daily", "sweep"}


def test_next_run_is_wall_clock_new_york_across_dst() -> None:
    job = Job("daily", (Report("nb"),), schedule="15 17 * * 1-5", timezone="America/New_York")
    # Spring forward, Sunday 2024-03-10: Friday's 17:15 EST is 22:15 UTC, Monday's
    # 17:15 EDT is 21:15 UTC (the weekend is skipped by the 1-5).
    friday_afternoon = datetime(2024, 3, 8, 20, 0, tzinfo=UTC)
    first = job.next_run(friday_afternoon)
    assert first.tzinfo is not None and first.utcoffset() is not None
    assert first.astimezone(UTC) == datetime(2024, 3, 8, 22, 15, tzinfo=UTC)
    assert (first.hour, first.minute) == (17, 15)
    second = job.next_run(first)
    assert second.astimezone(UTC) == datetime(2024, 3, 11, 21, 15, tzinfo=UTC)
    assert second.astimezone(NY).strftime("%a %H:%M %Z") == "Mon 17:15 EDT"
    # Fall back, Sunday 2024-11-03: Friday 21:15 UTC, Monday 22:15 UTC.
    fri = job.next_run(datetime(2024, 11, 1, 12, 0, tzinfo=UTC))
    mon = job.next_run(fri)
    assert fri.astimezone(UTC) == datetime(2024, 11, 1, 21, 15, tzinfo=UTC)
    assert mon.astimezone(UTC) == datetime(2024, 11, 4, 22, 15, tzinfo=UTC)
    # Strictly after: a due time is not its own next run.
    assert job.next_run(first) != first


def test_next_run_rejects_naive_times_and_unscheduled_jobs() -> None:
    job = Job("j", (Report("nb"),), schedule="0 * * * *", timezone="UTC")
    with pytest.raises(ValueError, match="timezone-aware"):
        job.next_run(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="no schedule"):
        Job("k", (Report("nb"),)).next_run(datetime(2024, 1, 1, tzinfo=UTC))


def test_due_times_lists_every_time_in_the_window() -> None:
    job = Job("d", (Report("nb"),), schedule="15 17 * * 1-5", timezone="America/New_York")
    # Monday 17:15 NY (excluded: the window is open on the left) to Friday 18:00 NY.
    after = datetime(2024, 6, 3, 17, 15, tzinfo=NY)
    times = job.due_times(after, datetime(2024, 6, 7, 18, 0, tzinfo=NY))
    assert [t.strftime("%a %H:%M") for t in times] == [
        "Tue 17:15",
        "Wed 17:15",
        "Thu 17:15",
        "Fri 17:15",
    ]
    assert job.due_times(after, after) == []


def test_docstring_examples_run() -> None:
    failures, _ = doctest.testmod(catalog_module)
    assert failures == 0
