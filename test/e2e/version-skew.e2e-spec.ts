import { Client } from 'pg';
import { TenantRegistry } from '#strata/control-plane';
import { latestVersion } from '#strata/migrator';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

jest.setTimeout(60_000);

const as = (who: OnboardedTenant) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('version skew: a tenant whose target is behind the release answers 503 tenant_migrating', () => {
  let t: TestApp;
  let owner: Client;
  let bridge: OnboardedTenant;
  let otherBridge: OnboardedTenant;
  let silo: OnboardedTenant;
  let poolA: OnboardedTenant;
  let poolB: OnboardedTenant;
  let everyone: OnboardedTenant[];
  const required = latestVersion('tenant');

  beforeAll(async () => {
    t = await startTestApp();
    owner = new Client({ connectionString: t.db.ownerUrl });
    await owner.connect();
    bridge = await t.onboard('skewb', 'bridge');
    otherBridge = await t.onboard('skewb2', 'bridge');
    silo = await t.onboard('skews', 'silo');
    poolA = await t.onboard('skewp', 'pool');
    poolB = await t.onboard('skewp2', 'pool');
    everyone = [bridge, otherBridge, silo, poolA, poolB];
  });
  afterAll(async () => {
    await owner?.end();
    await t?.close();
  });

  /** After the registry cache has forgotten what it read: a change to control.* is now visible. */
  const afterCacheTtl = () => sleep(t.config.registryCacheTtlMs + 50);

  async function statusOf(who: OnboardedTenant): Promise<number> {
    return (await t.http().get('/projects').set(as(who))).status;
  }

  async function expectMigrating(who: OnboardedTenant): Promise<void> {
    const res = await t.http().get('/projects').set(as(who));
    expect({ slug: who.slug, status: res.status, body: res.body }).toEqual({
      slug: who.slug,
      status: 503,
      body: { statusCode: 503, error: 'tenant_migrating', message: expect.any(String) },
    });
    expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
  }

  async function expectServing(tenants: OnboardedTenant[]): Promise<void> {
    const got = Object.fromEntries(await Promise.all(tenants.map(async (w) => [w.slug, await statusOf(w)] as const)));
    expect(got).toEqual(Object.fromEntries(tenants.map((w) => [w.slug, 200])));
  }

  it('serves every tenant while the fleet is at the release version', async () => {
    const versions = await owner.query(`SELECT tier, schema_version FROM control.tenants WHERE tier <> 'pool'`);
    expect(versions.rows.every((r) => r.schema_version === required)).toBe(true);
    await expectServing(everyone);
  });

  it('a bridge tenant behind gets 503 with Retry-After on reads and writes; the others keep answering 200; catching up serves it again', async () => {
    try {
      await owner.query(`UPDATE control.tenants SET schema_version = '0000' WHERE id = $1`, [bridge.id]);
      await afterCacheTtl();
      await expectMigrating(bridge);
      const write = await t.http().post('/projects').set(as(bridge)).send({ name: 'written during the migration' });
      expect(write.status).toBe(503);
      expect(write.body.error).toBe('tenant_migrating');
      await expectServing(everyone.filter((w) => w !== bridge));
    } finally {
      await owner.query(`UPDATE control.tenants SET schema_version = $2 WHERE id = $1`, [bridge.id, required]);
    }
    await afterCacheTtl();
    await expectServing(everyone);
    // The refused write never landed.
    const list = await t.http().get('/projects').set(as(bridge)).expect(200);
    expect(list.body.items.map((p: { name: string }) => p.name)).not.toContain('written during the migration');
  });

  it('a silo tenant behind gets 503 tenant_migrating the same way', async () => {
    try {
      await owner.query(`UPDATE control.tenants SET schema_version = '0000' WHERE id = $1`, [silo.id]);
      await afterCacheTtl();
      await expectMigrating(silo);
      await expectServing(everyone.filter((w) => w !== silo));
    } finally {
      await owner.query(`UPDATE control.tenants SET schema_version = $2 WHERE id = $1`, [silo.id, required]);
    }
    await afterCacheTtl();
    await expectServing(everyone);
  });

  it("pool tenants follow their pool: a pool behind makes every pool tenant of it 503 while bridge and silo tenants answer 200", async () => {
    const pool = await owner.query(`SELECT pool_id FROM control.tenants WHERE id = $1`, [poolA.id]);
    const poolId: string = pool.rows[0].pool_id;
    try {
      await owner.query(`UPDATE control.pools SET schema_version = '0000' WHERE id = $1`, [poolId]);
      await afterCacheTtl();
      await expectMigrating(poolA);
      await expectMigrating(poolB);
      await expectServing([bridge, otherBridge, silo]);
    } finally {
      await owner.query(`UPDATE control.pools SET schema_version = $2 WHERE id = $1`, [poolId, required]);
    }
    await afterCacheTtl();
    await expectServing(everyone);
  });

  it("a pool tenant's own schema_version does not matter: its pool's shared schema is what it runs on", async () => {
    try {
      await owner.query(`UPDATE control.tenants SET schema_version = '0000' WHERE id = $1`, [poolA.id]);
      await afterCacheTtl();
      await expectServing(everyone);
    } finally {
      await owner.query(`UPDATE control.tenants SET schema_version = $2 WHERE id = $1`, [poolA.id, required]);
    }
  });
});

