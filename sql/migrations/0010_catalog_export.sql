-- The catalog export from Centra to NewStore's Import API (pipelines/store/catalog_export.py, asset
-- newstore_catalog_export). Portable SQL; see 0001_core.sql for the macros.

-- Per SKU: the content fingerprint last sent to NewStore and what became of it.
-- status: sent (in a job not finished yet), accepted, rejected (NewStore refused an entity of the SKU),
-- held (not sent: Centra's data lacks what NewStore needs; fingerprint stays the last sent one).
CREATE TABLE catalog_export_skus (
    sku VARCHAR(128) NOT NULL PRIMARY KEY,
    fingerprint VARCHAR(64),
    status VARCHAR(16) NOT NULL,
    reason TEXT,
    import_id VARCHAR(64),
    last_sent_at VARCHAR(40),
    updated_at VARCHAR(40) NOT NULL
);
CREATE INDEX ix_catalog_export_skus_status ON catalog_export_skus (status);

-- One row per import job: mode (incremental, full), NewStore's final state and the counts.
CREATE TABLE catalog_export_jobs (
    import_id VARCHAR(64) NOT NULL PRIMARY KEY,
    run_id VARCHAR(64),
    mode VARCHAR(16) NOT NULL,
    created_at VARCHAR(40) NOT NULL,
    completed_at VARCHAR(40),
    state VARCHAR(16) NOT NULL,
    reason TEXT,
    products_sent INTEGER NOT NULL,
    prices_sent INTEGER NOT NULL,
    skus_rejected INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ix_catalog_export_jobs_created ON catalog_export_jobs (created_at);
