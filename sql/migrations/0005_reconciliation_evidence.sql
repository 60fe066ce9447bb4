-- What the daily reconciliation could not judge for lack of evidence (e.g. returns whose original sale
-- is neither landed nor known to NewStore), one sentence per row, replaced with the day's findings; the
-- finance report shows them. Portable SQL; see 0001_core.sql for the macros.
CREATE TABLE reconciliation_evidence (
    business_date VARCHAR(10) NOT NULL,
    note_no INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX ix_reconciliation_evidence_date ON reconciliation_evidence (business_date);
