import { Client, escapeIdentifier } from 'pg';
import type { Tier } from '#strata/control-plane';
import { runFleet } from '#strata/migrator';
import { preparedStatementRecoveries } from '#strata/tenancy/platform';
import { withExtraPostgres, type ExtraPostgres } from '../support/extra-postgres';
import { nextVersion, sqlMigration, withExtra } from '../support/fleet-fixture';
import { callApi, onboardOn } from '../support/move-harness';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer';
import { rowPrefix, runTenantTraffic } from '../support/tenant-traffic';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

jest.setTimeout(240_000);

/** Pools whose units of work go through PgBouncer while session work (DDL, migrations) goes to the server. */
const POOLED: Record<Tier, { id: string; database: string }> = {
  pool: { id: 'pgb-pool', database: 'strata_pgb_pool' },
  bridge: { id: 'pgb-bridge', database: 'strata_pgb_bridge' },
  silo: { id: 'pgb-silo', database: 'postgres' },
};
/** A bridge pool with no direct address: provisioning and migrations go through PgBouncer as well. */
const POOLER_ONLY = { id: 'pgb-only-bridge', database: 'strata_pgb_only' };

// A tenant table made with the pg_temp helper: the step that failed behind PgBouncer when the
// helpers were installed once per session (`schema "pg_temp" does not exist`).
const NOTES = sqlMigration(nextVersion(), 'pooler_notes', `SELECT pg_temp.strata_tenant_table('pooler_notes', $$ body text NOT NULL $$);`);

async function query<R = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as R[];
  } finally {
    await c.end();
  }
}

/**
 * PgBouncer 1.18 (Debian's) in transaction mode, in front of a PostgreSQL server the test starts:
 * a small pool (3 server connections per database and role) whose server connections are renewed
 * all the time: each is closed when released after 1 s (server_lifetime) and replaced. (Not the
 * admin console's RECONNECT in a loop: PgBouncer 1.18 kills server connections still logging in on
 * RECONNECT, counts that as a failed login and fails every waiting client for server_login_retry —
 * its own errors, not the app's.) The app runs with its defaults — TENANT_SETUP_PREPARED on — and
 * its data pools point at PgBouncer, DDL at the server.
 */
