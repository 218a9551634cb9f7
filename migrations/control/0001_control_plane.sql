-- Control plane: which tenants exist, where each one lives, who may enter it.
CREATE TABLE pools (
  id              text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
  kind            text NOT NULL CHECK (kind IN ('pool', 'bridge', 'silo')),
  host            text NOT NULL,
  port            integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
  -- pool/bridge: the database holding the shared schema or the tenant schemas;
  -- silo: the maintenance database used to CREATE DATABASE (tenant databases are named on the tenant).
  database        text NOT NULL,
  max_connections integer NOT NULL DEFAULT 10 CHECK (max_connections > 0),
  is_default      boolean NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX pools_one_default_per_kind ON pools (kind) WHERE is_default;

CREATE TABLE tenants (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug          text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  tier          text NOT NULL CHECK (tier IN ('pool', 'bridge', 'silo')),
  pool_id       text NOT NULL REFERENCES pools (id),
  status        text NOT NULL DEFAULT 'provisioning'
                CHECK (status IN ('provisioning', 'active', 'suspended', 'deleting', 'deleted')),
  plan          text NOT NULL DEFAULT 'standard',
  region        text NOT NULL DEFAULT 'local',
  -- placement inside the pool server: the schema for every tier, the database for silo
  schema_name   text NOT NULL CHECK (schema_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  database_name text CHECK (database_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  settings      jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK ((tier = 'silo') = (database_name IS NOT NULL))
);

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email         text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE memberships (
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, tenant_id)
);
CREATE INDEX memberships_tenant_idx ON memberships (tenant_id);
