-- Usage counters (libs/platform/plans): what a tenant holds of each quota-limited thing, kept in
-- the tenant's own home and changed in the SAME transaction as the row it counts. A create reserves
-- with one statement (an upsert whose UPDATE only happens while used + n stays within the limit):
-- the row lock makes concurrent creates queue on it and re-check the new value, so the limit holds
-- exactly, and a create that rolls back takes its reservation with it. Reads never touch it.
--
-- metric: 'projects', 'webhook_endpoints', 'storage_bytes', or 'invoices:YYYY-MM' (per UTC month).
-- id is md5(metric) as a UUID, so the one shape's primary key (tenant_id, id) is also the uniqueness
-- of (tenant, metric) and the move copier's ON CONFLICT (tenant_id, id) meets no second key.
SELECT pg_temp.strata_tenant_table('usage_counters', $$
  metric text NOT NULL CHECK (metric ~ '^[a-z_]{1,40}(:[0-9]{4}-[0-9]{2})?$'),
  used   bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
  CHECK (id = md5(metric)::uuid)
$$);

-- Existing rows are counted once here (the migrator's owner connection; as a superuser, the
-- documented default, RLS does not hide them). New tenants start at zero.
INSERT INTO usage_counters (tenant_id, id, metric, used)
SELECT tenant_id, md5(metric)::uuid, metric, used FROM (
  SELECT tenant_id, 'projects' AS metric, count(*) AS used FROM projects GROUP BY tenant_id
  UNION ALL
  SELECT tenant_id, 'webhook_endpoints', count(*) FROM webhook_endpoints WHERE deleted_at IS NULL GROUP BY tenant_id
  UNION ALL
  SELECT tenant_id, 'storage_bytes', sum(size_bytes) FROM files GROUP BY tenant_id
  UNION ALL
  SELECT tenant_id, 'invoices:' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'), count(*) FROM invoices
   WHERE created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' GROUP BY tenant_id
) counted;
