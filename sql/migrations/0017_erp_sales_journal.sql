-- The daily store sales journal posted to the ERP (issue 15; pipelines/erp/journal.py, pipelines/defs/erp/journal.py,
-- pure grouping in pipelines/domain/erp/journal.py). Portable SQL; see 0001_core.sql for the macros.

-- One row per (business date, store, tax rate) group of the day's POS sales posted to the ERP as one general
-- journal document (`document_number`, the ERP's idempotency key), with the POS figures it was built from: count =
-- distinct transactions, gross = sum(unit price x quantity), discount, tax, net = sum(net amount) (excluding tax).
-- Replaced per business date (`erp_sales_journal`); posted_at is when the document was first posted.
CREATE TABLE erp_sales_postings (
    business_date VARCHAR(10) NOT NULL,
    location_id VARCHAR(64) NOT NULL,
    tax_rate NUMERIC(8, 6) NOT NULL,
    document_number VARCHAR(20) NOT NULL,
    count INTEGER NOT NULL,
    gross NUMERIC(14, 2) NOT NULL,
    discount NUMERIC(14, 2) NOT NULL,
    tax NUMERIC(14, 2) NOT NULL,
    net NUMERIC(14, 2) NOT NULL,
    posted_at VARCHAR(40) NOT NULL
);
CREATE INDEX ix_erp_sales_postings_date ON erp_sales_postings (business_date);
CREATE INDEX ix_erp_sales_postings_document ON erp_sales_postings (document_number);

-- The store sales as the ERP has posted them (read back from its general ledger, `erp_store_sales`), in the
-- reconciliation's `downstream_sales` columns; a document posted by us but absent from the ERP's ledger is absent.
CREATE TABLE erp_store_sales (
    business_date VARCHAR(10) NOT NULL,
    location_id VARCHAR(64) NOT NULL,
    tax_rate NUMERIC(8, 6) NOT NULL,
    count INTEGER NOT NULL,
    gross NUMERIC(14, 2) NOT NULL,
    discount NUMERIC(14, 2) NOT NULL,
    tax NUMERIC(14, 2) NOT NULL,
    net NUMERIC(14, 2) NOT NULL
);
CREATE INDEX ix_erp_store_sales_date ON erp_store_sales (business_date);
