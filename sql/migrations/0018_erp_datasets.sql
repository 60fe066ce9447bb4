-- The ERP's datasets (issue 15; pipelines/defs/erp/datasets.py), read from Business Central (or another ERP behind
-- pipelines.domain.erp.ports.ErpSystem) and replaced per business date. The daily reconciliation compares them with
-- the commerce platform's datasets (pipelines/domain/reconciliation/rules/erp.py). Portable SQL; see 0001_core.sql
-- for the macros. Money is tax included, in the ERP document's currency ("" = the ERP company's local currency).

-- The ERP's sales orders whose order date is the business date (asset erp_sales_orders). external_ref: the
-- commerce order's reference the order flow wrote (Business Central: externalDocumentNumber).
CREATE TABLE erp_sales_orders (
    business_date VARCHAR(10) NOT NULL,
    order_id VARCHAR(64) NOT NULL,
    order_number VARCHAR(64) NOT NULL,
    external_ref VARCHAR(128),
    currency VARCHAR(10),
    customer_number VARCHAR(64),
    status VARCHAR(32),
    total_including_tax NUMERIC(14, 2) NOT NULL,
    total_tax NUMERIC(14, 2) NOT NULL,
    discount_amount NUMERIC(14, 2) NOT NULL,
    line_count INTEGER NOT NULL
);
CREATE INDEX ix_erp_sales_orders_date ON erp_sales_orders (business_date, external_ref);

-- The ERP's posted shipments whose posting date is the business date (asset erp_shipments). units: the shipped
-- item units; value: their value from the ERP order's lines (tax included, after line discounts); in_commerce:
-- whether the commerce platform showed the shipment when the day was landed (a completed shipment carrying the
-- fulfilment flow's marker `erp:<shipment number>`, or completed shipments covering the ERP's shipped units).
CREATE TABLE erp_shipments (
    business_date VARCHAR(10) NOT NULL,
    shipment_id VARCHAR(64) NOT NULL,
    shipment_number VARCHAR(64) NOT NULL,
    order_number VARCHAR(64),
    external_ref VARCHAR(128),
    units INTEGER NOT NULL,
    value NUMERIC(14, 2) NOT NULL,
    currency VARCHAR(10),
    tracking_number VARCHAR(255),
    carrier VARCHAR(64),
    in_commerce {{BOOL}} NOT NULL,
    checked_at VARCHAR(40) NOT NULL
);
CREATE INDEX ix_erp_shipments_date ON erp_shipments (business_date, external_ref);

-- The ERP's on-hand per commerce SKU (bundles excluded: their stock is their components'), taken at the business
-- day's cut-off with the other stock snapshots (asset erp_stock_snapshot); snapshot_at: when it was read.
CREATE TABLE erp_stock_snapshot (
    business_date VARCHAR(10) NOT NULL,
    snapshot_at VARCHAR(40) NOT NULL,
    sku VARCHAR(128) NOT NULL,
    item_number VARCHAR(64) NOT NULL,
    variant_code VARCHAR(64),
    on_hand INTEGER NOT NULL
);
CREATE INDEX ix_erp_stock_snapshot_date ON erp_stock_snapshot (business_date, sku);

-- Every ERP item and item variant (variant_code NULL: the item itself), a snapshot labelled with the business
-- date (asset erp_items): the reconciliation's mapping orphans are commerce SKUs without one.
CREATE TABLE erp_items (
    business_date VARCHAR(10) NOT NULL,
    number VARCHAR(64) NOT NULL,
    variant_code VARCHAR(64)
);
CREATE INDEX ix_erp_items_date ON erp_items (business_date);
