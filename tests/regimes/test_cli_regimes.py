"""`quantdesk regimes`: fit the sample and a simulated universe, store, show, list models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data import MarketStore
from quantdesk.regimes.registry import ModelRegistry

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    """Return the exit code and everything printed (stdout and stderr)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def run_json(*args: str) -> tuple[int, object]:
    """Return the exit code and the one JSON document on stdout (progress goes to stderr)."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(
    "command", [[], ["fit"], ["show"], ["models"]], ids=["regimes", "fit", "show", "models"]
)
def test_help(command: list[str]) -> None:
    code, out = run("regimes", *command, "--help")
    assert code == 0, out
    assert "Usage:" in out


def test_fit_the_sample_then_show(_isolated_home: Path) -> None:
    code, out = run("ingest", "sample", "--name", "sp500")
    assert code == 0, out
    code, out = run("regimes", "fit", "--symbols", "SPX", "--workers", "1")
    assert code == 0, out
    assert "regimes/v1/SPX" in out and "as regimes/v1" in out
    store = MarketStore(read_only=True)
    stored = store.regimes("SPX")
    assert (stored["model_version"] == "regimes/v1").all()
    assert len(stored) > 4900  # every day after the features' warm-up
    assert stored["ts"].iloc[-1] == store.bars("SPX")["ts"].iloc[-1]
    # the saved model reproduces the stored regimes
    model = ModelRegistry().load("regimes", "SPX")
    again = model.filter(store.bars("SPX"))
    assert again["state"].tolist() == stored["state"].tolist()
    record = ModelRegistry().record("regimes", "SPX")
    assert record.metadata["data_fingerprint"].startswith("sha256:")
    assert record.metadata["extra"]["command"] == "quantdesk regimes fit"

    code, out = run("regimes", "show", "SPX", "--last", "3")
    assert code == 0, out
    assert out.startswith("SPX 2018-12-31:") and "model regimes/v1" in out
    assert "probabilities:" in out and "last 3 bars:" in out
    assert "per-regime statistics" in out and "mean_stay" in out
    code, doc = run_json("regimes", "show", "SPX", "--last", "5")
    assert doc["current"]["ts"].startswith("2018-12-31")
    assert sum(doc["current"]["probabilities"].values()) == pytest.approx(1.0)
    assert len(doc["history"]) == 5 and len(doc["stats"]) == 9
    assert sum(row["count"] for row in doc["stats"]) > 4900

    code, models = run_json("regimes", "models")
    assert [(m["name"], m["version"], m["symbol"]) for m in models] == [("regimes", "v1", "SPX")]


def test_walk_forward_a_simulated_universe(_isolated_home: Path) -> None:
    code, out = run("ingest", "simulate", "--symbols", "2", "--days", "700", "--seed", "5")
    assert code == 0, out
    args = ["regimes", "fit", "--walk-forward", "--window", "500", "--refit", "100"]
    code, out = run(*args, "--workers", "1")
    assert code == 0, out
    assert "SIM000 walk-forward: 2 refits" in out and "SIM001 walk-forward" in out
    store = MarketStore(read_only=True)
    run1 = store.regimes(model_version="regimes-wf/v1/*")
    assert len(run1) == 2 * 200
    assert set(run1["model_version"].str.rsplit("/", n=1).str[0]) == {"regimes-wf/v1"}
    # the last model of each walk-forward is saved, with the run's settings
    record = ModelRegistry().record("regimes-wf", "SIM001")
    assert record.version == "v1"
    assert record.metadata["extra"]["walk_forward"]["refits"] == 2
    # a second run is a new version; the newest regimes win by default
    code, doc = run_json(*args, "--workers", "1")
    assert doc["version"] == "v2" and set(doc["symbols"]) == {"SIM000", "SIM001"}
    assert doc["errors"] == {}
    latest = store.regimes("SIM000")
    assert latest["model_version"].str.startswith("regimes-wf/v2/").all()
    code, doc = run_json("regimes", "show", "SIM000", "--version", "regimes-wf/v1/*")
    assert doc["current"]["model_version"].startswith("regimes-wf/v1/wf-")


def test_errors_are_clear(_isolated_home: Path) -> None:
    code, out = run("ingest", "simulate", "--symbols", "1", "--days", "300", "--seed", "1")
    assert code == 0, out
    code, out = run("regimes", "fit", "--symbols", "NOPE")
    assert code == 1 and "unknown symbol(s) ['NOPE']" in out and "SIM000" in out
    code, out = run("regimes", "show", "SIM000")
    assert code == 1 and "no regimes stored for 'SIM000'" in out
    # too little history for the window: the symbol fails, the command says so and exits 1
    code, out = run("regimes", "fit", "--walk-forward", "--window", "400", "--workers", "1")
    assert code == 1
    assert "SIM000" in out and "more than window=400 bars" in out
    assert MarketStore(read_only=True).regimes().empty
    code, out = run("regimes", "models")
    assert code == 0 and "no saved models" in out
    code, out = run("regimes", "models", "--models", f"memory://cli-{_isolated_home.name}")
    assert code == 0 and "no saved models" in out


def test_a_registry_url_without_its_filesystem_fails_clearly() -> None:
    try:
        import s3fs  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - s3fs would try the network
        pytest.skip("s3fs is installed")
    code, out = run("regimes", "models", "--models", "s3://bucket/models")
    assert code == 1 and "s3fs" in out


def test_fit_from_a_snapshot_that_is_not_there_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-snapshot-here"
    code, out = run("regimes", "fit", "--snapshot", str(missing), "--store", str(tmp_path / "s"))
    assert code == 1
    assert out.startswith("error: ") and str(missing) in out and "Traceback" not in out
