-- Online tenant moves (libs/moves): a durable state machine per move, claimed with a lease by
-- whichever process runs an executor (API or worker), resumable after a crash at any phase.

-- Bumped at every cutover: a unit of work that finds its home retired waits for a newer epoch.
ALTER TABLE tenants ADD COLUMN placement_epoch integer NOT NULL DEFAULT 1;

CREATE TABLE tenant_moves (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  from_tier         text NOT NULL CHECK (from_tier IN ('pool', 'bridge', 'silo')),
  from_pool_id      text NOT NULL REFERENCES pools (id),
  from_schema       text NOT NULL,
  from_database     text,
  to_tier           text NOT NULL CHECK (to_tier IN ('pool', 'bridge', 'silo')),
  to_pool_id        text NOT NULL REFERENCES pools (id),
  to_schema         text NOT NULL,
  to_database       text,
  phase             text NOT NULL DEFAULT 'queued' CHECK (phase IN
                    ('queued', 'provisioning', 'copying', 'catching_up', 'verifying', 'cutover', 'done', 'failed', 'cancelled')),
  cancel_requested  boolean NOT NULL DEFAULT false,
  requested_by      text NOT NULL,
  rows_copied       bigint NOT NULL DEFAULT 0,
  rows_total        bigint NOT NULL DEFAULT 0,
  lag_rows          bigint NOT NULL DEFAULT 0,
  pause_ms          integer,
  -- per-table counts and checksums of the verification, phase timings, attempts
  checkpoint        jsonb NOT NULL DEFAULT '{}'::jsonb,
  phases            jsonb NOT NULL DEFAULT '[]'::jsonb,
  error             text,
  lease_owner       text,
  lease_until       timestamptz,
  attempts          integer NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  -- the old home is kept (retired, unreachable for the app) until then, and dropped after
  source_drop_after timestamptz,
  source_dropped_at timestamptz
);
-- One move per tenant at a time.
CREATE UNIQUE INDEX tenant_moves_one_open_per_tenant ON tenant_moves (tenant_id)
  WHERE phase NOT IN ('done', 'failed', 'cancelled');
CREATE INDEX tenant_moves_tenant_created_idx ON tenant_moves (tenant_id, created_at DESC);
CREATE INDEX tenant_moves_open_idx ON tenant_moves (created_at) WHERE phase NOT IN ('done', 'failed', 'cancelled');
CREATE INDEX tenant_moves_source_cleanup_idx ON tenant_moves (source_drop_after)
  WHERE phase = 'done' AND source_dropped_at IS NULL;
