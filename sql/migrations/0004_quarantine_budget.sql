-- Bounded intake quarantine (docs/intake.md, "Quarantine"). Portable SQL; see 0001_core.sql for the
-- macros. A refused delivery from a sender whose credentials did not check out keeps only a prefix of
-- its body, with the body's size and SHA-256; the table has a byte budget and a retention, enforced by
-- the intake (pipelines/store/inbox.py, trim_quarantine) using stored_bytes and received_at.

-- 'verified' (credentials checked and valid) or 'unverified' (missing, wrong or not checkable);
-- NULL for rows quarantined before this migration, trimmed like 'unverified' ones.
ALTER TABLE intake_quarantine ADD COLUMN sender VARCHAR(16);
-- Size and SHA-256 (hex) of the request body as received (for a 413: of the bytes read until the
-- limit stopped the reading); NULL when the body was not read (431) or before this migration.
ALTER TABLE intake_quarantine ADD COLUMN body_bytes {{BIGINT}};
ALTER TABLE intake_quarantine ADD COLUMN body_sha256 VARCHAR(64);
-- What `body` holds: 'all' of it, a 'prefix', or 'none'; NULL before this migration.
ALTER TABLE intake_quarantine ADD COLUMN body_kept VARCHAR(8);
-- What the row costs, counted against the budget: stored body + headers + reason + 64.
ALTER TABLE intake_quarantine ADD COLUMN stored_bytes {{BIGINT}};
UPDATE intake_quarantine SET stored_bytes = LENGTH(body) + LENGTH(headers) + LENGTH(reason) + 64;
CREATE INDEX ix_intake_quarantine_received ON intake_quarantine (received_at);
