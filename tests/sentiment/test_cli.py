"""`quantdesk news ...` and `quantdesk sentiment ...` against a real store; lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from quantdesk.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_import_score_show(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    pd.DataFrame(
        {
            "ts": ["2024-03-01T14:30:00Z", "2024-03-01T15:00:00Z", "bad"],
            "headline": ["Acme posts strong gains", "Acme <b>warns</b> of losses", "x"],
            "symbols": ["ACME", "ACME", "ACME"],
        }
    ).to_csv(path, index=False)
    store = str(tmp_path / "s.duckdb")
    code, out = run("news", "import", str(path), "--store", store)
    assert code == 0, out
    assert "2 inserted" in out and "1 rejected" in out
    code, out = run("sentiment", "score", "--model", "lexicon", "--store", store)
    assert code == 0, out
    assert "2 scored, 0 already cached" in out
    code, out = run("sentiment", "score", "--model", "lexicon", "--store", store)
    assert "0 scored, 2 already cached" in out
    code, out = run("sentiment", "show", "ACME", "--json", "--store", store)
    assert code == 0, out
    shown = json.loads(out)
    assert [h["headline"] for h in shown["headlines"]] == [
        "Acme <b>warns</b> of losses",
        "Acme posts strong gains",
    ]
    assert shown["headlines"][1]["score"] == pytest.approx(2 / 3)
    code, out = run("sentiment", "show", "NOPE", "--store", store)
    assert code == 1 and "no scored news" in out


def test_strict_import_fails_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text('{"ts": "2024-03-01T14:30:00Z", "headline": ""}\n')
    store = tmp_path / "s.duckdb"
    code, out = run("news", "import", str(path), "--strict", "--store", str(store))
    assert code == 1
    assert "row 1, field 'headline': missing headline; nothing written (--strict)" in out
    assert not store.exists()


def test_news_demo_matches_the_simulated_market(tmp_path: Path) -> None:
    store = str(tmp_path / "s.duckdb")
    code, out = run(
        "news", "demo", "--symbols", "3", "--days", "60", "--seed", "5", "--store", store
    )
    assert code == 0, out
    assert "synthetic:seed=5" in out
    code, out = run("sentiment", "score", "--model", "auto", "--store", store, "--json")
    assert code == 0, out
    assert json.loads(out)["scored"] > 0


def test_unknown_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    code, out = run(
        "sentiment", "score", "--model", str(tmp_path / "nowhere"), "--store", str(tmp_path / "s")
    )
    assert code == 1
    assert "QUANTDESK_FINBERT_PATH" in out


def test_import_quantdesk_sentiment_loads_no_torch() -> None:
    code = (
        "import sys, json, quantdesk.sentiment as s; s.LexiconSentiment; s.load_model; "
        "s.score_news; import quantdesk.signals.sentiment; "
        "print(json.dumps([m for m in ('torch', 'transformers', 'nltk') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
