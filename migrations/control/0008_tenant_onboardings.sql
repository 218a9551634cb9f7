-- Onboarding pipeline (libs/platform/onboarding): a durable record of each onboarding's steps,
-- claimed with a lease by whichever process runs an executor (API or worker), resumable after a
-- crash at any step. A tenant whose onboarding gave up ends `failed` and is never served.
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
  CHECK (status IN ('provisioning', 'active', 'suspended', 'failed', 'deleting', 'deleted'));

CREATE TABLE tenant_onboardings (
  tenant_id           uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
  -- [{name, state: pending|running|done|failed, attempts, error}], in the order they run
  steps               jsonb NOT NULL,
  -- the first owner (signup, or an operator naming one); the hash only, never the password
  owner_email         text CHECK (owner_email = lower(owner_email)),
  owner_password_hash text,
  -- what a step needs beyond the tenant record, by step (a restore step: the export to restore)
  params              jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- set once the tier driver made the tenant's home for this onboarding: cleanup after a failure
  -- drops an exclusive home only then, never one that existed before (an orphan, a restore)
  home_created        boolean NOT NULL DEFAULT false,
  error               text,
  lease_owner         text,
  lease_until         timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  finished_at         timestamptz
);
CREATE INDEX tenant_onboardings_open_idx ON tenant_onboardings (created_at) WHERE finished_at IS NULL;
