"""A tiny BERT sentiment classifier that the tests build and save themselves (no download).

Three labels, random weights, a WordPiece tokenizer trained on a few finance sentences,
saved with ``save_pretrained`` exactly as a FinBERT directory is laid out, so the tests
load it through the public path (``FinBertSentiment(model=directory)``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

CORPUS = [
    "Acme profits improve as sales beat estimates",
    "Acme warns of losses after weak quarter",
    "Shares of Acme trade in line with the market",
    "Analysts downgrade Acme on falling demand",
    "Acme reports strong growth and record margins",
    "Regulators open investigation into Acme accounting",
    "Acme schedules its quarterly earnings call",
    "No improvement in sight for Acme says chief executive",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LABELS = {0: "positive", 1: "negative", 2: "neutral"}
#: The same labels permuted and cased differently: logit 0 is "negative", and so on.
PERMUTED = {0: "Negative", 1: "NEUTRAL", 2: "positive"}


def build_tokenizer(directory: Path) -> int:
    """Train a WordPiece tokenizer on :data:`CORPUS`, save it; return its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(
        CORPUS, trainers.WordPieceTrainer(vocab_size=120, special_tokens=SPECIALS)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    fast.save_pretrained(directory)
    return int(tok.get_vocab_size())


def build_tiny_bert(
    directory: Path, *, seed: int = 0, id2label: dict[int, str] | None = None
) -> Path:
    """Save a tiny three-label BERT classifier and its tokenizer in ``directory``.

    The classifier head is scaled up so the three probabilities differ clearly (a
    freshly initialised head gives about 1/3 each, which would hide a label mix-up).
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    directory.mkdir(parents=True, exist_ok=True)
    vocab = build_tokenizer(directory)
    labels = id2label or LABELS
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=0.1,
        num_labels=3,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(5.0)
        model.classifier.bias.copy_(torch.tensor([0.5, -0.3, 0.1]))
    model.save_pretrained(directory)
    return directory


def relabelled_copy(directory: Path, target: Path, id2label: dict[int, str] = PERMUTED) -> Path:
    """Copy a saved model to ``target`` with ``id2label`` in its config (same weights)."""
    copy = Path(shutil.copytree(directory, target))
    config = json.loads((copy / "config.json").read_text())
    config["id2label"] = {str(k): v for k, v in id2label.items()}
    config["label2id"] = {v: k for k, v in id2label.items()}
    (copy / "config.json").write_text(json.dumps(config))
    return copy
