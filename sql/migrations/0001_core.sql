-- Core schema of the store of record. Portable SQL for SQLite and PostgreSQL; {{ID}}, {{BOOL}} and
-- {{BIGINT}} are expanded per dialect by pipelines/store/migrate.py. Times are ISO-8601 UTC text
-- ("2026-11-24T09:15:02.123456Z"), business dates are "YYYY-MM-DD" in the business timezone.

-- Every raw event received by the intake, exactly once per (source, dedup_key).
CREATE TABLE inbox_events (
    id {{ID}},
    source VARCHAR(32) NOT NULL,
    dedup_key VARCHAR(255) NOT NULL,
    event_name VARCHAR(128) NOT NULL,
    event_time VARCHAR(40),
    received_at VARCHAR(40) NOT NULL,
    payload TEXT NOT NULL,
    CONSTRAINT uq_inbox_source_key UNIQUE (source, dedup_key)
);
CREATE INDEX ix_inbox_name_time ON inbox_events (event_name, event_time);

-- Requests the intake refused (bad signature, bad api key, malformed body): kept, never lost.
CREATE TABLE intake_quarantine (
    id {{ID}},
    source VARCHAR(32) NOT NULL,
    received_at VARCHAR(40) NOT NULL,
    reason VARCHAR(255) NOT NULL,
    status_code INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body TEXT NOT NULL
);

-- Typed exception records: every problem ops must see, with owner, severity and playbook.
CREATE TABLE exceptions (
    id {{ID}},
    exception_key VARCHAR(255) NOT NULL,
    exception_type VARCHAR(64) NOT NULL,
    severity VARCHAR(16) NOT NULL,
    owner_team VARCHAR(32) NOT NULL,
    source VARCHAR(64) NOT NULL,
    business_date VARCHAR(10),
    location_id VARCHAR(64),
    sku VARCHAR(128),
    message TEXT NOT NULL,
    playbook TEXT NOT NULL,
    payload TEXT,
    status VARCHAR(16) NOT NULL,
    first_seen_at VARCHAR(40) NOT NULL,
    last_seen_at VARCHAR(40) NOT NULL,
    occurrences INTEGER NOT NULL,
    CONSTRAINT uq_exceptions_key UNIQUE (exception_key)
);
CREATE INDEX ix_exceptions_status ON exceptions (status, exception_type);

