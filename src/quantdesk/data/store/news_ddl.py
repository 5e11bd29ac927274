"""The news tables' DDL, apart from NewsStore so that readers of the layout need no store.

``quantdesk.data.store.export`` describes a table the store has not created yet from
this DDL; importing it from ``news`` would close an import circle through the market.
"""

NEWS_DDL = """
CREATE TABLE IF NOT EXISTS news (
    content_hash VARCHAR PRIMARY KEY,
    id VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL,
    headline VARCHAR NOT NULL,
    body VARCHAR,
    symbols VARCHAR[] NOT NULL,
    ingest_id BIGINT
);
CREATE TABLE IF NOT EXISTS news_scores (
    content_hash VARCHAR NOT NULL,
    model_id VARCHAR NOT NULL,
    model_revision VARCHAR NOT NULL,
    quantization VARCHAR NOT NULL,
    positive DOUBLE NOT NULL,
    negative DOUBLE NOT NULL,
    neutral DOUBLE NOT NULL,
    score DOUBLE NOT NULL,
    scored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (content_hash, model_id, model_revision, quantization)
);
"""
