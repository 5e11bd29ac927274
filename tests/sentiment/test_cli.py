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


def test_show_says_its_times_are_utc(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    # 09:30 in New York on 1 March 2024 is 14:30 UTC
    pd.DataFrame(
        {"ts": ["2024-03-01T09:30:00-05:00"], "headline": ["Acme opens"], "symbols": ["ACME"]}
    ).to_csv(path, index=False)
    store = str(tmp_path / "s.duckdb")
    assert run("news", "import", str(path), "--store", store)[0] == 0
    assert run("sentiment", "score", "--model", "lexicon", "--store", store)[0] == 0
    code, out = run("sentiment", "show", "ACME", "--store", store)
    assert code == 0, out
    header, first = out.splitlines()[1:3]
    assert header.split()[:2] == ["time", "(UTC)"]
    assert first.split()[:2] == ["2024-03-01", "14:30"]


def test_import_cli_keeps_the_good_lines_of_a_malformed_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(
        '{"ts": "2024-03-01T14:30:00Z", "headline": "Acme opens", "symbols": ["ACME"]}\n'
        '{"ts": "2024-03-01T15:00:00Z", "headline": "Acme cl\n'
    )
    store = str(tmp_path / "s.duckdb")
    code, out = run("news", "import", str(path), "--store", store)
    assert code == 0, out
    assert "1 inserted" in out and "1 rejected" in out
    code, out = run("news", "import", str(path), "--store", store)
    assert code == 0 and "0 rejected" in out and "not stored again" in out
    code, out = run("news", "import", str(path), "--strict", "--store", store)
    assert code == 1 and "row 2, field 'line': not JSON" in out
