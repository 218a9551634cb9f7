import type { Client } from 'pg';
import { OwnerConnections, quoteIdent, type TenantHome } from '#strata/tenancy/platform';

/**
 * An owner session on `home` that has entered the tenant, as the move copier's sessions do
 * (libs/platform/moves/home-copier.ts): search_path and app.tenant_id (FORCE RLS applies to an
 * owner that is not a superuser, and the policy's WITH CHECK pins the schema), UTC so the rows'
 * text — and so the archive's checksums — is the same whichever server wrote or reads it, and
 * bounded waits. The caller ends it.
 */
export async function tenantHomeSession(owners: OwnerConnections, home: TenantHome, tenantId: string, name: string): Promise<Client> {
  const c = await owners.connect(home, name);
  try {
    await c.query(
      `SELECT set_config('search_path', $1, false), set_config('app.tenant_id', $2, false), set_config('TimeZone', 'UTC', false),
              set_config('statement_timeout', '300s', false), set_config('idle_in_transaction_session_timeout', '120s', false)`,
      [quoteIdent(home.schema), tenantId],
    );
  } catch (err) {
    await c.end().catch(() => undefined);
    throw err;
  }
  return c;
}

/** Sequences of the home's schema and the last value each handed out (none yet: left out). */
export async function sequencesOf(c: Client, schema: string): Promise<Array<{ name: string; last: string }>> {
  const r = await c.query<{ name: string; last: string | null }>(
    `SELECT s.relname AS name, (pg_sequence_last_value(s.oid))::text AS last
       FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
      WHERE s.relkind = 'S' AND n.nspname = $1 ORDER BY s.relname`,
    [schema],
  );
  return r.rows.filter((s): s is { name: string; last: string } => s.last !== null);
}