describe('version skew with a long registry cache (REGISTRY_CACHE_TTL_MS 10 minutes, as with Redis)', () => {
  let t: TestApp;
  let owner: Client;
  let bridge: OnboardedTenant;
  let pooled: OnboardedTenant;
  const required = latestVersion('tenant');

  beforeAll(async () => {
    t = await startTestApp({ registryCacheTtlMs: 600_000 });
    owner = new Client({ connectionString: t.db.ownerUrl });
    await owner.connect();
    bridge = await t.onboard('skewlong', 'bridge');
    pooled = await t.onboard('skewlongp', 'pool');
  });
  afterAll(async () => {
    await owner?.end();
    await t?.close();
  });

  const statusOf = async (who: OnboardedTenant) => (await t.http().get('/projects').set(as(who))).status;

  /** Polls until the tenant answers 200 and says how long that took after the migration was recorded. */
  async function servedAgainWithin(who: OnboardedTenant, limitMs: number): Promise<number> {
    const t0 = Date.now();
    while (Date.now() - t0 < limitMs) {
      if ((await statusOf(who)) === 200) return Date.now() - t0;
      await sleep(100);
    }
    throw new Error(`${who.slug} still refused ${limitMs} ms after its migration was recorded`);
  }

  it('serves a bridge tenant again about a second after its migration is recorded, though the cache would keep the old version for 10 minutes', async () => {
    await owner.query(`UPDATE control.tenants SET schema_version = '0000' WHERE id = $1`, [bridge.id]);
    // The record is cached since the onboarding's login: as on an instance started during the
    // migration, this one now caches "behind".
    t.app.get(TenantRegistry).forgetTenantRecord(bridge);
    expect(await statusOf(bridge)).toBe(503);
    expect(await statusOf(bridge)).toBe(503);
    // The fleet migration records the new version and publishes nothing.
    await owner.query(`UPDATE control.tenants SET schema_version = $2 WHERE id = $1`, [bridge.id, required]);
    expect(await servedAgainWithin(bridge, 3000)).toBeLessThan(3000);
  });

  it('does the same for pool tenants, whose version is their pool’s', async () => {
    const { rows } = await owner.query(`SELECT pool_id FROM control.tenants WHERE id = $1`, [pooled.id]);
    try {
      await owner.query(`UPDATE control.pools SET schema_version = '0000' WHERE id = $1`, [rows[0].pool_id]);
      // The pool's record is cached since onboarding: as on an instance started during the migration.
      t.app.get(TenantRegistry).forgetPool(rows[0].pool_id);
      expect(await statusOf(pooled)).toBe(503);
    } finally {
      await owner.query(`UPDATE control.pools SET schema_version = $2 WHERE id = $1`, [rows[0].pool_id, required]);
    }
    expect(await servedAgainWithin(pooled, 3000)).toBeLessThan(3000);
  });
});
