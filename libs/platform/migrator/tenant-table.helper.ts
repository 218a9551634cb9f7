import type { ClientBase } from 'pg';

/**
 * SQL helpers every migration can call, created in pg_temp inside the transaction of each step that
 * calls them and dropped again before it commits (so no permanent object is left in tenant schemas,
 * they must be called qualified, and nothing is left on the connection). Per step, not per session:
 * behind a connection pooler in transaction mode (PgBouncer) consecutive transactions of one client
 * run on different server connections, and helpers installed once per session were missing from the
 * next one (`schema "pg_temp" does not exist`, measured: 5 of 8 concurrent bridge onboardings).
 *
 *   SELECT pg_temp.strata_tenant_table('notes', $$
 *     project_id uuid NOT NULL,
 *     body text NOT NULL,
 *     FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
 *   $$);
 *
 * creates the table in the one shape — tenant_id defaulting to the current tenant, id, the given
 * columns, created_at, primary key (tenant_id, id), index (tenant_id, created_at DESC, id DESC) —
 * and protects it with pg_temp.strata_enable_tenant_rls(): ENABLE + FORCE RLS and a policy with
 * USING and WITH CHECK on app.tenant_id; WITH CHECK also pins the schema the table lives in (the
 * threat is planting rows into another schema; reads there already fail the tenant_id test, and a
 * schema test in USING made the planner give up index scans with LIMIT). Forgetting RLS
 * on a new table then takes more typing than not forgetting it, and the guardrail check catches
 * the rest.
 */
export const HELPER_SQL = `
CREATE OR REPLACE FUNCTION pg_temp.strata_enable_tenant_rls(tbl text) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tbl);
  EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tbl);
  EXECUTE format(
    'CREATE POLICY tenant_isolation ON %1$I '
    'USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid) '
    'WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid AND current_schema() = %2$L)',
    tbl, current_schema());
END
$fn$;
CREATE OR REPLACE FUNCTION pg_temp.strata_tenant_table(tbl text, columns text) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format(
    'CREATE TABLE %1$I ('
    '  tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid,'
    '  id uuid NOT NULL DEFAULT gen_random_uuid(),'
    '  %2$s,'
    '  created_at timestamptz NOT NULL DEFAULT date_trunc(''milliseconds'', now()),'
    '  PRIMARY KEY (tenant_id, id))',
    tbl, columns);
  EXECUTE format('CREATE INDEX %I ON %I (tenant_id, created_at DESC, id DESC)', tbl || '_tenant_created_idx', tbl);
  PERFORM pg_temp.strata_enable_tenant_rls(tbl);
END
$fn$;
`;

/** The tenant policy's WITH CHECK as strata_enable_tenant_rls writes it, for the schema `schema`. */
const POLICY_CHECK = (schemaLiteral: string) =>
  `tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid AND current_schema() = ${schemaLiteral}`;

/**
 * Renames a migrated tenant schema and re-pins its tenant policies' WITH CHECK (which names the
 * schema it was created in) to the new name; statements for the caller's transaction. The names
 * must already be checked identifiers (tenancy's bridge driver: `t_<slug>`, `strata_spare_<hex>`).
 */
export function renameTenantSchemaSql(from: string, to: string): string {
  const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const check = POLICY_CHECK(literal(to)).replace(/'/g, "''");
  return (
    `ALTER SCHEMA ${ident(from)} RENAME TO ${ident(to)}; ` +
    `DO $repin$ DECLARE r record; BEGIN ` +
    `FOR r IN SELECT c.relname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace ` +
    `WHERE n.nspname = ${literal(to)} AND p.polname = 'tenant_isolation' LOOP ` +
    `EXECUTE format('ALTER POLICY tenant_isolation ON %I.%I WITH CHECK (${check})', ${literal(to)}, r.relname); ` +
    `END LOOP; END $repin$`
  );
}

export const DROP_HELPER_SQL = 'DROP FUNCTION IF EXISTS pg_temp.strata_tenant_table(text, text), pg_temp.strata_enable_tenant_rls(text)';

/** Whether a migration's SQL calls the helpers (steps that do not are spared two statements). */
export function callsTenantTableHelper(sql: string): boolean {
  return /\bpg_temp\s*\.\s*"?strata_/i.test(sql);
}

/** Creates the helpers in pg_temp; inside the step's transaction, so on the server connection that runs it. */
export async function installTenantTableHelper(client: ClientBase): Promise<void> {
  await client.query(HELPER_SQL);
}

/** Drops them again (before COMMIT: a pooled server connection keeps nothing of the step). */
export async function dropTenantTableHelper(client: ClientBase): Promise<void> {
  await client.query(DROP_HELPER_SQL);
}
