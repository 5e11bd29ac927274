"""A transformers sequence classifier on ONNX Runtime: exported once, fused, int8, cached.

:func:`load_onnx_classifier` turns a saved classifier directory into an ONNX Runtime
session, building the ONNX file the first time and reading it from a cache on disk
afterwards (in any process).  The tokenizer stays the transformers one: this module only
maps padded token arrays to logits.

How a model is built (once per weights, config, quantisation and library versions):

1. **export**: the transformers model, loaded with eager attention, goes through
   ``torch.onnx.export`` (the TorchScript exporter: torch 2.13's default dynamo exporter
   needs ``onnxscript``, and its graph is not the one ONNX Runtime's BERT fusions know),
   batch and sequence axes dynamic, opset 17;
2. **fuse** (BERT only): ``onnxruntime.transformers.optimizer`` fuses each layer's
   attention into one ``Attention`` op, the embeddings into ``EmbedLayerNormalization``,
   residual + layer norm into ``SkipLayerNormalization`` and bias + GELU into ``BiasGelu``;
3. **quantise** (``int8``): ``onnxruntime.quantization.quantize_dynamic``, int8 weights
   (per output channel) and uint8 activations scaled per batch at run time;
4. **check**: the built model scores a fixed set of headlines, padded as a batch, beside
   the torch fp32 model; a model off by more than :data:`TOLERANCE` is refused.

The cache: ``settings().onnx_cache_dir`` (``QUANTDESK_ONNX_CACHE``, else
``$QUANTDESK_HOME/onnx_cache`` or ``quantdesk/onnx`` in the user's cache directory; never
the user's store, never the model's directory, which may be a read-only hub cache).  An
entry is a directory named by the quantisation and a SHA-256 fingerprint of the weight
files, ``config.json``, the build recipe and the versions of torch, transformers, onnx
and ONNX Runtime; it holds ``model.onnx`` and ``manifest.json`` (the file's digest, what
it was built from, the check's result).  An entry is built in a temporary directory and
renamed into place, under a lock file, so a failed or interrupted build leaves nothing
half-written and concurrent processes build it once.  An entry whose file does not match
its manifest's digest is logged and rebuilt.

Speed and accuracy: ``benchmarks/bench_sentiment.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "QUANTIZATIONS",
    "TOLERANCE",
    "OnnxClassifier",
    "OnnxExportError",
    "load_onnx_classifier",
    "model_fingerprint",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the export, fusion or quantisation steps change: old entries go unused.
RECIPE = 1
OPSET = 17
QUANTIZATIONS = ("fp32", "int8")
#: The largest class-probability difference from torch fp32 a built model may show.
TOLERANCE = {"fp32": 1e-4, "int8": 0.02}
_LIBRARIES = ("torch", "transformers", "onnx", "onnxruntime")
_MANIFEST = "manifest.json"
_MODEL = "model.onnx"
# Headlines of several lengths, scored as one padded batch by the export check.
_PROBE = (
    "Acme beats estimates and raises full-year guidance",
    "Acme cuts guidance after weak quarter",
    "Shares of Acme trade in line with the market",
    "Regulators open an investigation into Acme accounting, shares fall sharply in "
    "early trading as analysts downgrade the stock",
    "Acme",
    "Acme schedules its quarterly earnings call",
)


class OnnxExportError(RuntimeError):
    """Raised when a model cannot be exported to ONNX, or the export disagrees with torch."""


def _versions() -> dict[str, str]:
    """Return the installed versions of the libraries an export depends on (no imports)."""
    found = {}
    for name in _LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def _weight_files(path: Path) -> list[Path]:
    """Return the files transformers loads weights from in ``path`` (safetensors first)."""
    for pattern, index in (
        ("model*.safetensors", "model.safetensors.index.json"),
        ("pytorch_model*.bin", "pytorch_model.bin.index.json"),
    ):
        files = sorted(path.glob(pattern))
        if files:
            return files + ([path / index] if (path / index).is_file() else [])
    raise OnnxExportError(f"{path} holds no model.safetensors or pytorch_model.bin weights")


def model_fingerprint(path: str | Path, quantization: str) -> str:
    """Return the SHA-256 fingerprint that names a model's ONNX build in the cache.

    It covers ``config.json``, every weight file (whole), the quantisation, the build
    recipe, the opset and the versions of torch, transformers, onnx and ONNX Runtime.
    """
    path = Path(path)
    digest = hashlib.sha256()
    head = {"recipe": RECIPE, "opset": OPSET, "quantization": quantization, **_versions()}
    digest.update(json.dumps(head, sort_keys=True).encode())
    for file in [path / "config.json", *_weight_files(path)]:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 23):
                digest.update(block)
    return digest.hexdigest()


@dataclass
class OnnxClassifier:
    """A sequence classifier on ONNX Runtime: logits from padded token arrays.

    Attributes
    ----------
    session
        The ``onnxruntime.InferenceSession``.
    entry
        The cache directory the model came from.
    manifest
        What the model was built from and how (``manifest.json``).
    """

    session: Any
    entry: Path
    manifest: dict[str, Any]

    @property
    def input_names(self) -> list[str]:
        """Return the names of the model's inputs (``input_ids``, ``attention_mask``...)."""
        return [i.name for i in self.session.get_inputs()]

    def logits(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Return the float32 logits of one padded batch (int64 arrays by input name)."""
        feed = {name: arrays[name] for name in self.input_names}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)

    def probabilities(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Return the class probabilities (softmax of the logits) of one padded batch."""
        return _softmax(self.logits(arrays))


def _read_entry(entry: Path) -> tuple[bytes, dict[str, Any]] | None:
    """Return the model bytes and manifest of a whole cache entry; None if absent or damaged."""
    if not entry.is_dir():
        return None
    try:
        manifest = json.loads((entry / _MANIFEST).read_text())
        data = (entry / _MODEL).read_bytes()
        wanted = manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ONNX cache entry %s is incomplete (%s); rebuilding it", entry, exc)
        return None
    found = hashlib.sha256(data).hexdigest()
    if found != wanted:
        logger.warning(
            "ONNX cache entry %s is damaged: %s has SHA-256 %s, its manifest says %s; "
            "rebuilding it",
            entry,
            _MODEL,
            found[:12],
            str(wanted)[:12],
        )
        return None
    return data, manifest


@contextlib.contextmanager
def _build_lock(entry: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``entry``'s lock file: one process builds it at a time."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename alone keeps entries whole
        yield
        return
    with open(entry.with_name(f".{entry.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _probe_inputs(tokenizer: Any, names: list[str]) -> dict[str, np.ndarray]:
    """Return the probe headlines as one padded batch of int64 arrays."""
    encoded = tokenizer(list(_PROBE), padding=True, truncation=True, max_length=64)
    arrays = {k: np.asarray(encoded[k], dtype=np.int64) for k in names if k in encoded}
    if "token_type_ids" in names and "token_type_ids" not in arrays:
        arrays["token_type_ids"] = np.zeros_like(arrays["input_ids"])
    return arrays


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def _export(path: Path, target: Path) -> tuple[Any, list[str], dict[str, np.ndarray], np.ndarray]:
    """Export the classifier in ``path`` to ``target``; return its config, inputs, probe, probs."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    # Eager attention: the graph ONNX Runtime's attention fusion recognises (sdpa's mask
    # handling exports as a longer chain of ops that it does not).
    net = AutoModelForSequenceClassification.from_pretrained(
        path, local_files_only=True, attn_implementation="eager"
    ).eval()
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in tokenizer.model_input_names:
        names.append("token_type_ids")
    probe = _probe_inputs(tokenizer, names)

    class Logits(torch.nn.Module):
        """The classifier with positional inputs and the logits as its one output."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            logits: torch.Tensor = self.model(**dict(zip(names, inputs, strict=True))).logits
            return logits

    # eval() on the wrapper too: the exporter restores the wrapper's mode afterwards,
    # and a wrapper left in training mode would switch dropout on in the model.
    wrapper = Logits(net).eval()
    example = tuple(torch.from_numpy(probe[name]) for name in names)
    with torch.inference_mode():
        reference = _softmax(wrapper(*example).float().numpy())
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one (which needs
        # onnxscript); tracing warns about Python values it records as constants, none of
        # which depend on the batch or sequence length (checked by the probe below).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            wrapper,
            example,
            str(target),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return net.config, names, probe, reference


def _fuse(source: Path, target: Path, config: Any) -> dict[str, int]:
    """Write ``source`` with ONNX Runtime's BERT fusions to ``target``; return the fused ops."""
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(source),
        model_type="bert",
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
        opt_level=0,  # the fusions only; the session applies its own optimisations at load
    )
    fused.save_model_to_file(str(target))
    stats = {k: int(v) for k, v in fused.get_fused_operator_statistics().items() if v}
    if not stats.get("Attention"):
        logger.warning("ONNX Runtime fused no attention in %s (slower, still correct)", source)
    return stats


class _QuietRoot(logging.Filter):
    """Drop what the quantiser logs on the root logger: a line per tensor, and advice."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        return "pre-process" not in record.getMessage()


def _quantize(source: Path, target: Path) -> None:
    """Write ``source`` with int8 weights and dynamically quantised activations to ``target``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = _QuietRoot()
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # The fused ops (Attention, BiasGelu...) are outside the ONNX domain, so
            # shape inference leaves their outputs untyped; they are all float32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.getLogger().removeFilter(quiet)


def _session(data: bytes, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings go to stderr, not logging
    # Threads sleep between ops rather than spin: each op of a batch takes milliseconds,
    # so waking costs nothing measurable, and spinning steals the cores from a notebook
    # or dashboard running beside the scoring (and from the scoring when they are busy).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _build(path: Path, entry: Path, quantization: str, fingerprint: str, threads: int) -> None:
    """Build the cache entry of ``path`` in a temporary directory and rename it into place."""
    started = time.perf_counter()
    for stale in entry.parent.glob(f".tmp-{entry.name}-*"):
        # Left by a build that was killed: this process holds the entry's lock now.
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".tmp-{entry.name}-"))
    try:
        exported = work / "exported.onnx"
        try:
            config, names, probe, reference = _export(path, exported)
        except OnnxExportError:
            raise
        except Exception as exc:
            raise OnnxExportError(f"exporting {path} to ONNX failed: {exc}") from exc
        fused: dict[str, int] = {}
        model_type = str(getattr(config, "model_type", ""))
        built = exported
        if model_type == "bert":
            built = work / "fused.onnx"
            fused = _fuse(exported, built, config)
        else:
            logger.info("no ONNX Runtime fusions for model type %r: exported as it is", model_type)
        if quantization == "int8":
            _quantize(built, work / _MODEL)
        else:
            built.replace(work / _MODEL)
        for leftover in work.glob("*.onnx"):
            if leftover.name != _MODEL:
                leftover.unlink()
        data = (work / _MODEL).read_bytes()
        # The check: the built model beside torch fp32 on a padded batch of headlines.
        built_probs = OnnxClassifier(_session(data, threads), entry, {}).probabilities(probe)
        diff = float(np.abs(built_probs - reference).max())
        if diff > TOLERANCE[quantization]:
            raise OnnxExportError(
                f"the ONNX {quantization} build of {path} differs from torch fp32 by {diff:.4f} "
                f"in a class probability on the check headlines (at most "
                f"{TOLERANCE[quantization]} allowed)"
            )
        manifest = {
            "source": str(path),
            "quantization": quantization,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "fingerprint": fingerprint,
            "inputs": names,
            "fused": fused,
            "check_max_abs_dp": diff,
            "recipe": RECIPE,
            "opset": OPSET,
            "versions": _versions(),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 1),
        }
        (work / _MANIFEST).write_text(json.dumps(manifest, indent=2))
        os.chmod(work, 0o755)  # mkdtemp makes it private; the cache is shared like numba's
        if entry.exists():  # a damaged entry, found under the lock
            shutil.rmtree(entry)
        os.rename(work, entry)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info(
        "exported %s to ONNX (%s, %s) in %.1f s, max |dp| vs torch fp32 %.4f: %s",
        path,
        quantization,
        ", ".join(f"{v} {k}" for k, v in fused.items()) or "no fusions",
        time.perf_counter() - started,
        diff,
        entry,
    )


def load_onnx_classifier(
    path: str | Path,
    quantization: str = "int8",
    *,
    cache_dir: str | Path | None = None,
    threads: int | None = None,
) -> OnnxClassifier:
    """Return the ONNX Runtime classifier of a saved model, built once and cached on disk.

    Parameters
    ----------
    path
        A directory saved with ``save_pretrained`` (a hub snapshot directory works too).
    quantization
        ``"int8"`` (dynamic int8) or ``"fp32"``.
    cache_dir
        Where builds are kept (default ``settings().onnx_cache_dir``).
    threads
        Intra-op threads (default: the CPUs this process may use).

    Raises
    ------
    ImportError
        onnxruntime or onnx is not installed.
    OnnxExportError
        The model could not be exported, or the build disagrees with torch fp32 by more
        than :data:`TOLERANCE` on the check headlines (nothing is cached then).

    Examples
    --------
    >>> model = load_onnx_classifier("/models/finbert")  # doctest: +SKIP
    >>> arrays = {"input_ids": ids, "attention_mask": mask}  # doctest: +SKIP
    >>> model.probabilities(arrays)  # doctest: +SKIP
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, not {quantization!r}")
    import onnxruntime  # noqa: F401  (fail at once, before any hashing or export)

    from quantdesk.core.parallel import cpu_count

    threads = threads or cpu_count()
    if cache_dir is None:
        from quantdesk.config import settings

        cache_dir = settings().onnx_cache_dir
    path = Path(path)
    fingerprint = model_fingerprint(path, quantization)
    entry = Path(str(cache_dir)) / f"{quantization}-{fingerprint[:32]}"
    found = _read_entry(entry)
    if found is None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with _build_lock(entry):
            found = _read_entry(entry)  # another process may have built it meanwhile
            if found is None:
                _build(path, entry, quantization, fingerprint, threads)
                found = _read_entry(entry)
        if found is None:  # pragma: no cover - written and read back under the lock
            raise OnnxExportError(f"the ONNX build {entry} could not be read back")
    else:
        logger.info("ONNX model of %s (%s) from the cache: %s", path, quantization, entry)
    data, manifest = found
    return OnnxClassifier(_session(data, threads), entry, manifest)
