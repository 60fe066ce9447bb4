-- Daily reconciliation outputs read by finance (one business date per partition).

CREATE TABLE reconciliation_findings (
    business_date VARCHAR(10) NOT NULL,
    finding_type VARCHAR(64) NOT NULL,
    severity VARCHAR(8) NOT NULL,
    owner_team VARCHAR(32) NOT NULL,
    location_id VARCHAR(64),
    sku VARCHAR(128),
    order_ref VARCHAR(64),
    transaction_id VARCHAR(64),
    tax_rate NUMERIC(7, 4),
    quantity_pos INTEGER,
    quantity_commerce INTEGER,
    quantity_diff INTEGER,
    amount_pos NUMERIC(14, 2),
    amount_commerce NUMERIC(14, 2),
    amount_diff NUMERIC(14, 2),
    currency VARCHAR(3),
    value_at_risk NUMERIC(14, 2) NOT NULL,
    value_at_risk_base NUMERIC(14, 2) NOT NULL,
    risk_rank INTEGER NOT NULL,
    playbook TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX ix_reconciliation_findings_date ON reconciliation_findings (business_date, finding_type);

-- Totals per day, type and team: what the 30-day chart and the month-end rollup read.
CREATE TABLE reconciliation_daily_totals (
    business_date VARCHAR(10) NOT NULL,
    finding_type VARCHAR(64) NOT NULL,
    severity VARCHAR(8) NOT NULL,
    owner_team VARCHAR(32) NOT NULL,
    findings INTEGER NOT NULL,
    value_at_risk_base NUMERIC(16, 2) NOT NULL
);
CREATE INDEX ix_reconciliation_daily_totals_date ON reconciliation_daily_totals (business_date);

-- Drift per store and day (oversell and lost-sales risk), for finance and retail operations.
CREATE TABLE reconciliation_drift_by_store (
    business_date VARCHAR(10) NOT NULL,
    location_id VARCHAR(64) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    oversell_skus INTEGER NOT NULL,
    oversell_units INTEGER NOT NULL,
    oversell_value NUMERIC(16, 2) NOT NULL,
    oversell_value_base NUMERIC(16, 2) NOT NULL,
    lost_sales_skus INTEGER NOT NULL,
    lost_sales_units INTEGER NOT NULL,
    lost_sales_value NUMERIC(16, 2) NOT NULL,
    lost_sales_value_base NUMERIC(16, 2) NOT NULL,
    value_at_risk_base NUMERIC(16, 2) NOT NULL
);
CREATE INDEX ix_reconciliation_drift_date ON reconciliation_drift_by_store (business_date);
