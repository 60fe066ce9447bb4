-- Restatements of reconciled business days (late events landed after the day was reconciled; see
-- pipelines/defs/reconciliation/restatement.py). Portable SQL; see 0001_core.sql for the macros.

-- The store sales totals each reconciliation of a day was computed from (replaced with the day's findings):
-- what the next restatement of the day compares its own totals with.
CREATE TABLE reconciliation_sales_totals (
    business_date VARCHAR(10) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    currency VARCHAR(3),
    lines INTEGER NOT NULL,
    units INTEGER NOT NULL,
    net_amount NUMERIC(16, 2) NOT NULL
);
CREATE INDEX ix_reconciliation_sales_totals_date ON reconciliation_sales_totals (business_date);

-- What each restatement of a day changed, one row a change (appended: restatement_no 1, 2, ... per day):
-- change = total (the day's findings and value at risk before and after; always one), added, resolved,
-- changed (findings, value at risk in the base currency) or sales (store sales or returns of a currency:
-- lines as count_*, net amount as value_*).
CREATE TABLE reconciliation_restatements (
    business_date VARCHAR(10) NOT NULL,
    restatement_no INTEGER NOT NULL,
    restated_at VARCHAR(40) NOT NULL,
    run_id VARCHAR(64),
    reason TEXT,
    change VARCHAR(16) NOT NULL,
    finding_type VARCHAR(64),
    location_id VARCHAR(64),
    sku VARCHAR(128),
    order_ref VARCHAR(64),
    transaction_id VARCHAR(64),
    currency VARCHAR(3),
    count_before INTEGER NOT NULL,
    count_after INTEGER NOT NULL,
    value_before NUMERIC(16, 2) NOT NULL,
    value_after NUMERIC(16, 2) NOT NULL,
    detail TEXT
);
CREATE INDEX ix_reconciliation_restatements_date ON reconciliation_restatements (business_date, restatement_no);
