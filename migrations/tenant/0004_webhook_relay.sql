-- The outbox relay (libs/webhooks, WebhookOutboxRelay) asks each tenant every few minutes for its
-- `pending` deliveries older than a threshold, oldest first:
--   WHERE tenant_id = $1 AND status = 'pending' AND created_at < $2 ORDER BY created_at, id LIMIT n
-- Partial on status = 'pending': rows leave the index once delivered or failed, so it stays as
-- small as the backlog (normally empty) however long the delivery log grows.
-- Transactional (plain CREATE INDEX): onboarding runs every tenant migration at once and must not
-- wait for other sessions of the database as CONCURRENTLY would; on a bridge or silo table the
-- build is short. For a large existing pool table, an operator can build the same index by hand
-- first (CREATE INDEX CONCURRENTLY webhook_deliveries_pending_created_idx ...) and IF NOT EXISTS
-- turns this step into a no-op.
CREATE INDEX IF NOT EXISTS webhook_deliveries_pending_created_idx
  ON webhook_deliveries (tenant_id, created_at, id)
  WHERE status = 'pending';
