"""score_news and the score cache on a real store; load_model's choice and its one warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data.store.news import NewsStore
from quantdesk.sentiment import FinBertSentiment, LexiconSentiment, load_model, score_news
from quantdesk.sentiment import loading as loading_module
from quantdesk.sentiment.headlines import latest_headlines

from .tiny_bert import build_tiny_bert

HEADLINES = [
    ("2024-03-01T14:30:00Z", "Acme profits improve as sales beat estimates", "ACME"),
    ("2024-03-01T15:00:00Z", "Acme warns of losses after weak quarter", "ACME"),
    ("2024-03-04T13:00:00Z", "Bolt schedules its quarterly earnings call", "BOLT"),
    ("2024-03-05T13:00:00Z", "Analysts downgrade Acme and Bolt", "ACME;BOLT"),
]


def _items(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ts", "headline", "symbols"])


@pytest.fixture
def news(tmp_path: Path) -> NewsStore:
    store = NewsStore(tmp_path / "store.duckdb")
    store.write_news(_items(HEADLINES), source="test")
    return store


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-finbert")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("QUANTDESK_FINBERT_PATH", raising=False)


def test_second_run_scores_nothing_new_and_new_items_only_are_scored(news: NewsStore) -> None:
    first = score_news(news, "lexicon", progress=False)
    assert (first.scored, first.cached) == (4, 0)
    again = score_news(news, "lexicon", progress=False)
    assert (again.scored, again.cached) == (0, 4)
    news.write_news(_items([("2024-03-06T13:00:00Z", "Bolt posts strong gains", "BOLT")]))
    third = score_news(news, "lexicon", progress=False)
    assert (third.scored, third.cached) == (1, 4)
    assert "1 scored, 4 already cached" in third.summary()


def test_tiny_bert_scores_are_cached_per_model_revision_and_quantisation(
    news: NewsStore, tiny_dir: Path
) -> None:
    fp32 = FinBertSentiment(model=tiny_dir, backend="torch", quantize="none")
    assert score_news(news, fp32, progress=False).scored == 4
    assert score_news(news, fp32, progress=False).scored == 0
    # another model id scores everything again, beside the first model's rows
    assert score_news(news, "lexicon", progress=False).scored == 4
    # the same weights quantised are another key too
    int8 = score_news(news, str(tiny_dir), quantize="int8", backend="torch", progress=False)
    assert (int8.scored, int8.key.quantization) == (4, "int8")
    # and the CPU default, ONNX Runtime int8, is a key of its own
    default = score_news(news, str(tiny_dir), progress=False)
    assert (default.scored, default.key.quantization) == (4, "onnx-int8")
    keys = news.score_keys()
    assert {str(k.model_id) for k in keys} == {
        str(tiny_dir.resolve()),
        LexiconSentiment().key.model_id,
    }
    assert len(keys) == 4
    stored = news.scored_news(key=fp32.key)
    expected = fp32.score(news.news()["headline"].tolist())["score"].to_numpy()
    by_story = stored.drop_duplicates("content_hash")["score"].to_numpy()
    assert by_story == pytest.approx(expected, abs=1e-9)


def test_rescore_overwrites_under_the_same_key(news: NewsStore) -> None:
    score_news(news, "lexicon", progress=False)
    result = score_news(news, "lexicon", rescore=True, progress=False)
    assert (result.scored, result.cached) == (4, 0)
    assert len(news.scored_news()) == 5  # one story names two symbols


def test_latest_headlines_per_symbol(news: NewsStore) -> None:
    score_news(news, "lexicon", progress=False)
    latest = latest_headlines(news.scored_news(), n=2)
    assert latest.groupby("symbol").size().to_dict() == {"ACME": 2, "BOLT": 2}
    acme = latest[latest["symbol"] == "ACME"]
    assert acme["headline"].tolist() == [
        "Analysts downgrade Acme and Bolt",
        "Acme warns of losses after weak quarter",
    ]
    # LM negatives: downgrade (1 hit: -1/2); warns, losses, weak (3 hits: -3/4)
    assert acme["score"].tolist() == pytest.approx([-0.5, -0.75])


def test_auto_falls_back_to_the_lexicon_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(loading_module, "_warned_fallback", False)
    # an id that no Hugging Face cache holds, whatever this machine has
    monkeypatch.setattr("quantdesk.sentiment.finbert.FINBERT_ID", "quantdesk-tests/absent")
    with caplog.at_level(logging.WARNING, logger="quantdesk.sentiment.loading"):
        first, second = load_model("auto"), load_model("auto")
    assert isinstance(first, LexiconSentiment) and isinstance(second, LexiconSentiment)
    warnings = [r for r in caplog.records if "lexicon" in r.getMessage()]
    assert len(warnings) == 1
    assert "QUANTDESK_FINBERT_PATH" in warnings[0].getMessage()


def test_a_path_picks_finbert(tiny_dir: Path) -> None:
    assert isinstance(load_model(tiny_dir, backend="torch"), FinBertSentiment)
    assert isinstance(load_model("lexicon"), LexiconSentiment)


def test_scheduler_runs_chunks_on_the_parallel_runner(news: NewsStore) -> None:
    result = score_news(news, "lexicon", scheduler="serial", progress=False)
    assert (result.scored, result.failed) == (4, 0)
    direct = LexiconSentiment().score(news.news()["headline"].tolist())["score"]
    stored = news.scored_news().drop_duplicates("content_hash")["score"]
    assert stored.tolist() == pytest.approx(direct.tolist())
