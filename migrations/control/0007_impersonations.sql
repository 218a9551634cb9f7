-- Impersonation (libs/platform/auth): a platform operator acts as one user of one tenant for at most
-- 15 minutes, with a reason. The token names this row (`imp`); every request with it checks the row,
-- so revoking it (revoked_at) ends the impersonation on every instance at the next request.
CREATE TABLE impersonations (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  operator_id text NOT NULL CHECK (length(operator_id) BETWEEN 1 AND 200),
  reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
  created_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz,
  revoked_by  text CHECK (length(revoked_by) BETWEEN 1 AND 200),
  CHECK (expires_at > created_at AND expires_at <= created_at + interval '15 minutes'),
  CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE INDEX impersonations_open_idx ON impersonations (expires_at) WHERE revoked_at IS NULL;
CREATE INDEX impersonations_tenant_idx ON impersonations (tenant_id, created_at DESC);
