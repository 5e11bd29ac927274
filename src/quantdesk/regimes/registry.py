"""Versioned regime-model artifacts on a local directory or any fsspec URL.

Layout
------
Under the registry root (``QUANTDESK_MODELS``, default ``$QUANTDESK_HOME/models``, or any
fsspec URL such as ``memory://registry`` or ``s3://bucket/models`` when s3fs is
installed) each fitted model is one folder::

    {root}/{name}/{version}/{symbol}/arrays.npz      the model's arrays (no pickle)
    {root}/{name}/{version}/{symbol}/metadata.json   what it is, how it was made

Versions
--------
A version is shared by all the symbols of one run (``quantdesk regimes fit`` saves SPX
and IXIC as ``v3`` of ``regimes``).  Left out, :meth:`ModelRegistry.save` takes the next
integer of that name, ``v1``, ``v2``, ...: short, ordered, and easy to say ("regimes v3").
Any other safe string (``"2024-06-30"``) may be given.  A saved version is immutable:
saving the same ``(name, version, symbol)`` twice raises.  ``"latest"`` is the
most recently created saved version of a name that holds the symbol.  Automatic
numbering assumes one writer per name at a time (the registry has no locks; a second
writer racing for the same number fails on the immutability check, it does not
overwrite).

Atomicity
---------
``metadata.json`` is the commit marker: an artifact exists for :meth:`list` and
:meth:`load` only once its metadata is there, and the metadata is written last, to a
temporary key first and then moved into place (a rename on a local disk; a whole
object appears at once on object stores).  Everything is serialised in memory before
anything is written, so a model or ``extra`` that cannot be serialised writes nothing;
a failure while writing leaves at most an uncommitted ``arrays.npz``, which is ignored
and replaced by the next save.  The metadata records the SHA-256 of the arrays, and
:meth:`load` checks it.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from quantdesk.core.jsonable import json_scalar
from quantdesk.core.provenance import library_versions

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from quantdesk.regimes.model import RegimeModel

__all__ = ["ARTIFACT_FORMAT", "Artifact", "ModelRecord", "ModelRegistry", "data_fingerprint"]

logger = logging.getLogger(__name__)

ARTIFACT_FORMAT = "quantdesk-regime-model/1"
_ARRAYS = "arrays.npz"
_METADATA = "metadata.json"
# One path component: letters, digits and the punctuation tickers use (^GSPC, EURUSD=X,
# BRK.B); no separators, and no leading dot, which marks temporary keys.
_SAFE = re.compile(r"^[A-Za-z0-9^=@+_-][A-Za-z0-9^=@+_.-]*$")
_AUTO_VERSION = re.compile(r"^v(\d+)$")
_LIBRARIES = ("quantdesk", "hmmlearn", "numpy", "pandas", "scikit-learn", "scipy")
_LIST_COLUMNS = (
    "name",
    "version",
    "symbol",
    "created_at",
    "train_start",
    "train_end",
    "n_obs",
    "log_likelihood",
    "converged",
    "kind",
    "degenerate",
    "data_fingerprint",
    "url",
)


class Artifact(Protocol):
    """What the registry saves: a model that gives its ``(arrays, metadata)``."""

    def to_artifact(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Return the model's numeric arrays and JSON-serialisable metadata."""
        ...


