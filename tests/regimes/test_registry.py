"""The model registry on a local directory and on fsspec's in-memory filesystem."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.sources.simulator import simulate
from quantdesk.regimes import registry as registry_module
from quantdesk.regimes.model import RegimeModel
from quantdesk.regimes.registry import ModelRegistry, data_fingerprint

FAST = {"random_state": 0, "n_init": 2}


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return simulate(n_symbols=1, n_days=900, seed=3).bars


@pytest.fixture(scope="module")
def model(bars: pd.DataFrame) -> RegimeModel:
    return RegimeModel(**FAST).fit(bars.iloc[:700])


@pytest.fixture(params=["local", "memory"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> ModelRegistry:
    if request.param == "local":
        return ModelRegistry(str(tmp_path / "models"))
    # the memory filesystem is shared by the whole process: one root per test
    return ModelRegistry(f"memory://registry-{uuid.uuid4().hex}")


def files(registry: ModelRegistry) -> list[str]:
    if not registry.fs.exists(registry.root):
        return []
    return sorted(p[len(registry.root) :] for p in registry.fs.find(registry.root))


def test_package_exports_load_lazily() -> None:
    code = (
        "import sys, json, quantdesk.regimes as r; "
        "heavy = ['hmmlearn', 'sklearn', 'fsspec', 'holoviews', 'distributed', 'duckdb']; "
        "print(json.dumps([m for m in heavy if m in sys.modules])); "
        "[getattr(r, name) for name in r.__all__]"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
    import quantdesk

    assert quantdesk.regimes.ModelRegistry is ModelRegistry
    assert "regimes" in dir(quantdesk)


def test_doctests() -> None:
    assert doctest.testmod(registry_module, raise_on_error=False).failed == 0


def test_round_trip_reproduces_filter_output_exactly(
    registry: ModelRegistry, model: RegimeModel, bars: pd.DataFrame
) -> None:
    record = registry.save(model, "regimes", "SIM000", data_fingerprint=data_fingerprint(bars))
    assert record.version == "v1" and record.model_version == "regimes/v1"
    assert files(registry) == ["/regimes/v1/SIM000/arrays.npz", "/regimes/v1/SIM000/metadata.json"]
    loaded = registry.load("regimes", "SIM000")
    assert type(loaded) is RegimeModel
    pd.testing.assert_frame_equal(loaded.filter(bars), model.filter(bars), check_exact=True)
    pd.testing.assert_frame_equal(
        loaded.transition_matrix(), model.transition_matrix(), check_exact=True
    )
    for attr in ("train_start_", "train_end_", "n_obs_", "kind_", "degenerate_"):
        assert getattr(loaded, attr) == getattr(model, attr), attr


def test_metadata_records_provenance(
    registry: ModelRegistry, model: RegimeModel, bars: pd.DataFrame
) -> None:
    fingerprint = data_fingerprint(bars.iloc[:700])
    record = registry.save(
        model, "regimes", "SIM000", data_fingerprint=fingerprint, extra={"note": "unit"}
    )
    meta = json.loads(registry.fs.cat_file(f"{registry.root}/regimes/v1/SIM000/metadata.json"))
    assert meta == record.metadata
    assert meta["format"] == "quantdesk-regime-model/1"
    assert (meta["name"], meta["version"], meta["symbol"]) == ("regimes", "v1", "SIM000")
    assert pd.Timestamp(meta["created_at"]).tzname() == "UTC"
    assert meta["data_fingerprint"] == fingerprint
    assert meta["train_start"] == model.train_start_.isoformat()
    assert meta["train_end"] == model.train_end_.isoformat()
    assert meta["n_obs"] == model.n_obs_
    assert meta["log_likelihood"] == pytest.approx(model.log_likelihood_)
    assert meta["converged"] == bool(model.converged_)
    assert meta["kind"] == model.kind_ and meta["degenerate"] == model.degenerate_
    assert meta["state_map"] is not None
    assert {"quantdesk", "hmmlearn", "numpy", "pandas"} <= set(meta["libraries"])
    assert all(meta["libraries"][k] for k in ("quantdesk", "hmmlearn", "numpy", "pandas"))
    assert meta["extra"] == {"note": "unit"}


def test_listing_versions_and_latest(registry: ModelRegistry, model: RegimeModel) -> None:
    assert registry.list().empty and registry.versions("regimes") == []
    registry.save(model, "regimes", "SIM000")
    registry.save(model, "regimes", "OTHER", version="v1")
    second = registry.save(model, "regimes", "SIM000")
    assert second.version == "v2"
    for _ in range(8):  # v3..v10: numeric order, not string order
        registry.save(model, "regimes", "SIM000")
    registry.save(model, "trend-only", "SIM000", version="2024-06-30")
    assert registry.versions("regimes") == [f"v{i}" for i in range(1, 11)]
    assert registry.next_version("regimes") == "v11"
    listing = registry.list()
    assert list(listing.columns[:4]) == ["name", "version", "symbol", "created_at"]
    assert {"train_start", "train_end", "log_likelihood", "kind", "degenerate"} <= set(
        listing.columns
    )
    assert len(listing) == 12
    assert listing[["name", "version", "symbol"]].values.tolist()[:3] == [
        ["regimes", "v1", "OTHER"],
        ["regimes", "v1", "SIM000"],
        ["regimes", "v2", "SIM000"],
    ]
    assert str(listing["created_at"].dt.tz) == "UTC"
    assert registry.list("trend-only")["version"].tolist() == ["2024-06-30"]
    assert registry.record("regimes", "SIM000").version == "v10"
    assert registry.record("regimes", "OTHER").version == "v1"
    assert registry.record("regimes", "SIM000", "v2").version == "v2"
    with pytest.raises(KeyError, match="no saved model"):
        registry.load("regimes", "NOPE")
    with pytest.raises(KeyError, match="regimes/v99/SIM000"):
        registry.load("regimes", "SIM000", "v99")


def test_saved_versions_are_immutable(registry: ModelRegistry, model: RegimeModel) -> None:
    registry.save(model, "regimes", "SIM000", version="v1")
    with pytest.raises(FileExistsError, match="immutable"):
        registry.save(model, "regimes", "SIM000", version="v1")


def test_unserialisable_extra_writes_nothing(registry: ModelRegistry, model: RegimeModel) -> None:
    with pytest.raises(TypeError, match="not JSON serialisable"):
        registry.save(model, "regimes", "SIM000", extra={"oops": object()})
    assert files(registry) == []
    assert registry.list().empty
    assert registry.save(model, "regimes", "SIM000").version == "v1"


def test_a_failure_mid_save_leaves_nothing_listed(
    registry: ModelRegistry, model: RegimeModel, monkeypatch: pytest.MonkeyPatch, bars: pd.DataFrame
) -> None:
    registry.save(model, "regimes", "SIM000")

    def broken_commit(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    # the arrays are written, then the commit (moving the metadata into place) fails
    monkeypatch.setattr(registry.fs, "mv", broken_commit)
    with pytest.raises(OSError, match="disk full"):
        registry.save(model, "regimes", "SIM000")
    monkeypatch.undo()
    assert registry.versions("regimes") == ["v1"]
    assert registry.list()["version"].tolist() == ["v1"]
    assert registry.record("regimes", "SIM000").version == "v1"
    assert not any("/v2/" in f for f in files(registry))  # cleaned up
    assert registry.save(model, "regimes", "SIM000").version == "v2"


def test_an_uncommitted_artifact_is_ignored_and_replaced(
    registry: ModelRegistry, model: RegimeModel, bars: pd.DataFrame
) -> None:
    # a process killed between writing the arrays and committing the metadata
    folder = f"{registry.root}/regimes/v1/SIM000"
    registry.fs.makedirs(folder, exist_ok=True)
    registry.fs.pipe_file(f"{folder}/arrays.npz", b"half a file")
    registry.fs.pipe_file(f"{folder}/.metadata.json.dead.tmp", b"{")
    assert registry.list().empty and registry.versions("regimes") == []
    assert registry.save(model, "regimes", "SIM000").version == "v1"
    pd.testing.assert_frame_equal(
        registry.load("regimes", "SIM000").filter(bars), model.filter(bars)
    )


def test_corrupted_arrays_are_detected(registry: ModelRegistry, model: RegimeModel) -> None:
    registry.save(model, "regimes", "SIM000")
    path = f"{registry.root}/regimes/v1/SIM000/arrays.npz"
    blob = bytearray(registry.fs.cat_file(path))
    blob[-30] ^= 0xFF
    registry.fs.pipe_file(path, bytes(blob))
    with pytest.raises(ValueError, match="checksum"):
        registry.load("regimes", "SIM000")


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".hidden", "", "sp ace"])
def test_unsafe_names_are_refused(registry: ModelRegistry, model: RegimeModel, bad: str) -> None:
    with pytest.raises(ValueError, match="safe path component"):
        registry.save(model, bad, "SIM000")
    with pytest.raises(ValueError, match="safe path component"):
        registry.save(model, "regimes", bad)
    assert files(registry) == []


def test_default_location_is_the_settings_models_url(
    _isolated_home: Path, model: RegimeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry()
    registry.save(model, "regimes", "^GSPC")
    assert (_isolated_home / "models" / "regimes" / "v1" / "^GSPC" / "metadata.json").exists()
    monkeypatch.setenv("QUANTDESK_MODELS", f"memory://env-{uuid.uuid4().hex}")
    elsewhere = ModelRegistry()
    assert elsewhere.url.startswith("memory://") and elsewhere.list().empty


def test_fingerprint_is_canonical(bars: pd.DataFrame) -> None:
    base = data_fingerprint(bars)
    assert base.startswith("sha256:") and len(base) == 7 + 64
    # row order, index form, column order, timezone shown and dtype width do not matter
    assert data_fingerprint(bars.sample(frac=1, random_state=2)) == base
    assert data_fingerprint(bars[bars.columns[::-1]]) == base
    ny = bars.assign(ts=bars["ts"].dt.tz_convert("America/New_York"))
    assert data_fingerprint(ny) == base
    indexed = bars.drop(columns="symbol").set_index("ts")
    assert data_fingerprint(indexed) == data_fingerprint(bars.drop(columns="symbol"))
    assert data_fingerprint(indexed) != base  # the symbol is part of the data
    zero = bars.assign(volume=0.0)
    assert data_fingerprint(zero.assign(volume=-0.0)) == data_fingerprint(zero)
    # any one value changes it
    changed = bars.copy()
    changed.loc[changed.index[400], "close"] = np.nextafter(changed["close"].iloc[400], np.inf)
    assert data_fingerprint(changed) != base
    assert data_fingerprint(bars.iloc[:-1]) != base
