-- One table shape, three placements: this file runs unchanged into the pool's shared schema,
-- every bridge schema and every silo database (search_path chooses the target).
-- created_at is kept to milliseconds so keyset cursors round-trip exactly through JS Dates.
-- Every row carries tenant_id, keys lead with it, foreign keys are composite so no row can point
-- into another tenant, and RLS (ENABLE + FORCE, USING + WITH CHECK) guards every tier.

CREATE TABLE projects (
  tenant_id   uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
  id          uuid NOT NULL DEFAULT gen_random_uuid(),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description text CHECK (length(description) <= 5000),
  created_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX projects_tenant_created_idx ON projects (tenant_id, created_at DESC, id DESC);

CREATE TABLE tasks (
  tenant_id  uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL,
  title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
  status     text NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'doing', 'done')),
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX tasks_project_idx ON tasks (tenant_id, project_id, created_at DESC, id DESC);

CREATE TABLE invoices (
  tenant_id  uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  number     text NOT NULL CHECK (length(number) BETWEEN 1 AND 64),
  amount     bigint NOT NULL CHECK (amount >= 0),
  currency   char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, number)
);
CREATE INDEX invoices_tenant_created_idx ON invoices (tenant_id, created_at DESC, id DESC);

-- RLS through the runner's helper (libs/migrator/tenant-table.helper.ts): ENABLE + FORCE, and a
-- policy with USING + WITH CHECK on app.tenant_id that also pins the schema it was created in, so a
-- unit of work only reaches the tables of its own search_path (a tenant cannot plant rows stamped
-- with its own id into another bridge tenant's schema by naming it).
SELECT pg_temp.strata_enable_tenant_rls(t) FROM unnest(ARRAY['projects', 'tasks', 'invoices']) AS t;
