-- Idempotency keys (libs/platform/idempotency): a client that retries a create after a timeout sends
-- the same Idempotency-Key and gets the first request's answer instead of a second resource.
--
-- One row per key the tenant used, written in the SAME transaction as the create it answered: a key
-- exists here iff its request committed, so a request that failed (rolled back) leaves the key free,
-- and a row never points at data that was not stored. Rows live in the tenant's own home, so they
-- move with the tenant (the move copier reads the tables with a tenant_id from the catalog) and are
-- swept per tenant after IDEMPOTENCY_KEY_RETENTION_SECONDS.
--
-- id is derived from the key (the first 128 bits of its SHA-256, as a UUID; computed by the lib), so
-- the one shape's primary key (tenant_id, id) is also the uniqueness of (tenant, key): a concurrent
-- duplicate waits on that index until the first request commits or rolls back, and the move's upsert
-- ON CONFLICT (tenant_id, id) never meets a second unique constraint.
SELECT pg_temp.strata_tenant_table('idempotency_keys', $$
  idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
  -- "POST /projects/:id/tasks": which route used the key (the 422 names it; operators see it).
  request_route   text NOT NULL CHECK (length(request_route) BETWEEN 1 AND 1000),
  -- SHA-256 (hex) of method, route, path params, query and body: a replay must be the same request.
  request_hash    text NOT NULL CHECK (request_hash ~ '^[0-9a-f]{64}$'),
  -- Set before the claiming transaction commits, so a committed row always has its answer.
  response_status integer CHECK (response_status BETWEEN 100 AND 599),
  -- The JSON the first request answered, as sent (text, not jsonb: jsonb would reorder keys).
  response_body   text
$$);
