"""FinBERT sentiment through ``transformers``: local weights only, batched, optionally int8.

:class:`FinBertSentiment` loads a three-label sequence classifier (``ProsusAI/finbert``
by default) and scores texts into the columns ``positive, negative, neutral, score``
(``score = positive - negative``), mapped by the model's own ``id2label`` (never by
position).  torch and transformers load when a model is built, never at import.

Where the weights come from (nothing is ever downloaded: ``local_files_only`` always):

1. ``model`` as given when it is a directory saved with ``save_pretrained``;
2. ``QUANTDESK_FINBERT_PATH`` when ``model`` is left at the default id;
3. the Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``) for a hub id.

When none holds them, :class:`FinBertUnavailableError` is raised at once, saying where to
put them and how to fetch them on a connected machine.

Speed: texts are tokenized once (by the Rust tokenizer directly), sorted by length so
that a batch pads little, and truncated to ``max_length`` tokens.  Where they run:

- on a CPU, by default (``backend="auto"``, ``quantize="auto"``), ONNX Runtime with int8
  weights: the model is exported to ONNX once, its attention, embeddings, layer norms
  and GELUs fused by ONNX Runtime's BERT optimiser, its weights quantised to int8
  (per channel, activations dynamically), checked against torch fp32 and cached on disk
  for every later process (:mod:`quantdesk.sentiment.onnx_runtime`).  On this project's
  2-core AVX2 machine, BERT-base at 64 tokens: about 22 headlines/s by CPU time, against
  13 for torch fp32 and 18 to 21 for torch's dynamic int8, class probabilities within
  0.007 of fp32 (``benchmarks/bench_sentiment.py``, ``benchmarks/RESULTS.md``);
- on a CPU without onnxruntime (or when the export fails), torch, with the reason
  logged; ``quantize="int8"`` there is torch's dynamic int8 on the linear layers
  (``torch.ao.quantization.quantize_dynamic``: deprecated in favour of torchao, which is
  not installed here, but present and working in torch 2.13; its deprecation warnings
  are silenced where it is called);
- on a GPU, torch in bfloat16 (float16 where bf16 is not supported), under
  ``torch.inference_mode``, results copied back once.

``quantize="none"`` keeps full precision on a CPU (ONNX Runtime fp32, or torch fp32 with
``backend="torch"``).  Int8 scores differ a little by CPU (int8 kernels differ) and by
batch (activations are scaled per batch), within the 0.02 tolerance; the score cache's
key records backend and quantisation (``onnx-int8``, ``onnx-fp32``, ``int8``, ``none``,
``bf16``), so scores of one never mix with another's.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantdesk.config import settings
from quantdesk.data.store.news import SCORE_COLUMNS, ScoreKey

if TYPE_CHECKING:
    from quantdesk.sentiment.onnx_runtime import OnnxClassifier

__all__ = [
    "FINBERT_ENV",
    "FINBERT_ID",
    "FinBertSentiment",
    "FinBertUnavailableError",
    "find_weights",
]

logger = logging.getLogger(__name__)

FINBERT_ID = "ProsusAI/finbert"
FINBERT_ENV = "QUANTDESK_FINBERT_PATH"
_LABELS = ("positive", "negative", "neutral")
_QUANTIZATIONS = ("none", "int8")
_BACKENDS = ("auto", "torch", "onnx")


class FinBertUnavailableError(FileNotFoundError):
    """Raised when a FinBERT model's weights are not on this machine (nothing is downloaded)."""


def _hub_cache() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return "~/.cache/huggingface/hub"


def _unavailable(model: str, why: str) -> FinBertUnavailableError:
    return FinBertUnavailableError(
        f"FinBERT weights for {model!r} are not on this machine ({why}); quantdesk never "
        f"downloads models. Put a model saved with save_pretrained in a directory and set "
        f"{FINBERT_ENV}=/that/directory (or pass model=...), or place the Hugging Face cache "
        f"entry under {_hub_cache()} (HF_HOME / HF_HUB_CACHE). To fetch it, on a machine with "
        f"internet run `huggingface-cli download {FINBERT_ID} --local-dir finbert` (or "
        f"`hf download {FINBERT_ID} --local-dir finbert`) and copy the folder here. Until "
        "then `load_model('lexicon')` scores with the Loughran-McDonald dictionary."
    )


