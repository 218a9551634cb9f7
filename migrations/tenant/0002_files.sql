-- Metadata of stored files; the bytes live in object storage (libs/storage) under
-- {tenant_id}/{storage_key}. storage_key is relative: the tenant prefix is added by TenantStorage
-- from the context, never read from a row, so a row cannot point into another tenant's objects.
-- Same shape as 0001: tenant_id from the unit of work's setting, keys lead with it, millisecond
-- created_at for exact keyset cursors, RLS on every tier.

CREATE TABLE files (
  tenant_id    uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
  id           uuid NOT NULL DEFAULT gen_random_uuid(),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  content_type text NOT NULL CHECK (length(content_type) BETWEEN 3 AND 255),
  size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
  storage_key  text NOT NULL CHECK (length(storage_key) BETWEEN 1 AND 512),
  created_at   timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX files_tenant_created_idx ON files (tenant_id, created_at DESC, id DESC);

SELECT pg_temp.strata_enable_tenant_rls('files');
