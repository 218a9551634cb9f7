-- Plans are data (libs/platform/plans): what a tenant's plan allows — its default tier, a rate limit
-- (stored and exposed here; enforced elsewhere), quotas and feature flags. A NULL quota or rate is
-- unlimited. tenants.plan was free text (default 'standard'); it now names a row here.
CREATE TABLE plans (
  id                     text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{0,38}[a-z0-9]$'),
  name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  default_tier           text NOT NULL CHECK (default_tier IN ('pool', 'bridge', 'silo')),
  rate_limit_per_second  integer CHECK (rate_limit_per_second > 0),
  max_projects           integer CHECK (max_projects >= 0),
  max_invoices_per_month integer CHECK (max_invoices_per_month >= 0),
  max_storage_bytes      bigint CHECK (max_storage_bytes >= 0),
  max_webhook_endpoints  integer CHECK (max_webhook_endpoints >= 0),
  -- flag name → on/off; a tenant's feature_overrides win over these.
  features               jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(features) = 'object'),
  created_at             timestamptz NOT NULL DEFAULT now()
);

INSERT INTO plans (id, name, default_tier, rate_limit_per_second, max_projects, max_invoices_per_month, max_storage_bytes, max_webhook_endpoints, features)
VALUES
  ('free', 'Free', 'pool', 5, 3, 50, 104857600, 1, '{"webhooks": true, "fileSharing": false, "auditLog": false}'),
  ('standard', 'Standard', 'pool', 50, 10000, 100000, 10737418240, 50, '{"webhooks": true, "fileSharing": true, "auditLog": false}'),
  ('enterprise', 'Enterprise', 'silo', 500, NULL, NULL, NULL, NULL, '{"webhooks": true, "fileSharing": true, "auditLog": true}');

-- Free text that names no plan becomes the old default, so the foreign key can hold.
UPDATE tenants SET plan = 'standard' WHERE plan NOT IN (SELECT id FROM plans);
ALTER TABLE tenants
  ADD CONSTRAINT tenants_plan_fkey FOREIGN KEY (plan) REFERENCES plans (id),
  -- Operators' per-tenant flag overrides (PATCH /admin/tenants/:id/settings); settings stay in `settings`.
  ADD COLUMN feature_overrides jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(feature_overrides) = 'object'),
  ADD CONSTRAINT tenants_settings_object CHECK (jsonb_typeof(settings) = 'object');
CREATE INDEX tenants_plan_idx ON tenants (plan);
