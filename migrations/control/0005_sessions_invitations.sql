-- Sessions and invitations (libs/platform/auth). Only hashes of the opaque tokens are stored: a
-- leaked copy of this database opens no session and accepts no invitation.

-- One login = one refresh family. Every refresh rotates the token inside its family; presenting a
-- token of the family a second time (reuse: someone else holds a copy) revokes the whole family.
CREATE TABLE refresh_families (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- A family opens one tenant only: a refresh token presented with another tenant on the wire is unknown.
  tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  created_at     timestamptz NOT NULL DEFAULT now(),
  -- The newest token's expiry: a family past it is dead (and may be deleted).
  expires_at     timestamptz NOT NULL,
  revoked_at     timestamptz,
  revoked_reason text CHECK (revoked_reason IN ('logout', 'reuse', 'password_change', 'membership_removed')),
  CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX refresh_families_user_idx ON refresh_families (user_id, tenant_id);

CREATE TABLE refresh_tokens (
  -- sha256 of the token: tokens are 256 random bits, so a fast hash is enough (no salt, no scrypt).
  token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
  family_id  uuid NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  -- Set once, by the one refresh that wins (UPDATE … WHERE used_at IS NULL).
  used_at    timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- An owner or admin invites an email address into their tenant; the link carries the token.
CREATE TABLE invitations (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  email       text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
  role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  accepted_at timestamptz,
  accepted_by uuid REFERENCES users (id) ON DELETE SET NULL
);
-- One open invitation per address and tenant: inviting again replaces its token (the old link dies).
CREATE UNIQUE INDEX invitations_one_open ON invitations (tenant_id, email) WHERE accepted_at IS NULL;
