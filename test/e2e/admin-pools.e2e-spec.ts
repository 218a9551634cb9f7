import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, escapeIdentifier } from 'pg';
import { latestVersion } from '#strata/migrator';
import type { Tier } from '#strata/control-plane';
import { freePort, withExtraPostgres, type ExtraPostgres } from '../support/extra-postgres';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { runInfo, urlFor } from '../support/test-env';
import { uniqueSlug } from '../support/test-database';

jest.setTimeout(120_000);

async function query<R = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as R[];
  } finally {
    await c.end();
  }
}

describe('platform admin: pools (GET/POST /admin/pools)', () => {
  let t: TestApp;
  let extra: ExtraPostgres;
  /** Databases this file creates on the shared server (5432), dropped in afterAll. */
  const sharedServerDatabases: string[] = [];
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });

  beforeAll(async () => {
    ({ started: t, extra } = await withExtraPostgres(() => startTestApp()));
  });

  afterAll(async () => {
    // The app first: its data sources hold sessions on both servers.
    await t?.close();
    await extra?.stop();
    for (const name of sharedServerDatabases) {
      await query(urlFor('postgres'), `DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
    }
  });

  /** Onboards a tenant on a given pool, adds an owner and logs in (as TestApp.onboard does for default pools). */
  async function onboardOn(poolId: string, tier: Tier, base: string): Promise<OnboardedTenant> {
    const slug = uniqueSlug(base);
    const name = `${base} inc`;
    const created = await t.http().post('/admin/tenants').set(admin()).send({ slug, name, tier, poolId });
    if (created.status !== 201) throw new Error(`onboarding ${slug} on ${poolId} failed: ${created.status} ${JSON.stringify(created.body)}`);
    expect(created.body).toMatchObject({ tier, poolId, status: 'active' });
    const email = `owner@${slug}.test`;
    const password = 'correct-horse-battery';
    const user = await t.http().post(`/admin/tenants/${created.body.id}/users`).set(admin()).send({ email, password, role: 'owner' }).expect(201);
    const login = await t.http().post('/auth/login').set('X-Tenant', slug).send({ email, password }).expect(200);
    return { id: created.body.id, slug, name, tier, email, password, userId: user.body.id, token: login.body.access_token };
  }

  /** Creates a project as the tenant and lists it back through the API. */
  async function projectRoundTrip(tenant: OnboardedTenant, name: string): Promise<string> {
    const as = { 'X-Tenant': tenant.slug, authorization: `Bearer ${tenant.token}` };
    const created = await t.http().post('/projects').set(as).send({ name }).expect(201);
    const listed = await t.http().get('/projects').set(as).expect(200);
    expect(listed.body.items.map((p: { id: string; name: string }) => [p.id, p.name])).toEqual([[created.body.id, name]]);
    return created.body.id;
  }

  const listPools = async () => (await t.http().get('/admin/pools').set(admin()).expect(200)).body.items as Array<Record<string, unknown>>;
  const poolRow = async (id: string) =>
    (await query<{ schema_version: string; is_default: boolean }>(t.db.ownerUrl, `SELECT schema_version, is_default FROM control.pools WHERE id = $1`, [id]))[0];

  it('lists the three seeded pools in id order with the number of tenants each one hosts, deleted ones left out', async () => {
    await t.onboard('acme', 'pool');
    const gone = await t.onboard('gone', 'pool');
    await query(t.db.ownerUrl, `UPDATE control.tenants SET status = 'deleted' WHERE id = $1`, [gone.id]);

    const seeded = { host: '127.0.0.1', port: 5432, database: t.db.name, directHost: '127.0.0.1', directPort: 5432, maxConnections: 10, isDefault: true };
    expect(await listPools()).toEqual([
      { id: 'main-bridge', kind: 'bridge', ...seeded, tenantCount: 0 },
      { id: 'main-pool', kind: 'pool', ...seeded, tenantCount: 1 },
      { id: 'main-silo', kind: 'silo', ...seeded, tenantCount: 0 },
    ]);
  });

  it('registers a pool-kind pool on another server: creates its database, migrates shared with forced RLS, and serves a pool tenant end to end', async () => {
    const res = await t
      .http()
      .post('/admin/pools')
      .set(admin())
      .send({ id: 'extra-pool', kind: 'pool', host: '127.0.0.1', port: extra.port, database: 'strata_pool', maxConnections: 5 })
      .expect(201);
    expect(res.body).toEqual({
      id: 'extra-pool',
      kind: 'pool',
      host: '127.0.0.1',
      port: extra.port,
      database: 'strata_pool',
      // No pooler in front of it: session work goes to the same address.
      directHost: '127.0.0.1',
      directPort: extra.port,
      maxConnections: 5,
      isDefault: false,
      tenantCount: 0,
    });
    expect(await poolRow('extra-pool')).toEqual({ schema_version: latestVersion('tenant'), is_default: false });
    const audited = await t.http().get('/admin/audit').query({ action: 'pool.registered' }).set(admin()).expect(200);
    expect(audited.body.items.map((e: { actor: unknown; details: { poolId: string } }) => [e.actor, e.details.poolId])).toContainEqual([
      { type: 'operator', id: 'test-operator' },
      'extra-pool',
    ]);

    // On the new server, as its owner: shared.projects with RLS enabled and forced, at this release's version.
    const rls = await query<{ rls: boolean; forced: boolean }>(
      extra.url('strata_pool'),
      `SELECT relrowsecurity AS rls, relforcerowsecurity AS forced FROM pg_class WHERE oid = 'shared.projects'::regclass`,
    );
    expect(rls).toEqual([{ rls: true, forced: true }]);
    const ledger = await query<{ version: string }>(extra.url('strata_pool'), `SELECT max(version) AS version FROM shared.strata_migrations`);
    expect(ledger[0].version).toBe(latestVersion('tenant'));
    // The app role exists on that cluster, as unprivileged as on the control server.
    const roles = await query<{ rolsuper: boolean; rolbypassrls: boolean }>(extra.url(), `SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1`, [
      t.config.appDbUser,
    ]);
    expect(roles).toEqual([{ rolsuper: false, rolbypassrls: false }]);

    const tenant = await onboardOn('extra-pool', 'pool', 'xpool');
    const projectId = await projectRoundTrip(tenant, 'on the extra server');
    // The row physically lives on the extra server, not in the control server's shared schema.
    expect(await query(extra.url('strata_pool'), `SELECT name FROM shared.projects WHERE tenant_id = $1`, [tenant.id])).toEqual([{ name: 'on the extra server' }]);
    expect(await query(t.db.ownerUrl, `SELECT 1 FROM shared.projects WHERE id = $1`, [projectId])).toEqual([]);
    expect((await listPools()).find((p) => p.id === 'extra-pool')).toMatchObject({ tenantCount: 1 });
  });

  it('registers a silo-kind pool on another server, and a silo tenant onboarded there gets its database on that server', async () => {
    await t
      .http()
      .post('/admin/pools')
      .set(admin())
      .send({ id: 'extra-silo', kind: 'silo', host: '127.0.0.1', port: extra.port, database: 'postgres' })
      .expect(201, { id: 'extra-silo', kind: 'silo', host: '127.0.0.1', port: extra.port, database: 'postgres', directHost: '127.0.0.1', directPort: extra.port, maxConnections: 10, isDefault: false, tenantCount: 0 });

    const tenant = await onboardOn('extra-silo', 'silo', 'xsilo');
    await projectRoundTrip(tenant, 'in a silo on the extra server');
    const [{ database_name: database }] = await query<{ database_name: string }>(t.db.ownerUrl, `SELECT database_name FROM control.tenants WHERE id = $1`, [tenant.id]);
    expect(await query(extra.url(), `SELECT 1 AS n FROM pg_database WHERE datname = $1`, [database])).toEqual([{ n: 1 }]);
    expect(await query(urlFor('postgres'), `SELECT 1 FROM pg_database WHERE datname = $1`, [database])).toEqual([]);
    expect(await query(extra.url(database), `SELECT name FROM shared.projects`)).toEqual([{ name: 'in a silo on the extra server' }]);
  });

  it('registers a bridge-kind pool on a new database of the same server, creating it, and a bridge tenant gets its schema there', async () => {
    // Named like the test clones (strata_f_<run>_…): global teardown drops it even if this file crashes.
    const database = `strata_f_${runInfo().runId}_pb${randomBytes(3).toString('hex')}`;
    sharedServerDatabases.push(database);
    await t
      .http()
      .post('/admin/pools')
      .set(admin())
      .send({ id: 'second-bridge', kind: 'bridge', host: '127.0.0.1', port: 5432, database })
      .expect(201);
    expect(await query(urlFor('postgres'), `SELECT 1 AS n FROM pg_database WHERE datname = $1`, [database])).toEqual([{ n: 1 }]);
    expect(await poolRow('second-bridge')).toEqual({ schema_version: '0000', is_default: false });

    const tenant = await onboardOn('second-bridge', 'bridge', 'xbridge');
    await projectRoundTrip(tenant, 'in a bridge schema of the second database');
    const [{ schema_name: schema }] = await query<{ schema_name: string }>(t.db.ownerUrl, `SELECT schema_name FROM control.tenants WHERE id = $1`, [tenant.id]);
    expect(await query(urlFor(database), `SELECT name FROM ${escapeIdentifier(schema)}.projects`)).toEqual([{ name: 'in a bridge schema of the second database' }]);
    expect(await query(t.db.ownerUrl, `SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema])).toEqual([]);
  });

  it('answers 400 pool_unreachable for a port nobody listens on and registers nothing', async () => {
    const port = await freePort();
    const res = await t
      .http()
      .post('/admin/pools')
      .set(admin())
      .send({ id: 'dead-pool', kind: 'pool', host: '127.0.0.1', port, database: 'strata_pool' })
      .expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'pool_unreachable', message: expect.stringMatching(/ECONNREFUSED/) });
    expect((await listPools()).map((p) => p.id)).not.toContain('dead-pool');
    expect(await poolRow('dead-pool')).toBeUndefined();
  });

  it('answers 400 pool_unreachable when the direct address answers but the pooled one (where units of work connect) does not, and drops the database it created', async () => {
    const port = await freePort();
    const res = await t
      .http()
      .post('/admin/pools')
      .set(admin())
      .send({ id: 'no-pooler', kind: 'pool', host: '127.0.0.1', port, directHost: '127.0.0.1', directPort: extra.port, database: 'strata_no_pooler' })
      .expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'pool_unreachable', message: expect.stringMatching(/app role .* cannot log in: .*ECONNREFUSED/) });
    expect(res.body.message).toContain(`(direct 127.0.0.1:${extra.port})`);
    expect(await poolRow('no-pooler')).toBeUndefined();
    expect(await query(extra.url(), `SELECT 1 FROM pg_database WHERE datname = 'strata_no_pooler'`)).toEqual([]);
  });

  it('answers 400 pool_unreachable when the server refuses the owner (pg_hba) and creates nothing there', async () => {
    // Reject every connection to one database name on the extra server, then reload its configuration.
    const hba = join(extra.dataDir, 'pg_hba.conf');
    writeFileSync(hba, `host strata_refused all 127.0.0.1/32 reject\n${readFileSync(hba, 'utf8')}`);
    await query(extra.url(), `SELECT pg_reload_conf()`);
    const res = await t
      .http()
      .post('/admin/pools')
      .set(admin())
      .send({ id: 'refused-pool', kind: 'pool', host: '127.0.0.1', port: extra.port, database: 'strata_refused' })
      .expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'pool_unreachable', message: expect.stringMatching(/pg_hba\.conf rejects connection/) });
    expect(await poolRow('refused-pool')).toBeUndefined();
    expect(await query(extra.url(), `SELECT 1 FROM pg_database WHERE datname = 'strata_refused'`)).toEqual([]);
  });

  it('answers 409 pool_exists for a taken id and leaves the registered pool as it was', async () => {
    const res = await t
      .http()
      .post('/admin/pools')
      .set(admin())
      .send({ id: 'main-pool', kind: 'silo', host: '127.0.0.1', port: extra.port, database: 'other_db' })
      .expect(409);
    expect(res.body).toEqual({ statusCode: 409, error: 'pool_exists', message: expect.any(String) });
    expect((await listPools()).find((p) => p.id === 'main-pool')).toMatchObject({ kind: 'pool', port: 5432, database: t.db.name });
    // Refused before touching the server.
    expect(await query(extra.url(), `SELECT 1 FROM pg_database WHERE datname = 'other_db'`)).toEqual([]);
  });

  const valid = { id: 'ok-pool', kind: 'pool', host: '127.0.0.1', port: 5432, database: 'ok_db' };
  it.each<[string, Record<string, unknown>]>([
    ['an id that is too short', { ...valid, id: 'A' }],
    ['an id ending in a dash', { ...valid, id: 'ends-with-' }],
    ['an unknown kind', { ...valid, kind: 'gold' }],
    ['an empty host', { ...valid, host: '' }],
    ['a host over 255 characters', { ...valid, host: 'h'.repeat(256) }],
    ['port 0', { ...valid, port: 0 }],
    ['port 65536', { ...valid, port: 65536 }],
    ['a port given as a string', { ...valid, port: '5432' }],
    ['a fractional port', { ...valid, port: 54.32 }],
    ['a database name with capitals and a dash', { ...valid, database: 'Bad-Name' }],
    ['maxConnections 0', { ...valid, maxConnections: 0 }],
    ['maxConnections 1001', { ...valid, maxConnections: 1001 }],
    ['no database', { id: 'ok-pool', kind: 'pool', host: '127.0.0.1', port: 5432 }],
    ['an unknown field (isDefault)', { ...valid, isDefault: true }],
    ['an empty directHost', { ...valid, directHost: '' }],
    ['directPort 0', { ...valid, directPort: 0 }],
    ['a directPort given as a string', { ...valid, directPort: '5432' }],
  ])('rejects a pool with %s with 400 validation_failed and registers nothing', async (_case, body) => {
    const res = await t.http().post('/admin/pools').set(admin()).send(body).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'validation_failed', message: expect.any(String), details: [expect.objectContaining({ field: expect.any(String) })] });
    expect(await poolRow('ok-pool')).toBeUndefined();
  });

  it('needs a platform admin: 401 without a token, 403 with a tenant user token', async () => {
    const acme = await t.onboard('acme-auth', 'bridge');
    for (const req of [() => t.http().get('/admin/pools'), () => t.http().post('/admin/pools').send(valid)]) {
      expect((await req().expect(401)).body.error).toBe('unauthenticated');
      expect((await req().set('authorization', `Bearer ${acme.token}`).expect(403)).body.error).toBe('platform_admin_required');
    }
    expect(await poolRow('ok-pool')).toBeUndefined();
  });

  it('keeps the instance ready with the registered pools: every pool answers and the RLS guardrail covers the new servers', async () => {
    const ready = await t.http().get('/health/ready').expect(200);
    for (const id of ['extra-pool', 'extra-silo', 'second-bridge']) expect(ready.body.details[`pool:${id}`]).toMatchObject({ status: 'up' });
    expect(ready.body.details.rls.status).toBe('up');
  });
});