def data_fingerprint(bars: pd.DataFrame) -> str:
    """Return ``"sha256:<hex>"`` of the canonical values of some bars.

    The digest covers the symbol (when there is a ``symbol`` column), the timestamp
    (UTC nanoseconds) and ``open, high, low, close, volume`` as little-endian float64,
    in (symbol, ts) order, so it does not depend on row order, index, column order,
    dtype widths or the timezone the times are shown in.  Bars indexed by ``ts`` work
    too.  A missing ``volume`` column hashes as NaN.

    Examples
    --------
    >>> bars = pd.DataFrame(
    ...     {"ts": pd.to_datetime(["2024-01-02", "2024-01-03"], utc=True), "open": [1.0, 2.0],
    ...      "high": [1.0, 2.0], "low": [1.0, 2.0], "close": [1.0, 2.0], "volume": [5.0, 6.0]})
    >>> data_fingerprint(bars) == data_fingerprint(bars.iloc[::-1])
    True
    """
    frame = bars if "ts" in bars.columns else bars.rename_axis("ts").reset_index()
    ts = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True)).as_unit("ns").asi8
    n = len(frame)
    symbols = (
        frame["symbol"].astype(str).to_numpy(dtype=object)
        if "symbol" in frame.columns
        else np.full(n, "", dtype=object)
    )
    order = np.lexsort((ts, symbols.astype(str)))
    digest = hashlib.sha256(b"quantdesk-bars/1\x00")
    digest.update("\x00".join(symbols[order].tolist()).encode())
    digest.update(np.ascontiguousarray(ts[order]).astype("<i8").tobytes())
    for column in ("open", "high", "low", "close", "volume"):
        values = (
            pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
            if column in frame.columns
            else np.full(n, np.nan)
        )[order]
        # One bit pattern per value: every NaN alike, and -0.0 the same as 0.0.
        values = np.where(np.isnan(values), np.nan, values + 0.0)
        digest.update(values.astype("<f8").tobytes())
    return f"sha256:{digest.hexdigest()}"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return pd.Timestamp(value).isoformat()


def _check_component(kind: str, value: str) -> str:
    text = str(value)
    if not _SAFE.match(text):
        raise ValueError(
            f"{kind} {text!r} is not a safe path component "
            "(letters, digits and ^ = @ + _ . -; no leading dot, no '/')"
        )
    return text


def _version_key(version: str) -> tuple[int, int, str]:
    """Sort automatic versions numerically (v10 after v9), other strings after them."""
    match = _AUTO_VERSION.match(version)
    return (0, int(match.group(1)), "") if match else (1, 0, version)


@dataclass(frozen=True)
class ModelRecord:
    """Return value of :meth:`ModelRegistry.save`: where an artifact is and what it holds."""

    name: str
    version: str
    symbol: str
    url: str
    created_at: pd.Timestamp
    metadata: dict[str, Any] = field(repr=False)

    @property
    def model_version(self) -> str:
        """Return ``"{name}/{version}"``, the id regime rows in the store carry."""
        return f"{self.name}/{self.version}"

    def summary(self) -> str:
        """Return a one-line description of the artifact."""
        meta = self.metadata
        ll = meta.get("log_likelihood")
        ll_text = f"{ll:.1f}" if isinstance(ll, (int, float)) else "?"
        return (
            f"{self.name}/{self.version}/{self.symbol}: {meta.get('kind', '?')} model, "
            f"trained {str(meta.get('train_start'))[:10]}..{str(meta.get('train_end'))[:10]} "
            f"({meta.get('n_obs')} obs), log-likelihood {ll_text}"
            + (", DEGENERATE" if meta.get("degenerate") else "")
            + f" -> {self.url}"
        )