describe('behind PgBouncer in transaction mode', () => {
  let t: TestApp;
  let extra: ExtraPostgres;
  let bouncer: PgBouncer;
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });
  const figures: string[] = [];

  beforeAll(async () => {
    ({ started: t, extra } = await withExtraPostgres(() => startTestApp()));
    bouncer = await startPgBouncer({
      upstream: { host: extra.host, port: extra.port },
      users: [t.config.appDbUser, t.config.controlDbUser],
      poolSize: 3,
      serverLifetime: 1,
      serverIdleTimeout: 1,
    });
    // PgBouncer cannot create a database it routes to: the pooler-only pool's is there beforehand.
    await query(extra.url(), `CREATE DATABASE ${escapeIdentifier(POOLER_ONLY.database)}`);
    const register = async (body: Record<string, unknown>) => {
      const res = await callApi(t, 'POST', '/admin/pools', { headers: admin(), body });
      if (res.status !== 201) throw new Error(`registering ${String(body.id)} failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    for (const [kind, { id, database }] of Object.entries(POOLED)) {
      const view = await register({ id, kind, host: bouncer.host, port: bouncer.port, database, directHost: extra.host, directPort: extra.port });
      expect(view).toMatchObject({ host: bouncer.host, port: bouncer.port, directHost: extra.host, directPort: extra.port });
    }
    const only = await register({ id: POOLER_ONLY.id, kind: 'bridge', host: bouncer.host, port: bouncer.port, database: POOLER_ONLY.database });
    expect(only).toMatchObject({ host: bouncer.host, port: bouncer.port, directHost: bouncer.host, directPort: bouncer.port });
  });

  afterAll(async () => {
    if (figures.length) process.stdout.write(`\nbehind PgBouncer (transaction mode, server connections renewed):\n${figures.map((f) => `  ${f}`).join('\n')}\n`);
    // The app first: its data sources hold client connections to PgBouncer, PgBouncer to the server.
    await t?.close();
    await bouncer?.stop();
    await extra?.stop();
  });

  /** Sessions the server has started so far (each server connection PgBouncer opened is one). */
  const serverSessions = async () => Number((await query<{ n: string }>(extra.url(), `SELECT sum(sessions)::bigint AS n FROM pg_stat_database`))[0].n);

  /** Rows of `tenant` whose name (projects) or number (invoices) carries its prefix, read as the owner at its home. */
  async function storedRows(tenant: OnboardedTenant): Promise<{ projects: number; invoices: number }> {
    const [home] = await query<{ schema_name: string; database_name: string | null; pool_database: string }>(
      t.db.ownerUrl,
      `SELECT t.schema_name, t.database_name, p.database AS pool_database FROM control.tenants t JOIN control.pools p ON p.id = t.pool_id WHERE t.id = $1`,
      [tenant.id],
    );
    const schema = escapeIdentifier(home.schema_name);
    const [row] = await query<{ projects: number; invoices: number }>(
      extra.url(home.database_name ?? home.pool_database),
      `SELECT (SELECT count(*)::int FROM ${schema}.projects WHERE tenant_id = $1 AND starts_with(name, $2)) AS projects,
              (SELECT count(*)::int FROM ${schema}.invoices WHERE tenant_id = $1 AND starts_with(number, $2)) AS invoices`,
      [tenant.id, rowPrefix(tenant)],
    );
    return row;
  }

  it('serves concurrent reads and writes of pool, bridge and silo tenants while PgBouncer renews its server connections, with the default prepared setup: no error, no foreign row, every acknowledged write stored once', async () => {
    expect(t.config.tenantSetupPrepared).toBe(true);
    const tenants: OnboardedTenant[] = [];
    for (const tier of ['pool', 'bridge', 'silo'] as const) {
      for (const n of [1, 2]) tenants.push(await onboardOn(t, `pgb-${tier}${n}`, tier, POOLED[tier].id));
    }
    const sessionsBefore = await serverSessions();
    const recoveredBefore = { ...preparedStatementRecoveries };
    const report = await runTenantTraffic(t, tenants, { workersPerTenant: 4, requestsPerWorker: 125 });
    const renewed = (await serverSessions()) - sessionsBefore;
    const reads = preparedStatementRecoveries.reads - recoveredBefore.reads;
    const writes = preparedStatementRecoveries.writes - recoveredBefore.writes;
    figures.push(
      `${report.requests} requests (${report.reads} reads, ${report.writes} writes) from ${tenants.length} tenants in ${(report.wallMs / 1000).toFixed(1)} s ` +
        `(${Math.round(report.requests / (report.wallMs / 1000))} req/s): ${report.failures.length} errors, ${report.foreignRows.length} foreign rows; ` +
        `${renewed} server sessions opened; recovered ${reads} read statements and ${writes} write units from a prepared-statement mismatch`,
    );

    // PgBouncer's own log says why, when it is the one refusing (bouncer.log()).
    expect(report.failures.slice(0, 10)).toEqual([]);
    expect(report.foreignRows.slice(0, 10)).toEqual([]);
    // The run did meet renewed server connections (else it proves nothing about them).
    expect(renewed).toBeGreaterThanOrEqual(10);
    for (const tenant of tenants) {
      expect({ tenant: tenant.slug, ...(await storedRows(tenant)) }).toEqual({ tenant: tenant.slug, ...report.acknowledged.get(tenant.id) });
    }
  });

  it.each([
    ['with DDL on the direct address', POOLED.bridge.id],
    ['with DDL through PgBouncer as well (no direct address)', POOLER_ONLY.id],
  ])('onboards 8 bridge tenants at once %s while server connections are renewed', async (_case, poolId) => {
    const sessionsBefore = await serverSessions();
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => onboardOn(t, `pgb-onb${i}`, 'bridge', poolId)));
    const renewed = (await serverSessions()) - sessionsBefore;
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => String(o.reason?.message ?? o.reason));
    figures.push(`onboarding 8 bridge tenants on ${poolId}: ${8 - failed.length} succeeded (${renewed} server sessions opened)`);
    expect(failed).toEqual([]);
    // Each works end to end through the pooler.
    for (const o of outcomes) {
      const tenant = (o as PromiseFulfilledResult<OnboardedTenant>).value;
      const headers = { 'X-Tenant': tenant.slug, authorization: `Bearer ${tenant.token}` };
      expect((await callApi(t, 'POST', '/projects', { headers, body: { name: `${rowPrefix(tenant)}first` } })).status).toBe(201);
      expect((await callApi(t, 'GET', '/projects', { headers })).body.items.map((p: { name: string }) => p.name)).toEqual([`${rowPrefix(tenant)}first`]);
    }
  });

  it('migrates the whole fleet with a step that calls the pg_temp helpers while server connections are renewed: every target migrated, pooler-only ones included', async () => {
    const report = await runFleet({ ownerUrl: t.db.ownerUrl, appRole: t.db.appRole, mode: 'up', migrations: withExtra(NOTES) });
    const byStatus = report.results.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});
    figures.push(`fleet migration: ${report.results.length} targets, ${JSON.stringify(byStatus)}`);
    expect(report.results.filter((r) => r.status !== 'migrated').map((r) => `${r.target.key}: ${r.status} ${r.error ?? ''}`)).toEqual([]);
    const pooledOnly = report.results.filter((r) => r.target.poolId === POOLER_ONLY.id);
    expect(pooledOnly).toHaveLength(8);
    // The helper made the table in the one shape, and left nothing behind in pg_temp.
    for (const r of pooledOnly) {
      const [made] = await query(extra.url(POOLER_ONLY.database), `SELECT relrowsecurity AS rls, relforcerowsecurity AS forced FROM pg_class WHERE oid = $1::regclass`, [
        `${escapeIdentifier(r.target.schema)}.pooler_notes`,
      ]);
      expect(made).toEqual({ rls: true, forced: true });
    }
    expect(await query(extra.url(POOLER_ONLY.database), `SELECT count(*)::int AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname LIKE 'pg_temp%'`)).toEqual([{ n: 0 }]);
  });
});
