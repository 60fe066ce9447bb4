-- The stock sync's own rate buckets (its share of Centra's limits) and a 429's block, shared by every
-- sync run and replica (pipelines/sync/rate_state.py). Levels at `at`, in epoch seconds; the row
-- ('BLOCKED', 0) keeps in `level` the epoch second before which nothing may be sent.
CREATE TABLE stock_sync_rate_buckets (
    kind VARCHAR(32) NOT NULL,
    interval_s DOUBLE PRECISION NOT NULL,
    cap DOUBLE PRECISION NOT NULL,
    rate DOUBLE PRECISION NOT NULL,
    level DOUBLE PRECISION NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (kind, interval_s)
);
-- The share of Centra's hourly mutation quota a sync run used over its lifetime.
ALTER TABLE stock_sync_runs ADD COLUMN quota_share DOUBLE PRECISION;