class ModelRegistry:
    """A store of fitted :class:`~quantdesk.regimes.model.RegimeModel` artifacts.

    Parameters
    ----------
    url
        Local directory or fsspec URL of the registry root; ``None`` means
        ``quantdesk.config.settings().models_url`` (``$QUANTDESK_MODELS``, default
        ``$QUANTDESK_HOME/models``).
    **storage_options
        Passed to the fsspec filesystem (credentials for ``s3://`` come from the
        environment by default, never from here if avoidable).

    Examples
    --------
    >>> registry = ModelRegistry("memory://demo")  # doctest: +SKIP
    >>> record = registry.save(model, "regimes", "SPX")  # doctest: +SKIP
    >>> registry.load("regimes", "SPX").filter(bars)  # doctest: +SKIP
    >>> registry.list()  # doctest: +SKIP
    """

    def __init__(self, url: str | None = None, **storage_options: Any) -> None:
        from fsspec.core import url_to_fs

        if url is None:
            from quantdesk.config import settings

            url = settings().models_url
        self.url = str(url)
        fs, root = url_to_fs(self.url, **storage_options)
        self.fs: AbstractFileSystem = fs
        self.root: str = str(root).rstrip("/") or "/"

    def __repr__(self) -> str:
        return f"ModelRegistry({self.url!r})"

    # -- paths -------------------------------------------------------------------------

    def _join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def _uri(self, path: str) -> str:
        return str(self.fs.unstrip_protocol(path))

    def _committed(self, name: str | None = None) -> list[str]:
        """Return the paths of every committed ``metadata.json`` (of one name or all)."""
        pattern = self._join(name or "*", "*", "*", _METADATA)
        try:
            found = self.fs.glob(pattern)
        except FileNotFoundError:
            return []
        return sorted(str(p) for p in found)

    def _read_metadata(self, paths: list[str]) -> list[dict[str, Any]]:
        if not paths:
            return []
        blobs = self.fs.cat(paths)
        if isinstance(blobs, bytes):  # one path may come back bare
            blobs = {paths[0]: blobs}
        out = []
        for path in paths:
            doc = json.loads(blobs[path])
            doc["url"] = self._uri(path.rsplit("/", 1)[0])
            out.append(doc)
        return out

    # -- writes ------------------------------------------------------------------------

    def next_version(self, name: str) -> str:
        """Return the next automatic version of ``name``: ``v{1 + highest vN saved}``."""
        _check_component("name", name)
        highest = 0
        for path in self._committed(name):
            match = _AUTO_VERSION.match(path.split("/")[-3])
            if match:
                highest = max(highest, int(match.group(1)))
        return f"v{highest + 1}"

    def save(
        self,
        model: Artifact,
        name: str,
        symbol: str,
        *,
        version: str | None = None,
        data_fingerprint: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ModelRecord:
        """Return the record of ``model`` saved as ``{name}/{version}/{symbol}``.

        Parameters
        ----------
        model
            A fitted model (anything with ``to_artifact()`` and the fitted attributes).
        name, symbol
            Model family (e.g. ``"regimes"``) and the symbol it was fitted on.
        version
            Version to save under; ``None`` takes :meth:`next_version`.  Saving over an
            existing artifact raises :class:`FileExistsError`.
        data_fingerprint
            :func:`data_fingerprint` of the training bars, recorded for provenance.
        extra
            More JSON-serialisable metadata (walk-forward settings, notes).

        Raises
        ------
        TypeError
            When the model metadata or ``extra`` is not JSON serialisable (nothing is
            written).
        FileExistsError
            When the artifact already exists.
        """
        name = _check_component("name", name)
        symbol = _check_component("symbol", symbol)
        version = _check_component("version", version or self.next_version(name))
        arrays, model_meta = model.to_artifact()
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **{k: np.asarray(v) for k, v in arrays.items()})
        blob = buffer.getvalue()
        created = pd.Timestamp(datetime.now(UTC))
        doc: dict[str, Any] = {
            "format": ARTIFACT_FORMAT,
            "name": name,
            "version": version,
            "symbol": symbol,
            "created_at": created.isoformat(),
            "data_fingerprint": data_fingerprint,
            "arrays_sha256": hashlib.sha256(blob).hexdigest(),
            "train_start": _iso(getattr(model, "train_start_", None)),
            "train_end": _iso(getattr(model, "train_end_", None)),
            "n_obs": getattr(model, "n_obs_", None),
            "log_likelihood": getattr(model, "log_likelihood_", None),
            "converged": getattr(model, "converged_", None),
            "n_iter": getattr(model, "n_iter_", None),
            "kind": getattr(model, "kind_", None),
            "degenerate": getattr(model, "degenerate_", None),
            "state_map": getattr(model, "state_map_", None),
            "libraries": library_versions(_LIBRARIES, python=False),
            "model": model_meta,
            "extra": dict(extra or {}),
        }
        # Serialise before touching storage, so a bad `extra` leaves nothing behind.
        text = json.dumps(doc, indent=2, default=json_scalar, allow_nan=True)
        folder = self._join(name, version, symbol)
        final = f"{folder}/{_METADATA}"
        if self.fs.exists(final):
            raise FileExistsError(
                f"{self._uri(folder)} exists; saved versions are immutable, choose another version"
            )
        temp = f"{folder}/.{_METADATA}.{uuid.uuid4().hex}.tmp"
        try:
            self.fs.makedirs(folder, exist_ok=True)
            self.fs.pipe_file(f"{folder}/{_ARRAYS}", blob)
            self.fs.pipe_file(temp, text.encode())
            # The commit: until this move the artifact does not exist for list/load.
            self.fs.mv(temp, final)
        except BaseException:
            self._clean_uncommitted(folder, temp)
            raise
        record = ModelRecord(
            name=name,
            version=version,
            symbol=symbol,
            url=self._uri(folder),
            created_at=created,
            metadata=json.loads(text),
        )
        logger.info("saved %s", record.summary())
        return record

    def _clean_uncommitted(self, folder: str, temp: str) -> None:
        """Remove what a failed save wrote, unless the commit happened after all."""
        try:
            if self.fs.exists(temp):
                self.fs.rm(temp)
            if not self.fs.exists(f"{folder}/{_METADATA}") and self.fs.exists(folder):
                self.fs.rm(folder, recursive=True)
        except Exception:  # the original error matters more than the cleanup's
            logger.warning("could not clean up the failed save at %s", self._uri(folder))

    # -- reads -------------------------------------------------------------------------

    def record(self, name: str, symbol: str, version: str = "latest") -> ModelRecord:
        """Return the record (metadata and URL) of a saved artifact without loading it.

        Raises
        ------
        KeyError
            When no such artifact was saved.
        """
        name = _check_component("name", name)
        symbol = _check_component("symbol", symbol)
        if version == "latest":
            docs = self._read_metadata(
                [p for p in self._committed(name) if p.split("/")[-2] == symbol]
            )
            if not docs:
                raise KeyError(f"no saved model {name!r} for symbol {symbol!r} in {self.url}")
            doc = max(docs, key=lambda d: (d["created_at"], _version_key(d["version"])))
        else:
            path = self._join(name, _check_component("version", version), symbol, _METADATA)
            if not self.fs.exists(path):
                raise KeyError(f"no saved model {name}/{version}/{symbol} in {self.url}")
            doc = self._read_metadata([path])[0]
        url = doc.pop("url")
        return ModelRecord(
            name=doc["name"],
            version=doc["version"],
            symbol=doc["symbol"],
            url=url,
            created_at=pd.Timestamp(doc["created_at"]),
            metadata=doc,
        )

    def load(self, name: str, symbol: str, version: str = "latest") -> RegimeModel:
        """Return the saved model ``name/version/symbol`` (``"latest"``: newest saved).

        Raises
        ------
        KeyError
            When no such artifact was saved.
        ValueError
            When the stored arrays do not match the checksum in the metadata.
        """
        from quantdesk.regimes.model import RegimeModel

        return RegimeModel.from_artifact(*self.load_artifact(name, symbol, version))

    def load_artifact(
        self, name: str, symbol: str, version: str = "latest"
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Return ``(arrays, model metadata)`` of a saved artifact, as its ``to_artifact`` gave.

        For models other than regime models (the forecast models save here too), whose
        class rebuilds itself from the pair.

        Raises
        ------
        KeyError
            When no such artifact was saved.
        ValueError
            When the stored arrays do not match the checksum in the metadata.
        """
        record = self.record(name, symbol, version)
        folder = self._join(record.name, record.version, record.symbol)
        blob = self.fs.cat_file(f"{folder}/{_ARRAYS}")
        if hashlib.sha256(blob).hexdigest() != record.metadata.get("arrays_sha256"):
            raise ValueError(f"{record.url}/{_ARRAYS} does not match its recorded checksum")
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        return arrays, dict(record.metadata["model"])

    def list(self, name: str | None = None) -> pd.DataFrame:
        """Return one row per saved artifact, sorted by name, version and symbol.

        Columns: ``name, version, symbol, created_at, train_start, train_end, n_obs,
        log_likelihood, converged, kind, degenerate, data_fingerprint, url``.
        """
        if name is not None:
            _check_component("name", name)
        docs = self._read_metadata(self._committed(name))
        frame = pd.DataFrame([{c: d.get(c) for c in _LIST_COLUMNS} for d in docs])
        if frame.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in _LIST_COLUMNS})
        for column in ("created_at", "train_start", "train_end"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        order = sorted(
            range(len(frame)),
            key=lambda i: (
                frame["name"].iat[i],
                _version_key(str(frame["version"].iat[i])),
                frame["symbol"].iat[i],
            ),
        )
        return frame.iloc[order].reset_index(drop=True)

    def versions(self, name: str) -> builtins.list[str]:
        """Return the saved versions of ``name``, oldest first (v2 before v10)."""
        _check_component("name", name)
        found = {p.split("/")[-3] for p in self._committed(name)}
        return sorted(found, key=_version_key)
