"""FinBERT on ONNX Runtime: export, fusion, int8, the cache on disk and the torch fallback.

Everything runs on the tiny BERT classifier the tests build (no download), through the
public path; the reference is the same model on torch fp32.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.core.parallel import cpu_count
from quantdesk.sentiment import FinBertSentiment

from .tiny_bert import LABELS, PERMUTED, build_tiny_bert, relabelled_copy

pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

PROBS = ["positive", "negative", "neutral"]
LABELLED = Path(__file__).with_name("labelled_headlines.csv")
EDGES = [
    "",
    "Acme",
    "No improvement in sight for Acme says chief executive, analysts downgrade Acme on "
    "falling demand and regulators open investigation into Acme accounting",
]


def _headlines() -> list[str]:
    """Return the repository's labelled headlines (real sentences) and a few edge cases."""
    return pd.read_csv(LABELLED, comment="#")["headline"].tolist() + EDGES


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One ONNX cache for the module: each build is made once and shared by the tests."""
    path = tmp_path_factory.mktemp("onnx_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QUANTDESK_ONNX_CACHE", str(path))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.delenv("QUANTDESK_FINBERT_PATH", raising=False)
        yield path


@pytest.fixture(autouse=True)
def _shared_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTDESK_ONNX_CACHE", str(cache_dir))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-finbert")


@pytest.fixture(scope="module")
def torch_fp32(tiny_dir: Path, cache_dir: Path) -> FinBertSentiment:
    return FinBertSentiment(model=tiny_dir, device="cpu", backend="torch", quantize="none")


@pytest.fixture(scope="module")
def onnx_int8(tiny_dir: Path, cache_dir: Path) -> FinBertSentiment:
    return FinBertSentiment(model=tiny_dir, device="cpu")


@pytest.fixture(scope="module")
def onnx_fp32(tiny_dir: Path, cache_dir: Path) -> FinBertSentiment:
    return FinBertSentiment(model=tiny_dir, device="cpu", backend="onnx", quantize="none")


def _max_dp(a: pd.DataFrame, b: pd.DataFrame) -> float:
    return float((a[PROBS] - b[PROBS]).abs().to_numpy().max())


def test_the_cpu_default_is_onnx_int8_on_every_core(
    onnx_int8: FinBertSentiment, torch_fp32: FinBertSentiment
) -> None:
    assert onnx_int8.backend == "onnx" and onnx_int8.model is None
    assert onnx_int8.key.quantization == "onnx-int8"
    # the same weights: the cache key tells the two apart by backend and precision only
    assert onnx_int8.key.model_revision == torch_fp32.key.model_revision
    assert torch_fp32.key.quantization == "none"
    assert onnx_int8.onnx is not None
    options = onnx_int8.onnx.session.get_session_options()
    assert options.intra_op_num_threads == cpu_count()


def test_onnx_int8_is_within_two_hundredths_of_torch_fp32_on_real_headlines(
    onnx_int8: FinBertSentiment, torch_fp32: FinBertSentiment
) -> None:
    texts = _headlines()
    ours, reference = onnx_int8.score(texts), torch_fp32.score(texts)
    assert _max_dp(ours, reference) <= 0.02
    np.testing.assert_allclose(ours[PROBS].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ours["score"], ours["positive"] - ours["negative"])
    # int8 really ran: the probabilities moved, a little
    assert _max_dp(ours, reference) > 1e-6


def test_onnx_fp32_is_the_torch_model(
    onnx_fp32: FinBertSentiment, torch_fp32: FinBertSentiment, tiny_dir: Path
) -> None:
    texts = _headlines()
    assert onnx_fp32.key.quantization == "onnx-fp32"
    assert _max_dp(onnx_fp32.score(texts), torch_fp32.score(texts)) <= 1e-5
    # batches of other widths and sizes (the export's axes are dynamic) change nothing
    sevens = FinBertSentiment(model=tiny_dir, backend="onnx", quantize="none", batch_size=7)
    assert _max_dp(sevens.score(texts), torch_fp32.score(texts)) <= 1e-5


def test_onnx_keeps_the_input_order(onnx_fp32: FinBertSentiment) -> None:
    texts = _headlines()[:40]
    together = onnx_fp32.score(texts)
    backwards = onnx_fp32.score(texts[::-1]).iloc[::-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(together, backwards, atol=1e-5, rtol=0)
    one_by_one = pd.concat([onnx_fp32.score([t]) for t in texts[:8]], ignore_index=True)
    pd.testing.assert_frame_equal(together.iloc[:8], one_by_one, atol=1e-5, rtol=0)


def test_onnx_columns_follow_id2label(
    tmp_path: Path, tiny_dir: Path, onnx_fp32: FinBertSentiment
) -> None:
    copy = relabelled_copy(tiny_dir, tmp_path / "permuted")
    other = FinBertSentiment(model=copy, backend="onnx", quantize="none")
    # another config is another fingerprint: its own export, not the first model's
    assert other.onnx is not None and onnx_fp32.onnx is not None
    assert other.onnx.entry != onnx_fp32.onnx.entry
    a, b = onnx_fp32.score(EDGES), other.score(EDGES)
    for index, label in LABELS.items():
        np.testing.assert_allclose(b[PERMUTED[index].lower()], a[label], atol=1e-6)


def test_the_built_graph_is_fused_and_int8(
    onnx_int8: FinBertSentiment, onnx_fp32: FinBertSentiment
) -> None:
    import onnx

    def ops(model: FinBertSentiment) -> set[str]:
        assert model.onnx is not None
        graph = onnx.load(str(model.onnx.entry / "model.onnx")).graph
        return {node.op_type for node in graph.node}

    int8, fp32 = ops(onnx_int8), ops(onnx_fp32)
    # ONNX Runtime's BERT fusions: one op per attention block and for the embeddings
    assert {"EmbedLayerNormalization", "SkipLayerNormalization"} <= fp32
    assert "Attention" in fp32 and "Softmax" not in fp32
    assert int8 & {"QAttention", "DynamicQuantizeMatMul", "MatMulInteger"}
    assert not fp32 & {"QAttention", "DynamicQuantizeMatMul", "MatMulInteger"}
    assert onnx_int8.onnx is not None
    manifest = onnx_int8.onnx.manifest
    assert manifest["fused"]["Attention"] == 2  # the tiny BERT's two layers
    assert manifest["check_max_abs_dp"] <= 0.02


def _events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.endswith("onnx_runtime")]


def test_a_second_load_reads_the_cache_and_exports_nothing(
    onnx_int8: FinBertSentiment, tiny_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing is kept in memory between loads: a second load finds the export on disk,
    # as another process would.
    assert onnx_int8.onnx is not None
    entry = onnx_int8.onnx.entry
    stamps = {f.name: f.stat().st_mtime_ns for f in entry.iterdir()}
    with caplog.at_level(logging.INFO, logger="quantdesk.sentiment.onnx_runtime"):
        again = FinBertSentiment(model=tiny_dir, device="cpu")
    assert again.onnx is not None and again.onnx.entry == entry
    events = _events(caplog)
    assert any("from the cache" in e for e in events)
    assert not any(e.startswith("exported") for e in events)
    assert {f.name: f.stat().st_mtime_ns for f in entry.iterdir()} == stamps
    texts = _headlines()
    pd.testing.assert_frame_equal(again.score(texts), onnx_int8.score(texts))


def _flip_bytes(model: Path) -> None:
    data = bytearray(model.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    model.write_bytes(bytes(data))  # the same size, other weights: only the digest tells


@pytest.mark.parametrize(
    ("damage", "said"),
    [(_flip_bytes, "damaged"), (os.remove, "incomplete")],
    ids=["flipped-bytes", "model-missing"],
)
def test_a_damaged_cache_entry_is_detected_and_rebuilt(
    onnx_fp32: FinBertSentiment,
    tiny_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], object],
    said: str,
) -> None:
    assert onnx_fp32.onnx is not None
    cache = tmp_path / "cache"
    entry = cache / onnx_fp32.onnx.entry.name
    shutil.copytree(onnx_fp32.onnx.entry, entry)
    damage(entry / "model.onnx")
    monkeypatch.setenv("QUANTDESK_ONNX_CACHE", str(cache))
    with caplog.at_level(logging.INFO, logger="quantdesk.sentiment.onnx_runtime"):
        rebuilt = FinBertSentiment(model=tiny_dir, backend="onnx", quantize="none")
    events = _events(caplog)
    assert any(said in e and "rebuilding" in e for e in events)
    assert any(e.startswith("exported") for e in events)
    assert rebuilt.onnx is not None and rebuilt.onnx.entry == entry
    manifest = json.loads((entry / "manifest.json").read_text())
    assert hashlib.sha256((entry / "model.onnx").read_bytes()).hexdigest() == manifest["sha256"]
    texts = _headlines()[:30]
    assert _max_dp(rebuilt.score(texts), onnx_fp32.score(texts)) <= 1e-6
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [entry.name]


def test_a_refused_build_caches_nothing_and_auto_falls_back_to_torch(
    tiny_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from quantdesk.sentiment import onnx_runtime
    from quantdesk.sentiment.onnx_runtime import OnnxExportError

    cache = tmp_path / "cache"
    monkeypatch.setenv("QUANTDESK_ONNX_CACHE", str(cache))
    # A check nothing passes: the build fails at its last step, model.onnx already written.
    monkeypatch.setitem(onnx_runtime.TOLERANCE, "int8", 0.0)
    with pytest.raises(OnnxExportError, match=r"differs from torch fp32 by 0\.0\d+"):
        FinBertSentiment(model=tiny_dir, backend="onnx")
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []
    with caplog.at_level(logging.WARNING, logger="quantdesk.sentiment.finbert"):
        model = FinBertSentiment(model=tiny_dir)
    assert (model.backend, model.key.quantization) == ("torch", "int8")
    reasons = [r.getMessage() for r in caplog.records if r.name == "quantdesk.sentiment.finbert"]
    assert any("not ONNX Runtime" in r and "differs from torch fp32" in r for r in reasons)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


# The import system's path finder, wrapped so that onnxruntime is not found: to Python
# (importlib.util.find_spec, import) it is as if it were not installed.
HIDE_ONNXRUNTIME = """
import importlib.machinery, logging, sys

