-- Stock sync (store POS -> Centra store warehouses). Portable SQL; see 0001_core.sql for the macros
-- and time formats. docs/stock-sync.md explains the protocol these tables carry.

-- Every stock movement decoded from the inbox, queued per Centra warehouse and SKU.
-- status: pending -> in_flight (locked to a batch) -> done | superseded (absorbed by a later count)
--         failed (permanent Centra rejection; replayable) | unmapped (unknown SKU or location;
--         replayable after the estate fix) | skipped (location not synced, e.g. the DC).
CREATE TABLE stock_sync_movements (
    id {{ID}},
    movement_key VARCHAR(255) NOT NULL,
    inbox_event_id {{BIGINT}} NOT NULL,
    event_name VARCHAR(128) NOT NULL,
    event_time VARCHAR(40) NOT NULL,
    logical_timestamp {{BIGINT}},
    received_at VARCHAR(40) NOT NULL,
    fulfillment_node_id VARCHAR(64) NOT NULL,
    location_id VARCHAR(64),
    warehouse_id INTEGER,
    sku VARCHAR(128) NOT NULL,
    movement_type VARCHAR(16) NOT NULL,
    quantity INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL,
    batch_id VARCHAR(64),
    isolate INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    queued_at VARCHAR(40) NOT NULL,
    applied_at VARCHAR(40),
    error TEXT,
    CONSTRAINT uq_stock_sync_movement_key UNIQUE (movement_key)
);
CREATE INDEX ix_ssm_status ON stock_sync_movements (status, warehouse_id, sku);
CREATE INDEX ix_ssm_key_time ON stock_sync_movements (warehouse_id, sku, event_time);
CREATE INDEX ix_ssm_batch ON stock_sync_movements (batch_id);
CREATE INDEX ix_ssm_inbox ON stock_sync_movements (inbox_event_id);
CREATE INDEX ix_ssm_applied ON stock_sync_movements (applied_at);

-- One row per Centra mutation (changeStock removals, changeStock additions or setStock for one
-- warehouse). The description carries the batch id, so after a crash the batch is looked up in
-- Centra's stockChangeConnection before anything is resent.
-- status: prepared (written before sending) -> applied | failed | released (not sent; movements back to pending)
CREATE TABLE stock_sync_batches (
    batch_id VARCHAR(64) NOT NULL PRIMARY KEY,
    description VARCHAR(255) NOT NULL,
    run_id VARCHAR(64),
    warehouse_id INTEGER NOT NULL,
    operation VARCHAR(8) NOT NULL,
    lines TEXT NOT NULL,
    plan TEXT NOT NULL,
    movements INTEGER NOT NULL,
    critical INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    recovered INTEGER NOT NULL,
    created_at VARCHAR(40) NOT NULL,
    sent_at VARCHAR(40),
    confirmed_at VARCHAR(40),
    centra_change_ids TEXT,
    error TEXT,
    CONSTRAINT uq_ssb_description UNIQUE (description)
);
CREATE INDEX ix_ssb_status ON stock_sync_batches (status, created_at);

-- What was applied in Centra: one row per (batch, SKU), written in the same transaction as the
-- movements are marked done. quantity: signed delta (remove/add) or the absolute quantity (set).
CREATE TABLE stock_sync_ledger (
    id {{ID}},
    batch_id VARCHAR(64) NOT NULL,
    warehouse_id INTEGER NOT NULL,
    sku VARCHAR(128) NOT NULL,
    operation VARCHAR(8) NOT NULL,
    quantity INTEGER NOT NULL,
    movements INTEGER NOT NULL,
    first_event_time VARCHAR(40) NOT NULL,
    last_event_time VARCHAR(40) NOT NULL,
    applied_at VARCHAR(40) NOT NULL,
    CONSTRAINT uq_ssl_batch_sku UNIQUE (batch_id, sku)
);
CREATE INDEX ix_ssl_key ON stock_sync_ledger (warehouse_id, sku, applied_at);
CREATE INDEX ix_ssl_applied ON stock_sync_ledger (applied_at);

-- The latest absolute count applied per (warehouse, SKU): movements older than it are absorbed.
CREATE TABLE stock_sync_watermarks (
    warehouse_id INTEGER NOT NULL,
    sku VARCHAR(128) NOT NULL,
    event_time VARCHAR(40) NOT NULL,
    logical_timestamp {{BIGINT}},
    quantity INTEGER NOT NULL,
    movement_id {{BIGINT}} NOT NULL,
    applied_at VARCHAR(40) NOT NULL,
    PRIMARY KEY (warehouse_id, sku)
);

-- Named cursors (e.g. "inbox": every inbox event up to this id has been decoded).
CREATE TABLE stock_sync_cursors (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    value {{BIGINT}} NOT NULL,
    updated_at VARCHAR(40) NOT NULL
);

-- One row per sync run (or benchmark/CLI invocation): what it did and the lag it achieved.
CREATE TABLE stock_sync_runs (
    id {{ID}},
    run_id VARCHAR(64),
    kind VARCHAR(16) NOT NULL,
    started_at VARCHAR(40) NOT NULL,
    finished_at VARCHAR(40) NOT NULL,
    passes INTEGER NOT NULL,
    ingested INTEGER NOT NULL,
    applied INTEGER NOT NULL,
    superseded INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    mutations INTEGER NOT NULL,
    recovered INTEGER NOT NULL,
    deferred INTEGER NOT NULL,
    rate_limited INTEGER NOT NULL,
    budget_used INTEGER NOT NULL,
    budget_available INTEGER NOT NULL,
    pending_after INTEGER NOT NULL,
    lag_p50_s DOUBLE PRECISION,
    lag_p95_s DOUBLE PRECISION,
    lag_max_s DOUBLE PRECISION
);
CREATE INDEX ix_ssr_started ON stock_sync_runs (started_at);
