-- Order flows written to the commerce platform (pipelines/defs/flows): one row per unit of work, keyed by
-- flow and the triggering object (a NewStore return id, a Centra order number). Portable SQL; see
-- 0001_core.sql for the macros.
-- status: pending (to run at due_at), done (the platform is in the state the flow wants), skipped (not this
-- flow's business, e.g. an order without a pickup shipping method), exception (an exception record says why:
-- exception_key; a fix and a new trigger, or a replay, sets it pending again).
-- last_inbox_id: the newest inbox event that triggered it (a redelivered or re-read event does not re-run it).
-- trigger_time: when the triggering event happened at its source (published); done_at: when the flow's write
-- reached the platform: the flow's latency is done_at - trigger_time.
CREATE TABLE order_flow_work (
    flow VARCHAR(32) NOT NULL,
    work_key VARCHAR(128) NOT NULL,
    status VARCHAR(16) NOT NULL,
    trigger_event VARCHAR(128) NOT NULL,
    trigger_time VARCHAR(40),
    last_inbox_id {{BIGINT}} NOT NULL DEFAULT 0,
    first_seen_at VARCHAR(40) NOT NULL,
    due_at VARCHAR(40) NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    done_at VARCHAR(40),
    outcome TEXT,
    exception_key VARCHAR(255),
    last_error TEXT,
    updated_at VARCHAR(40) NOT NULL,
    PRIMARY KEY (flow, work_key)
);
CREATE INDEX ix_order_flow_work_status_due ON order_flow_work (status, due_at);
