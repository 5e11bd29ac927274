"""FinBertSentiment on a tiny BERT the test builds and saves itself, through the public path."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.sentiment import FinBertSentiment, FinBertUnavailableError, load_model

from .tiny_bert import LABELS, PERMUTED, build_tiny_bert, relabelled_copy

pytest.importorskip("transformers")

# The torch path at full precision (the CPU default is ONNX int8: test_finbert_onnx.py).
TORCH_FP32 = {"backend": "torch", "quantize": "none"}

TEXTS = [
    "Acme profits improve as sales beat estimates",
    "Acme warns of losses after weak quarter",
    "Shares of Acme trade in line with the market",
    "",
    "No improvement in sight for Acme says chief executive, analysts downgrade Acme on "
    "falling demand and regulators open investigation into Acme accounting",
    "Acme",
    "Acme schedules its quarterly earnings call",
    "Analysts downgrade Acme",
    "record margins",
]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-finbert")


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> FinBertSentiment:
    return FinBertSentiment(model=tiny_dir, device="cpu", batch_size=32, **TORCH_FP32)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv("QUANTDESK_FINBERT_PATH", raising=False)


def test_probabilities_sum_to_one_and_score_is_their_difference(tiny: FinBertSentiment) -> None:
    out = tiny.score(TEXTS)
    assert list(out.columns) == ["positive", "negative", "neutral", "score"]
    assert len(out) == len(TEXTS)
    probs = out[["positive", "negative", "neutral"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert ((probs > 0) & (probs < 1)).all()
    np.testing.assert_allclose(out["score"], out["positive"] - out["negative"])
    # the texts get different scores: an order mix-up would show
    assert out["score"].round(6).nunique() > len(TEXTS) // 2


def test_order_is_the_input_order(tiny: FinBertSentiment) -> None:
    together = tiny.score(TEXTS)
    one_by_one = pd.concat([tiny.score([t]) for t in TEXTS], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one, atol=1e-5, rtol=0)
    backwards = tiny.score(TEXTS[::-1]).iloc[::-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(together, backwards, atol=1e-5, rtol=0)


def test_batching_and_length_sorting_change_nothing(tiny_dir: Path) -> None:
    texts = TEXTS * 3
    one = FinBertSentiment(model=tiny_dir, batch_size=1, **TORCH_FP32).score(texts)
    seven = FinBertSentiment(model=tiny_dir, batch_size=7, **TORCH_FP32).score(texts)
    np.testing.assert_allclose(one.to_numpy(), seven.to_numpy(), atol=1e-5)


def test_columns_follow_id2label_not_positions(
    tmp_path: Path, tiny_dir: Path, tiny: FinBertSentiment
) -> None:
    # The same saved weights, labels permuted (and cased differently) in config.json:
    # logit 0 is now "negative", and so on.
    other = FinBertSentiment(model=relabelled_copy(tiny_dir, tmp_path / "permuted"), **TORCH_FP32)
    a, b = tiny.score(TEXTS), other.score(TEXTS)
    for index, label in LABELS.items():
        np.testing.assert_allclose(b[PERMUTED[index].lower()], a[label], atol=1e-6)
    assert not np.allclose(a["positive"], b["positive"], atol=1e-3)


def test_labels_that_are_not_sentiment_are_refused(tmp_path: Path) -> None:
    path = build_tiny_bert(tmp_path / "odd", id2label={0: "LABEL_0", 1: "negative", 2: "neutral"})
    with pytest.raises(ValueError, match="positive"):
        FinBertSentiment(model=path)


def test_texts_are_truncated_to_max_length(tiny_dir: Path) -> None:
    model = FinBertSentiment(model=tiny_dir, max_length=6, **TORCH_FP32)
    head = "Acme profits improve as sales beat estimates"
    out = model.score([head, head + " but warns of losses after weak quarter"])
    np.testing.assert_allclose(out.iloc[0].to_numpy(), out.iloc[1].to_numpy(), atol=1e-6)
    full = FinBertSentiment(model=tiny_dir, max_length=64, **TORCH_FP32).score(
        [head, head + " but warns of losses after weak quarter"]
    )
    assert not np.allclose(full.iloc[0].to_numpy(), full.iloc[1].to_numpy(), atol=1e-4)


def test_int8_path_is_within_two_hundredths_of_fp32(tiny_dir: Path, tiny: FinBertSentiment):
    quantised = FinBertSentiment(model=tiny_dir, backend="torch", quantize="int8")
    assert quantised.key.quantization == "int8"
    assert tiny.key.quantization == "none"
    assert quantised.key.model_revision == tiny.key.model_revision
    diff = (quantised.score(TEXTS) - tiny.score(TEXTS))[["positive", "negative", "neutral"]]
    assert float(diff.abs().to_numpy().max()) <= 0.02


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_missing_directory_fails_at_once_naming_where_to_put_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_network(monkeypatch)
    with pytest.raises(FinBertUnavailableError) as info:
        FinBertSentiment(model=tmp_path / "no-such-model")
    message = str(info.value)
    assert "QUANTDESK_FINBERT_PATH" in message
    assert "huggingface-cli download ProsusAI/finbert" in message


def test_hub_id_not_in_the_cache_fails_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_network(monkeypatch)
    with pytest.raises(FinBertUnavailableError, match="Hugging Face cache") as info:
        FinBertSentiment(model="quantdesk-tests/no-such-model")
    assert "QUANTDESK_FINBERT_PATH" in str(info.value)


def test_env_path_overrides_the_default_model(
    tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_network(monkeypatch)
    monkeypatch.setenv("QUANTDESK_FINBERT_PATH", str(tiny_dir))
    model = load_model("auto", **TORCH_FP32)
    assert isinstance(model, FinBertSentiment)
    assert model.key.model_id == str(tiny_dir.resolve())
    monkeypatch.setenv("QUANTDESK_FINBERT_PATH", str(tiny_dir / "missing"))
    with pytest.raises(FinBertUnavailableError, match="QUANTDESK_FINBERT_PATH"):
        load_model("finbert")
