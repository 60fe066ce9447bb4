-- The single customer view between the commerce platform and the store system (pipelines/store/customers.py,
-- pipelines/customers/sync.py, asset customer_links). Portable SQL; see 0001_core.sql for the macros.

-- One row per customer known on both platforms: the pair of ids, the e-mail they were matched on, each side's
-- version when last synced (commercetools: the resource version; NewStore: the profile's updated_at) and the
-- synced field values then (JSON, normalised) with their hash. A pass skips a pair whose versions are unchanged,
-- and the values are the baseline that tells an owner's change from an edit on the wrong side.
CREATE TABLE customer_links (
    link_id {{ID}},
    commerce_id VARCHAR(128) NOT NULL,
    store_id VARCHAR(128) NOT NULL,
    email VARCHAR(320) NOT NULL,
    commerce_version VARCHAR(64),
    store_version VARCHAR(64),
    synced_values TEXT NOT NULL,
    synced_hash VARCHAR(64) NOT NULL,
    linked_at VARCHAR(40) NOT NULL,
    synced_at VARCHAR(40) NOT NULL
);
CREATE UNIQUE INDEX ux_customer_links_commerce ON customer_links (commerce_id);
CREATE UNIQUE INDEX ux_customer_links_store ON customer_links (store_id);
CREATE INDEX ix_customer_links_email ON customer_links (email);

-- Per side ("commerce", "store"): the modification time up to which changes were read.
CREATE TABLE customer_sync_cursors (
    side VARCHAR(16) NOT NULL PRIMARY KEY,
    cursor_at VARCHAR(40),
    updated_at VARCHAR(40) NOT NULL
);
