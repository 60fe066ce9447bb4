-- The ERP order-to-cash flows (issue 15): commerce orders posted to the ERP as sales orders, and the ERP's
-- shipments applied back to the commerce platform (pipelines/store/erp_orders.py, pipelines/order_flows/erp.py).
-- Portable SQL; see 0001_core.sql for the macros.

-- One row per commerce order the `erp_order` flow planned: posted (the ERP sales order made for it, found again by
-- its external document number = order_ref; erp_orders_found > 1: the ERP holds duplicates, the reconciliation
-- reports them) or blocked (the problems, and the mapping fingerprint it was blocked under: a flows run under
-- another mapping sets it pending again). line_map is JSON: [{"sequence": 10000, "line_id": "<commerce line>"
-- (null: the shipping line), "per_unit": <ERP units per commerce unit>}], how ERP shipments map back.
CREATE TABLE erp_order_postings (
    order_ref VARCHAR(64) NOT NULL PRIMARY KEY,
    status VARCHAR(16) NOT NULL,
    erp_order_id VARCHAR(64),
    erp_order_number VARCHAR(64),
    erp_orders_found INTEGER NOT NULL,
    customer_number VARCHAR(64),
    currency VARCHAR(8),
    total_including_tax NUMERIC(14, 2),
    posted_at VARCHAR(40),
    mapping_fingerprint VARCHAR(64) NOT NULL,
    line_map TEXT,
    blocked_problems VARCHAR(255),
    first_seen_at VARCHAR(40) NOT NULL,
    updated_at VARCHAR(40) NOT NULL
);
CREATE INDEX ix_erp_order_postings_status ON erp_order_postings (status);
CREATE INDEX ix_erp_order_postings_erp ON erp_order_postings (erp_order_number);

-- One row per ERP shipment the `erp_shipment` flow applied: the commerce shipment it became (null: it completed
-- no commerce unit, e.g. part of a bundle) and the lines it shipped (JSON [[line id, units], ...]).
CREATE TABLE erp_shipments_applied (
    shipment_id VARCHAR(64) NOT NULL PRIMARY KEY,
    shipment_number VARCHAR(64) NOT NULL,
    order_ref VARCHAR(64) NOT NULL,
    erp_order_number VARCHAR(64),
    commerce_shipment_id VARCHAR(64),
    tracking_number VARCHAR(255),
    carrier VARCHAR(128),
    lines TEXT NOT NULL,
    applied_at VARCHAR(40) NOT NULL
);
CREATE INDEX ix_erp_shipments_applied_order ON erp_shipments_applied (order_ref);

-- Text cursors of the ERP polls (name -> value), e.g. `erp_shipments`: the newest lastModifiedDateTime seen.
CREATE TABLE erp_cursors (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    value VARCHAR(64) NOT NULL,
    updated_at VARCHAR(40) NOT NULL
);
