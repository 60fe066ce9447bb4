-- When NewStore's catalog first accepted each SKU (pipelines/store/catalog_export.py): the daily POS catalog holds
-- the SKUs accepted by the day's end, whatever happened to them since (held back or refused on a later send,
-- NewStore keeps what it took).
ALTER TABLE catalog_export_skus ADD COLUMN accepted_at VARCHAR(40);
