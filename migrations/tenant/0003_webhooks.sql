-- Webhooks: endpoints a tenant registers, and a delivery log that doubles as the transactional
-- outbox (a pending row is written in the same transaction as the event's cause, e.g. the invoice).
-- Same shape rules as 0001: tenant_id on every row, keys lead with it, composite foreign keys, RLS.

CREATE TABLE webhook_endpoints (
  tenant_id  uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  url        text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
  -- Signing secret, per endpoint. Kept readable because HMAC signing needs it; RLS guards it.
  secret     text NOT NULL CHECK (secret LIKE 'whsec\_%'),
  events     text[] NOT NULL DEFAULT '{invoice.created}' CHECK (cardinality(events) >= 1),
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhook_endpoints_tenant_created_idx ON webhook_endpoints (tenant_id, created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
  tenant_id        uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
  id               uuid NOT NULL DEFAULT gen_random_uuid(),
  endpoint_id      uuid NOT NULL,
  -- One event fans out to one delivery per endpoint; receivers deduplicate on it (Strata-Event-Id).
  event_id         uuid NOT NULL,
  event_type       text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 100),
  payload          jsonb NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_status_code integer,
  last_error       text CHECK (length(last_error) <= 2000),
  created_at       timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  delivered_at     timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, endpoint_id, event_id),
  -- Deleting an endpoint deletes its log: nothing about it (or for it) outlives the tenant's request.
  FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_endpoint_created_idx ON webhook_deliveries (tenant_id, endpoint_id, created_at DESC, id DESC);

SELECT pg_temp.strata_enable_tenant_rls(t) FROM unnest(ARRAY['webhook_endpoints', 'webhook_deliveries']) AS t;
