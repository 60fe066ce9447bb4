-- Cloudshelf kiosks: what was published to the kiosk catalogue and its per-location stock levels, and the daily
-- SKU audit (pipelines/store/kiosk.py, pipelines/kiosk/publish.py, assets kiosk_catalog, kiosk_stock_levels,
-- kiosk_sku_audit). Portable SQL; see 0001_core.sql for the macros.

-- Per (kiosk location, SKU): the quantity last published to Cloudshelf (upsertStockLevels) and when. Only a
-- quantity that differs from this row is sent again.
CREATE TABLE kiosk_stock_levels (
    location_id VARCHAR(64) NOT NULL,
    sku VARCHAR(128) NOT NULL,
    quantity INTEGER NOT NULL,
    published_at VARCHAR(40) NOT NULL,
    PRIMARY KEY (location_id, sku)
);
CREATE INDEX ix_kiosk_stock_levels_sku ON kiosk_stock_levels (sku);

-- Per SKU: the variant as last published (upsertProducts + upsertProductVariants): its product, the fingerprint
-- of the inputs sent, whether it was available to purchase. A SKU is sent again when its fingerprint changes.
CREATE TABLE kiosk_catalog (
    sku VARCHAR(128) NOT NULL PRIMARY KEY,
    product_id VARCHAR(64) NOT NULL,
    fingerprint VARCHAR(64) NOT NULL,
    purchasable {{BOOL}} NOT NULL,
    published_at VARCHAR(40) NOT NULL
);

-- Per kiosk location: the location as last published (upsertLocations).
CREATE TABLE kiosk_locations (
    location_id VARCHAR(64) NOT NULL PRIMARY KEY,
    fingerprint VARCHAR(64) NOT NULL,
    published_at VARCHAR(40) NOT NULL
);

-- The daily SKU audit (asset kiosk_sku_audit): one row per finding, replaced per business date.
CREATE TABLE kiosk_sku_audit (
    business_date VARCHAR(10) NOT NULL,
    finding_type VARCHAR(64) NOT NULL,
    severity VARCHAR(16) NOT NULL,
    owner_team VARCHAR(32) NOT NULL,
    sku VARCHAR(255) NOT NULL,
    detail TEXT NOT NULL,
    kiosk_variant_id VARCHAR(255),
    playbook TEXT NOT NULL,
    audited_at VARCHAR(40) NOT NULL
);
CREATE INDEX ix_kiosk_sku_audit_date ON kiosk_sku_audit (business_date, finding_type);