class NoOnnxRuntime:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] == "onnxruntime":
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)

    @staticmethod
    def invalidate_caches():
        importlib.machinery.PathFinder.invalidate_caches()

    @staticmethod
    def find_distributions(*args, **kwargs):
        found = importlib.machinery.PathFinder.find_distributions(*args, **kwargs)
        return (d for d in found if (d.name or "").lower() != "onnxruntime")

sys.meta_path[:] = [
    NoOnnxRuntime if f is importlib.machinery.PathFinder else f for f in sys.meta_path
]
logging.basicConfig(level=logging.WARNING, format="LOG %(name)s %(message)s")
from quantdesk.sentiment import FinBertSentiment

model = FinBertSentiment(sys.argv[1], device="cpu")
print("MODEL", model.backend, model.key.quantization)
print("SCORES", model.score(["Acme profits improve"])[["positive", "negative", "neutral"]]
      .to_numpy().tolist())
try:
    FinBertSentiment(sys.argv[1], device="cpu", backend="onnx")
except ImportError as exc:
    print("REFUSED", exc)
"""


def test_without_onnxruntime_auto_uses_torch_and_says_why(tiny_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "QUANTDESK_ONNX_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-c", HIDE_ONNXRUNTIME, str(tiny_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "MODEL torch int8" in proc.stdout
    reason = [line for line in proc.stderr.splitlines() if line.startswith("LOG")]
    assert any("not ONNX Runtime" in line and "onnxruntime" in line for line in reason)
    assert "REFUSED backend='onnx' needs onnxruntime" in proc.stdout
    torch_int8 = FinBertSentiment(model=tiny_dir, backend="torch", quantize="int8")
    expected = torch_int8.score(["Acme profits improve"])[PROBS].to_numpy()
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("SCORES ")]
    np.testing.assert_allclose(ast.literal_eval(line.removeprefix("SCORES ")), expected, atol=1e-6)
    assert not (tmp_path / "cache").exists()


def test_onnx_on_a_gpu_and_unknown_backends_are_refused(tiny_dir: Path) -> None:
    with pytest.raises(ValueError, match="backend='onnx' runs on the CPU"):
        FinBertSentiment(model=tiny_dir, device="cuda", backend="onnx")
    with pytest.raises(ValueError, match="backend must be"):
        FinBertSentiment(model=tiny_dir, backend="tensorrt")
