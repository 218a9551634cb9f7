-- Webhooks for integrators (libs/domain/webhooks): endpoints can be disabled, rotate their secret
-- with a grace period, and are soft-deleted so that their delivery log outlives them for
-- WEBHOOK_DELIVERY_RETENTION_MS (the relay job of each tenant prunes what is older).
ALTER TABLE webhook_endpoints
  ADD COLUMN enabled boolean NOT NULL DEFAULT true,
  -- The secret before the last rotation: deliveries are signed with both until it expires.
  ADD COLUMN previous_secret text CHECK (previous_secret LIKE 'whsec\_%'),
  ADD COLUMN previous_secret_expires_at timestamptz,
  -- Set by DELETE /webhooks/:id: the endpoint is gone for every route but its delivery log.
  ADD COLUMN deleted_at timestamptz;

-- A redelivery is a new row for the same event (receivers deduplicate on the event id), so one
-- endpoint may now hold several rows of one event.
ALTER TABLE webhook_deliveries
  DROP CONSTRAINT IF EXISTS webhook_deliveries_tenant_id_endpoint_id_event_id_key,
  ADD COLUMN redelivery_of uuid;

-- The retention prune: deliveries older than the retention, oldest first, per tenant.
CREATE INDEX IF NOT EXISTS webhook_deliveries_tenant_created_idx ON webhook_deliveries (tenant_id, created_at);
