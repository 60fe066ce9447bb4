-- Kiosk orders (Cloudshelf) of each business day, one row per order line: the raw dataset `cloudshelf_orders`
-- (pipelines/defs/kiosk/raw.py, pipelines/domain/kiosk/orders_frame.py), replaced per business date.
CREATE TABLE cloudshelf_orders (
    business_date VARCHAR(10) NOT NULL,
    order_id VARCHAR(255) NOT NULL,
    line_id VARCHAR(255) NOT NULL,
    status VARCHAR(32) NOT NULL,
    location_id VARCHAR(64),
    location_gid VARCHAR(255),
    fulfilment_method VARCHAR(128),
    fulfilment_kind VARCHAR(16) NOT NULL,
    sku VARCHAR(128),
    quantity INTEGER NOT NULL,
    unit_price NUMERIC(14, 2) NOT NULL,
    line_total NUMERIC(14, 2) NOT NULL,
    currency VARCHAR(3),
    third_party_id VARCHAR(64),
    created_at VARCHAR(40) NOT NULL,
    updated_at VARCHAR(40)
);
CREATE INDEX ix_cloudshelf_orders_date ON cloudshelf_orders (business_date);