def _directory_revision(path: Path) -> str:
    """Return a short fingerprint of a saved model directory's files (names, sizes, heads)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(file.name.encode())
        digest.update(str(file.stat().st_size).encode())
        with file.open("rb") as handle:
            # The first MiB tells weights apart (safetensors headers, random init) cheaply.
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:12]


def find_weights(model: str = FINBERT_ID) -> tuple[Path, str, str]:
    """Return the local directory of ``model``, its id and revision, or raise if absent.

    Parameters
    ----------
    model
        A directory saved with ``save_pretrained`` or a hub id; the default id gives
        way to ``QUANTDESK_FINBERT_PATH`` when that is set.

    Raises
    ------
    FinBertUnavailableError
        At once, when the weights are in none of the places looked at.
    """
    override = settings().finbert_path
    if model == FINBERT_ID and override is not None:
        path = override
        if not (path / "config.json").is_file():
            raise _unavailable(model, f"{FINBERT_ENV}={override} holds no config.json")
        return path.resolve(), str(path.resolve()), _directory_revision(path)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise _unavailable(model, f"the directory {path} holds no config.json")
        return path.resolve(), str(path.resolve()), _directory_revision(path)
    if model.count("/") > 1 or model.startswith(("/", ".", "~")) or "\\" in model:
        # Looks like a path, not "owner/name": say so rather than searching the hub cache.
        raise _unavailable(model, "no such directory")
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with transformers
        raise _unavailable(model, "huggingface_hub is not installed") from exc
    config = try_to_load_from_cache(model, "config.json")
    if not isinstance(config, str):
        unset = f"{FINBERT_ENV} is not set" if override is None else f"{FINBERT_ENV} not used"
        raise _unavailable(model, f"not in the Hugging Face cache at {_hub_cache()}; {unset}")
    snapshot = Path(config).parent
    # The cache's snapshot directory is named by the commit it holds: the model revision.
    return snapshot, model, snapshot.name


def _label_columns(id2label: dict[Any, Any]) -> list[int]:
    """Return, for positive, negative and neutral, the logit index the model gives that label."""
    by_name = {str(name).strip().lower(): int(i) for i, name in id2label.items()}
    missing = [label for label in _LABELS if label not in by_name]
    if missing or len(by_name) != 3:
        raise ValueError(
            f"the model's id2label {dict(id2label)} is not the three sentiment labels "
            f"{_LABELS} (missing {missing}); is it a FinBERT-style classifier?"
        )
    return [by_name[label] for label in _LABELS]


class FinBertSentiment:
    """Score texts with a FinBERT-style classifier: ``positive, negative, neutral, score``.

    Parameters
    ----------
    model
        Hub id (default ``ProsusAI/finbert``; ``QUANTDESK_FINBERT_PATH`` overrides it) or a
        directory saved with ``save_pretrained``.  Never downloaded.
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    batch_size
        Texts per forward pass.
    max_length
        Tokens kept per text (headlines fit in 64; longer text is truncated).
    quantize
        On a CPU: ``"int8"`` (int8 weights), ``"none"`` (full precision) or ``"auto"``
        (``"int8"``).  Ignored on a GPU, where bf16 (or fp16) is used.
    backend
        ``"auto"``: ONNX Runtime on a CPU when onnxruntime is installed (the model is
        exported once and cached), else torch, saying why in a log line; torch on a GPU.
        ``"onnx"``: ONNX Runtime or an error (CPU only).  ``"torch"``: torch.

    Raises
    ------
    FinBertUnavailableError
        The weights are not on this machine (raised at once, nothing is downloaded).
    ValueError
        The model's labels are not positive, negative and neutral; an unknown option;
        ``backend="onnx"`` on a GPU.
    ImportError
        ``backend="onnx"`` without onnxruntime and onnx installed.
    quantdesk.sentiment.onnx_runtime.OnnxExportError
        ``backend="onnx"`` and the model cannot be exported, or its export disagrees
        with torch fp32 (``backend="auto"`` falls back to torch then).

    Examples
    --------
    >>> model = FinBertSentiment("/models/finbert")  # doctest: +SKIP
    >>> model.score(["Acme beats estimates", "Acme cuts guidance"])  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Path = FINBERT_ID,
        device: str = "auto",
        batch_size: int = 32,
        max_length: int = 64,
        quantize: str = "auto",
        backend: str = "auto",
    ) -> None:
        if batch_size < 1 or max_length < 2:
            raise ValueError("batch_size must be >= 1 and max_length >= 2")
        if quantize not in ("auto", *_QUANTIZATIONS):
            raise ValueError(f"quantize must be 'auto', 'none' or 'int8', not {quantize!r}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be 'auto', 'torch' or 'onnx', not {backend!r}")
        # Before torch loads: a missing model fails at once and cheaply.
        path, model_id, revision = find_weights(str(model))

        import torch
        from transformers import AutoConfig, AutoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        on_cpu = self.device.type == "cpu"
        if backend == "onnx" and not on_cpu:
            raise ValueError(
                f"backend='onnx' runs on the CPU (onnxruntime's CPU build); on {device} use "
                "backend='torch' or 'auto'"
            )
        if quantize == "auto":
            quantize = "int8" if on_cpu else "none"
        self.batch_size = batch_size
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._token_types = "token_type_ids" in self.tokenizer.model_input_names
        fast = getattr(self.tokenizer, "backend_tokenizer", None)
        if fast is not None:
            fast = copy.deepcopy(fast)  # the tokenizer's own settings stay untouched
            fast.no_padding()
            fast.enable_truncation(max_length)
        self._backend = fast
        # From the config, before any export: a model with other labels fails at once.
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        self._order = _label_columns(config.id2label)
        self.model: Any = None
        self.onnx: OnnxClassifier | None = None
        if on_cpu and backend != "torch":
            self.onnx = self._load_onnx(path, quantize, required=backend == "onnx")
        if self.onnx is not None:
            self.backend = "onnx"
            quantization = f"onnx-{'int8' if quantize == 'int8' else 'fp32'}"
        else:
            self.backend = "torch"
            self.model, quantization = self._load_torch(path, quantize)
        self.key = ScoreKey(model_id, revision, quantization)
        logger.info("FinBERT %s on %s (%s)", self.key, self.device, self.backend)

    @staticmethod
    def _load_onnx(path: Path, quantize: str, required: bool) -> OnnxClassifier | None:
        """Return the model on ONNX Runtime; None (saying why) when it cannot be had."""
        from quantdesk.sentiment.onnx_runtime import OnnxExportError, load_onnx_classifier

        try:
            return load_onnx_classifier(path, "int8" if quantize == "int8" else "fp32")
        except ImportError as exc:
            if required:
                raise ImportError(
                    f"backend='onnx' needs onnxruntime and onnx ({exc}); install them with "
                    "pip install 'quantdesk[sentiment]'"
                ) from exc
            logger.warning(
                "FinBERT runs on torch, not ONNX Runtime: %s (pip install 'quantdesk[sentiment]' "
                "for the faster CPU path)",
                exc,
            )
        except (OnnxExportError, OSError) as exc:
            if required:
                raise
            logger.warning("FinBERT runs on torch, not ONNX Runtime: %s", exc)
        return None

    def _load_torch(self, path: Path, quantize: str) -> tuple[Any, str]:
        """Return the torch model on this device and the name of its precision."""
        import torch
        from transformers import AutoModelForSequenceClassification

        net = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
        net.eval()
        if self.device.type == "cuda":
            half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return net.to(self.device, dtype=half), "bf16" if half == torch.bfloat16 else "fp16"
        if quantize == "int8":
            with warnings.catch_warnings():
                # torch.ao.quantization warns that it is deprecated (torchao is its
                # successor, not installed here); it still works in torch 2.13.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", UserWarning)
                net = torch.ao.quantization.quantize_dynamic(
                    net, {torch.nn.Linear}, dtype=torch.qint8
                )
            return net, "int8"
        return net.to(self.device), "none"

    def __repr__(self) -> str:
        return (
            f"FinBertSentiment({self.key}, device={self.device}, backend={self.backend}, "
            f"batch_size={self.batch_size})"
        )

    def _encode(self, texts: list[str]) -> tuple[list[list[int]], list[list[int]]]:
        """Return the token ids and token type ids of each text, truncated, unpadded."""
        backend = self._backend
        if backend is not None:
            # The Rust tokenizer directly: transformers' per-text conversion of its output
            # costs about as much as a GPU forward pass of the batch.
            encodings = backend.encode_batch(texts)
            return [e.ids for e in encodings], [e.type_ids for e in encodings]
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        ids = [list(x) for x in encoded["input_ids"]]
        types = encoded.get("token_type_ids") or [[0] * len(x) for x in ids]
        return ids, [list(x) for x in types]

    def _run_torch(self, batches: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Return the class probabilities of padded batches, on the torch model."""
        import torch

        outputs = []
        with torch.inference_mode():
            for arrays in batches:
                batch = {
                    k: torch.from_numpy(v).to(self.device, non_blocking=True)
                    for k, v in arrays.items()
                }
                logits = self.model(**batch).logits.float()
                # Kept on the device: one copy back at the end, no sync per batch.
                outputs.append(torch.softmax(logits, dim=-1))
            return torch.cat(outputs).cpu().numpy()

    def _run_onnx(self, batches: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Return the class probabilities of padded batches, on ONNX Runtime."""
        assert self.onnx is not None
        return np.concatenate([self.onnx.probabilities(arrays) for arrays in batches])

    def score(self, texts: list[str]) -> pd.DataFrame:
        """Return ``positive, negative, neutral, score`` for each text, in input order.

        Probabilities come from a softmax over the model's three labels, in float32
        whatever precision the model ran in; ``score = positive - negative``.
        """
        texts = [str(t) for t in texts]
        probs = np.zeros((len(texts), 3), dtype=np.float64)
        if texts:
            ids, type_ids = self._encode(texts)
            lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
            # Longest first, stable: a batch holds texts of similar length, so little padding.
            order = np.argsort(-lengths, kind="stable")
            sorted_lengths = lengths[order]
            # One padded matrix for all texts, filled in one step (no per-text Python work).
            valid = np.arange(int(sorted_lengths[0])) < sorted_lengths[:, None]
            total = int(sorted_lengths.sum())
            input_ids = np.full(valid.shape, self.tokenizer.pad_token_id or 0, dtype=np.int64)
            input_ids[valid] = np.fromiter(
                itertools.chain.from_iterable(ids[i] for i in order), np.int64, total
            )
            token_types = np.zeros(valid.shape, dtype=np.int64)
            token_types[valid] = np.fromiter(
                itertools.chain.from_iterable(type_ids[i] for i in order), np.int64, total
            )
            arrays = {"input_ids": input_ids, "attention_mask": valid.astype(np.int64)}
            if self._token_types:
                arrays["token_type_ids"] = token_types
            batches = []
            for start in range(0, len(order), self.batch_size):
                stop = min(start + self.batch_size, len(order))
                width = int(sorted_lengths[start])
                batches.append(
                    {k: np.ascontiguousarray(v[start:stop, :width]) for k, v in arrays.items()}
                )
            run = self._run_onnx if self.onnx is not None else self._run_torch
            probs[order] = run(batches)[:, self._order]
        frame = pd.DataFrame(probs, columns=list(_LABELS))
        frame["score"] = frame["positive"] - frame["negative"]
        return frame[list(SCORE_COLUMNS)]