-- POS (NewStore) store sales and returns at line level, built from the landed event stream.
CREATE TABLE pos_sale_lines (
    business_date VARCHAR(10) NOT NULL,
    transaction_id VARCHAR(64) NOT NULL,
    line_no INTEGER NOT NULL,
    kind VARCHAR(8) NOT NULL,
    fulfillment_node_id VARCHAR(64) NOT NULL,
    location_id VARCHAR(64),
    sku VARCHAR(128) NOT NULL,
    ean VARCHAR(32),
    sku_known {{BOOL}} NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price NUMERIC(14, 2) NOT NULL,
    discount NUMERIC(14, 2) NOT NULL,
    tax NUMERIC(14, 2) NOT NULL,
    net_amount NUMERIC(14, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    event_time VARCHAR(40) NOT NULL,
    original_order_ref VARCHAR(64),
    original_transaction_id VARCHAR(64),
    source_event VARCHAR(255) NOT NULL
);
CREATE INDEX ix_pos_sale_lines_date ON pos_sale_lines (business_date);

-- Click-and-collect pickups completed in a store (NewStore fulfillment_request.items_completed of an
-- in-store-pickup order), with the online order they belong to.
CREATE TABLE pos_pickups (
    business_date VARCHAR(10) NOT NULL,
    fulfillment_request_id VARCHAR(64) NOT NULL,
    order_id VARCHAR(64) NOT NULL,
    order_number VARCHAR(64),
    fulfillment_node_id VARCHAR(64) NOT NULL,
    location_id VARCHAR(64),
    service_level VARCHAR(64) NOT NULL,
    items INTEGER NOT NULL,
    completed_at VARCHAR(40) NOT NULL,
    source_event VARCHAR(255) NOT NULL
);
CREATE INDEX ix_pos_pickups_date ON pos_pickups (business_date);

-- POS stock per location and SKU (snapshot at snapshot_at, labelled with the business date).
CREATE TABLE pos_stock_snapshot (
    business_date VARCHAR(10) NOT NULL,
    snapshot_at VARCHAR(40) NOT NULL,
    fulfillment_node_id VARCHAR(64) NOT NULL,
    location_id VARCHAR(64),
    sku VARCHAR(128) NOT NULL,
    on_hand INTEGER NOT NULL,
    atp INTEGER NOT NULL,
    allocations INTEGER NOT NULL,
    safety_stock INTEGER NOT NULL
);
CREATE INDEX ix_pos_stock_date ON pos_stock_snapshot (business_date);

-- The POS catalog: every SKU the POS stocks or sells (NewStore product_id and identifiers).
CREATE TABLE pos_catalog (
    business_date VARCHAR(10) NOT NULL,
    sku VARCHAR(128) NOT NULL,
    product_id VARCHAR(128) NOT NULL,
    locations INTEGER NOT NULL,
    on_hand_total INTEGER NOT NULL
);
CREATE INDEX ix_pos_catalog_date ON pos_catalog (business_date);

-- Centra orders (headers) and their lines, by the business date of createdAt.
CREATE TABLE centra_orders (
    business_date VARCHAR(10) NOT NULL,
    order_id VARCHAR(64) NOT NULL,
    order_number {{BIGINT}} NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at VARCHAR(40) NOT NULL,
    store_id INTEGER,
    market_id INTEGER,
    pricelist_id INTEGER,
    currency VARCHAR(3) NOT NULL,
    country VARCHAR(2),
    currency_base_rate NUMERIC(18, 8),
    email VARCHAR(255),
    external_id VARCHAR(255),
    grand_total NUMERIC(14, 2) NOT NULL,
    tax_total NUMERIC(14, 2) NOT NULL,
    discount_total NUMERIC(14, 2) NOT NULL,
    shipping_total NUMERIC(14, 2) NOT NULL,
    line_count INTEGER NOT NULL
);
CREATE INDEX ix_centra_orders_date ON centra_orders (business_date);

CREATE TABLE centra_order_lines (
    business_date VARCHAR(10) NOT NULL,
    order_number {{BIGINT}} NOT NULL,
    line_id VARCHAR(64) NOT NULL,
    sku VARCHAR(128) NOT NULL,
    ean VARCHAR(32),
    product_number VARCHAR(64),
    quantity INTEGER NOT NULL,
    cancelled_quantity INTEGER NOT NULL,
    returned_quantity INTEGER NOT NULL,
    unit_price NUMERIC(14, 2) NOT NULL,
    unit_original_price NUMERIC(14, 2) NOT NULL,
    discount_percent NUMERIC(7, 3) NOT NULL,
    tax_percent NUMERIC(7, 3) NOT NULL,
    line_value NUMERIC(14, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL
);
CREATE INDEX ix_centra_order_lines_date ON centra_order_lines (business_date);

-- Centra returns and their refunds, by the business date of the return's createdAt.
CREATE TABLE centra_returns (
    business_date VARCHAR(10) NOT NULL,
    return_id VARCHAR(64) NOT NULL,
    order_number {{BIGINT}} NOT NULL,
    created_at VARCHAR(40) NOT NULL,
    status VARCHAR(32) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    grand_total NUMERIC(14, 2) NOT NULL,
    tax_total NUMERIC(14, 2) NOT NULL,
    refunded {{BOOL}} NOT NULL,
    refund_amount NUMERIC(14, 2) NOT NULL,
    refunded_at VARCHAR(40),
    return_warehouse_id INTEGER,
    external_id VARCHAR(255),
    line_count INTEGER NOT NULL
);
CREATE INDEX ix_centra_returns_date ON centra_returns (business_date);

CREATE TABLE centra_return_lines (
    business_date VARCHAR(10) NOT NULL,
    return_id VARCHAR(64) NOT NULL,
    order_number {{BIGINT}} NOT NULL,
    line_id VARCHAR(64) NOT NULL,
    sku VARCHAR(128) NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price NUMERIC(14, 2) NOT NULL,
    line_value NUMERIC(14, 2) NOT NULL,
    tax_percent NUMERIC(7, 3) NOT NULL
);
CREATE INDEX ix_centra_return_lines_date ON centra_return_lines (business_date);

-- Centra stock per warehouse and size (snapshot).
CREATE TABLE centra_stock_snapshot (
    business_date VARCHAR(10) NOT NULL,
    snapshot_at VARCHAR(40) NOT NULL,
    warehouse_id INTEGER NOT NULL,
    location_id VARCHAR(64),
    size_id {{BIGINT}} NOT NULL,
    sku VARCHAR(128) NOT NULL,
    physical INTEGER NOT NULL,
    allocated INTEGER NOT NULL,
    free_to_allocate INTEGER NOT NULL,
    demand INTEGER NOT NULL
);
CREATE INDEX ix_centra_stock_date ON centra_stock_snapshot (business_date);

-- The Centra catalog: product -> variant -> size with SKU, EAN and status.
CREATE TABLE centra_catalog (
    business_date VARCHAR(10) NOT NULL,
    size_id {{BIGINT}} NOT NULL,
    sku VARCHAR(128) NOT NULL,
    ean VARCHAR(32),
    product_number VARCHAR(64) NOT NULL,
    product_name VARCHAR(255) NOT NULL,
    product_status VARCHAR(32) NOT NULL,
    variant_number VARCHAR(64) NOT NULL,
    variant_name VARCHAR(255) NOT NULL,
    size_name VARCHAR(64) NOT NULL,
    is_active {{BOOL}} NOT NULL
);
CREATE INDEX ix_centra_catalog_date ON centra_catalog (business_date);

-- Centra's own stock-change ledger (stockChangeConnection) for the business day.
CREATE TABLE centra_stock_changes (
    business_date VARCHAR(10) NOT NULL,
    change_id VARCHAR(64) NOT NULL,
    created_at VARCHAR(40) NOT NULL,
    warehouse_id INTEGER NOT NULL,
    location_id VARCHAR(64),
    size_id {{BIGINT}},
    sku VARCHAR(128) NOT NULL,
    quantity INTEGER NOT NULL,
    description TEXT NOT NULL
);
CREATE INDEX ix_centra_stock_changes_date ON centra_stock_changes (business_date);

-- Stock-affecting POS events decoded from the inbox: deltas (sale, return restock, receipt,
-- adjustment, transfer) and absolute counts, one row per (event, SKU).
CREATE TABLE pos_stock_movements (
    business_date VARCHAR(10) NOT NULL,
    movement_key VARCHAR(255) NOT NULL,
    event_name VARCHAR(128) NOT NULL,
    event_time VARCHAR(40) NOT NULL,
    logical_timestamp {{BIGINT}},
    fulfillment_node_id VARCHAR(64) NOT NULL,
    location_id VARCHAR(64),
    sku VARCHAR(128) NOT NULL,
    sku_known {{BOOL}} NOT NULL,
    movement_type VARCHAR(16) NOT NULL,
    quantity INTEGER NOT NULL,
    source_event VARCHAR(255) NOT NULL
);
CREATE INDEX ix_pos_stock_movements_date ON pos_stock_movements (business_date);
