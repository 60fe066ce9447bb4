-- Kiosk orders (Cloudshelf) as the order flows handle them (pipelines/store/kiosk_orders.py,
-- pipelines/order_flows/kiosk.py). Portable SQL; see 0001_core.sql for the macros.

-- One row per Cloudshelf order the flow has read: what it is (take_home: the customer left with the goods, the
-- store's stock is deducted through the stock sync; delivery: endless aisle, a Centra order), the store, the
-- Centra order made for it, and what was last sent back to Cloudshelf (`upsertOrders`: sent_state is the JSON of
-- status, newThirdPartyId and the lines' customAttributes), so only a change is sent. A blocked order keeps the
-- problem and the settings' fingerprint it was blocked under: a run with other settings tries it again.
CREATE TABLE kiosk_orders (
    order_id VARCHAR(255) NOT NULL PRIMARY KEY,
    kind VARCHAR(16) NOT NULL,
    location_id VARCHAR(64),
    fulfilment_method VARCHAR(128),
    kiosk_status VARCHAR(32),
    centra_order_ref VARCHAR(64),
    centra_market_id VARCHAR(64),
    movements INTEGER NOT NULL,
    sent_status VARCHAR(32),
    sent_state TEXT,
    sent_at VARCHAR(40),
    blocked_problem VARCHAR(64),
    blocked_fingerprint VARCHAR(64),
    first_seen_at VARCHAR(40) NOT NULL,
    updated_at VARCHAR(40) NOT NULL
);
CREATE INDEX ix_kiosk_orders_centra ON kiosk_orders (centra_order_ref);
CREATE INDEX ix_kiosk_orders_blocked ON kiosk_orders (blocked_problem);

-- The webhooks registered with Cloudshelf (`registerWebhook` is not idempotent there: a second registration of
-- the same subject and URL would deliver everything twice), one row per (subject, url).
CREATE TABLE kiosk_webhooks (
    subject VARCHAR(64) NOT NULL,
    url_hash VARCHAR(64) NOT NULL,
    webhook_id VARCHAR(255),
    registered_at VARCHAR(40) NOT NULL,
    CONSTRAINT pk_kiosk_webhooks PRIMARY KEY (subject, url_hash)
);
