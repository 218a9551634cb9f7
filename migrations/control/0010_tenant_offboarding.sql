-- Maintenance mode and offboarding (libs/platform/offboarding).

-- Maintenance: the tenant's requests answer 503 tenant_maintenance (Retry-After) while operators work
-- on it; its jobs wait (parked) like a suspended tenant's. NULL: not in maintenance.
ALTER TABLE tenants
  ADD COLUMN maintenance_since  timestamptz,
  ADD COLUMN maintenance_reason text CHECK (length(maintenance_reason) <= 500);

-- One offboarding per tenant: a durable state machine claimed with a lease, resumable by any process.
-- The tenant record stays behind as a tombstone (status 'deleted', slug released) so the report keeps
-- a subject; everything else the tenant owned is gone, each store's removal recorded in `report`.
CREATE TABLE tenant_deletions (
  tenant_id     uuid PRIMARY KEY REFERENCES tenants (id),
  -- the names it had, for the report: the tombstone's slug is released for reuse
  slug          text NOT NULL,
  tier          text NOT NULL CHECK (tier IN ('pool', 'bridge', 'silo')),
  pool_id       text NOT NULL,
  schema_name   text NOT NULL,
  database_name text,
  state         text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
  -- the next step to run (steps in libs/platform/offboarding/README.md); 'done' once finished
  step          text NOT NULL,
  -- [{store, removed: {what: count}, details?, at}], appended once per finished step
  report        jsonb NOT NULL DEFAULT '[]'::jsonb,
  requested_by  text NOT NULL,
  requested_at  timestamptz NOT NULL DEFAULT now(),
  -- the last step finished (or the request): a running deletion quiet for long is stuck (a gauge)
  progress_at   timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  attempts      integer NOT NULL DEFAULT 0,
  error         text,
  lease_owner   text,
  lease_until   timestamptz
);
CREATE INDEX tenant_deletions_running_idx ON tenant_deletions (requested_at) WHERE state = 'running';
