-- Fleet migration bookkeeping. Each target's own `strata_migrations` table is the truth (written
-- in the same transaction as the migration); this ledger keeps every attempt's outcome, timing
-- and error centrally, so `npm run migrate status` and the API need not visit every target.
CREATE TABLE migration_ledger (
  target_key  text NOT NULL,
  version     text NOT NULL,
  status      text NOT NULL CHECK (status IN ('applied', 'failed')),
  run_id      uuid NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  duration_ms integer NOT NULL,
  error       text,
  PRIMARY KEY (target_key, version)
);

-- The tenant schema version each target has reached; the API compares it with the version its
-- release needs (pool tenants follow their pool's shared schema).
ALTER TABLE tenants ADD COLUMN schema_version text NOT NULL DEFAULT '0000';
ALTER TABLE pools ADD COLUMN schema_version text NOT NULL DEFAULT '0000';
-- Targets that existed before this ledger were provisioned with the only tenant migration there was.
UPDATE tenants SET schema_version = '0001' WHERE status <> 'deleted';
