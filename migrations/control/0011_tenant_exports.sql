-- Tenant exports (libs/platform/exports): one archive of a tenant's rows and files, produced by a
-- durable job claimed with a lease (like tenant_moves) by whichever process runs an export
-- executor, and restorable into a new tenant of any tier (TenantRestorer, the tenants CLI).

CREATE TABLE tenant_exports (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  -- 'operator:<token sub>' (admin API) or 'owner:<user id>' (the tenant's own POST /export)
  requested_by   text NOT NULL,
  state          text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
  -- where the tenant lived and at which tenant schema version, read when the export ran
  tier           text CHECK (tier IN ('pool', 'bridge', 'silo')),
  schema_version text,
  rows_exported  bigint NOT NULL DEFAULT 0,
  files_exported integer NOT NULL DEFAULT 0,
  -- per table: {"projects": {"rows": 3, "sha256": "…"}, …}, and per file of the archive its sha256
  tables         jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- the platform-owned storage key (never under a tenant's prefix), its size and sha256
  archive_key    text,
  archive_bytes  bigint,
  archive_sha256 text CHECK (archive_sha256 ~ '^[0-9a-f]{64}$'),
  error          text,
  lease_owner    text,
  lease_until    timestamptz,
  attempts       integer NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  finished_at    timestamptz,
  CHECK ((state = 'done') = (archive_sha256 IS NOT NULL))
);
CREATE INDEX tenant_exports_tenant_created_idx ON tenant_exports (tenant_id, created_at DESC, id DESC);
CREATE INDEX tenant_exports_open_idx ON tenant_exports (created_at) WHERE state IN ('queued', 'running');
-- One open export per tenant: asking again while one is queued or running answers that one, so a
-- client that retries (or an owner who keeps clicking) does not pile up archives.
CREATE UNIQUE INDEX tenant_exports_one_open_per_tenant ON tenant_exports (tenant_id) WHERE state IN ('queued', 'running');
