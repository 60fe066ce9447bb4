-- Store transactions known to exist (a sibling event landed) whose own event did not: each is fetched from
-- NewStore's API and landed as that event (pipelines/store/recoveries.py), or stays reported as missing.
-- status: waiting (due at due_at: its own event may still come), arrived (it came; nothing to do),
-- recovered (fetched and landed), unrecoverable (NewStore could not give it: a finding for finance).
CREATE TABLE pos_transaction_recoveries (
    kind VARCHAR(16) NOT NULL,
    transaction_id VARCHAR(128) NOT NULL,
    order_id VARCHAR(128),
    status VARCHAR(16) NOT NULL,
    evidence TEXT NOT NULL,
    fulfillment_node_id VARCHAR(64),
    amount DOUBLE PRECISION,
    currency VARCHAR(8),
    evidence_time VARCHAR(40),
    first_seen_at VARCHAR(40) NOT NULL,
    due_at VARCHAR(40) NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    resolved_at VARCHAR(40),
    event_time VARCHAR(40),
    PRIMARY KEY (kind, transaction_id)
);
CREATE INDEX ix_pos_recoveries_status_due ON pos_transaction_recoveries (status, due_at);
