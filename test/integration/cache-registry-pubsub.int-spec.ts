import { Test, type TestingModule } from '@nestjs/testing';
import { ClsModule } from 'nestjs-cls';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { StrataConfigModule, type StrataConfig } from '#strata/common';
import { ControlPlaneModule, TENANT_CHANGE_PUBLISHER, TenantRegistry, type TenantChangePublisher } from '#strata/control-plane';
import { SiloDataSourceCache, TenancyModule, WARM_CONNECTIONS } from '#strata/tenancy/platform';
import { MigratorModule } from '#strata/migrator';
import { AdminModule, TenantAdminService } from '#strata/admin';
import { RegistryInvalidationModule, TenantRegistryInvalidation } from '#strata/cache';
import { createTestDatabase, uniqueSlug, type TestDatabase } from '../support/test-database';
import { testConfig } from '../support/test-config';
import { sleep, waitFor } from '../support/tenancy-fixture';

jest.setTimeout(60_000);

// Unique per run: Redis is shared, and another file's publishes must not reach these instances.
const CHANNEL = `test:registry:${randomBytes(4).toString('hex')}`;
const WITHIN_MS = 1000;

interface Instance {
  module: TestingModule;
  registry: TenantRegistry;
  admin: TenantAdminService;
}

/** One "app instance": its own registry (60 s TTL), admin service and, optionally, the subscriber. */
async function startInstance(config: StrataConfig, pubsub: boolean): Promise<Instance> {
  const module = await Test.createTestingModule({
    imports: [
      StrataConfigModule.forRoot(config),
      ClsModule.forRoot({ global: true }),
      ControlPlaneModule,
      MigratorModule,
      TenancyModule,
      AdminModule,
      ...(pubsub ? [RegistryInvalidationModule.forRoot({ channel: CHANNEL })] : []),
    ],
  }).compile();
  await module.init();
  return { module, registry: module.get(TenantRegistry), admin: module.get(TenantAdminService) };
}

/** Polls instance `i`'s registry (a cache hit costs nothing) and returns how long the change took. */
async function seenWithin<T>(probe: () => Promise<T>, done: (v: T) => boolean): Promise<number> {
  const started = Date.now();
  const last = await waitFor(probe, done, WITHIN_MS * 3, 10);
  expect(done(last)).toBe(true);
  return Date.now() - started;
}

describe('TenantRegistry invalidation over Redis pub/sub', () => {
  let db: TestDatabase;
  let config: StrataConfig;
  let one: Instance; // where the admin acts
  let two: Instance; // another API/worker instance, subscribed
  let stale: Instance; // an instance without the subscriber: shows what the 60 s TTL alone gives

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { registryCacheTtlMs: 60_000, siloPoolMax: 8 });
    one = await startInstance(config, true);
    two = await startInstance(config, true);
    stale = await startInstance(config, false);
    expect(one.module.get(TenantRegistryInvalidation).listening).toBe(true);
    expect(two.module.get(TenantRegistryInvalidation).listening).toBe(true);
  });
  afterAll(async () => {
    for (const i of [one, two, stale]) await i?.module.close();
    await db?.drop();
  });

  it('a suspension through instance 1 reaches instance 2 within a second, and back', async () => {
    const t = await one.admin.create({ slug: uniqueSlug('pubsub'), name: 'pubsub inc', tier: 'pool' });
    // Warm both caches under both keys.
    for (const i of [two, stale]) {
      expect((await i.registry.findById(t.id))?.status).toBe('active');
      expect((await i.registry.findBySlug(t.slug))?.status).toBe('active');
    }

    await one.admin.setStatus(t.id, 'suspended');
    const byId = await seenWithin(() => two.registry.findById(t.id), (r) => r?.status === 'suspended');
    expect(byId).toBeLessThan(WITHIN_MS);
    expect((await two.registry.findBySlug(t.slug))?.status).toBe('suspended');
    // The same cache without pub/sub still serves the old answer: the test is not passing by TTL.
    expect((await stale.registry.findById(t.id))?.status).toBe('active');

    await one.admin.setStatus(t.id, 'active');
    const back = await seenWithin(() => two.registry.findBySlug(t.slug), (r) => r?.status === 'active');
    expect(back).toBeLessThan(WITHIN_MS);
  });

  it('a created tenant replaces a cached "unknown slug" on instance 2', async () => {
    const slug = uniqueSlug('pubsub-new');
    // Negative answers, cached for 60 s.
    for (const i of [two, stale]) expect(await i.registry.findBySlug(slug)).toBeNull();
    await one.admin.create({ slug, name: 'new inc', tier: 'pool' });
    expect(await seenWithin(() => two.registry.findBySlug(slug), (r) => r?.status === 'active')).toBeLessThan(WITHIN_MS);
    expect(await stale.registry.findBySlug(slug)).toBeNull();
  });

  it('a new membership replaces a cached "not a member" on instance 2', async () => {
    const home = await one.admin.create({ slug: uniqueSlug('pubsub-home'), name: 'home inc', tier: 'pool' });
    const other = await one.admin.create({ slug: uniqueSlug('pubsub-other'), name: 'other inc', tier: 'pool' });
    const email = `someone@${home.slug}.test`;
    const user = await one.admin.addUser(home.id, { email, password: 'correct-horse-battery', role: 'owner' });
    for (const i of [two, stale]) expect(await i.registry.membershipRole(user.id, other.id)).toBeNull();
    await one.admin.addUser(other.id, { email, role: 'member' });
    expect(await seenWithin(() => two.registry.membershipRole(user.id, other.id), (r) => r === 'member')).toBeLessThan(WITHIN_MS);
    expect(await stale.registry.membershipRole(user.id, other.id)).toBeNull();
  });

  it('an unreadable message clears the whole registry rather than being ignored', async () => {
    const t = await one.admin.create({ slug: uniqueSlug('pubsub-junk'), name: 'junk inc', tier: 'pool' });
    expect((await two.registry.findById(t.id))?.status).toBe('active');
    // Changed behind the registry's back (no publish), then a malformed message arrives.
    const { Client } = await import('pg');
    const owner = new Client({ connectionString: db.ownerUrl });
    await owner.connect();
    try {
      await owner.query(`UPDATE control.tenants SET status = 'suspended' WHERE id = $1`, [t.id]);
    } finally {
      await owner.end();
    }
    const raw = new Redis(config.redisUrl!, { connectionName: 'strata-test-publisher' });
    try {
      await raw.publish(CHANNEL, '{not json');
    } finally {
      await raw.quit();
    }
    expect(await seenWithin(() => two.registry.findById(t.id), (r) => r?.status === 'suspended')).toBeLessThan(WITHIN_MS);
  });

  it('an instance whose subscriber connection drops forgets what it cached and caches for the fallback TTL only until it is back', async () => {
    const t = await one.admin.create({ slug: uniqueSlug('pubsub-drop'), name: 'drop inc', tier: 'pool' });
    expect((await two.registry.findById(t.id))?.status).toBe('active');
    expect(two.registry.currentTtlMs).toBe(60_000);
    // Changed behind the registry's back: no message will ever say so.
    const { Client } = await import('pg');
    const owner = new Client({ connectionString: db.ownerUrl });
    await owner.connect();
    try {
      await owner.query(`UPDATE control.tenants SET status = 'suspended' WHERE id = $1`, [t.id]);
    } finally {
      await owner.end();
    }
    // Only instance 2's own subscriber connection is killed (by its id), never another client of the shared Redis.
    const invalidation = two.module.get(TenantRegistryInvalidation);
    const sub = (invalidation as unknown as { subscriber: Redis }).subscriber;
    const port = (sub as unknown as { stream: { localPort: number } }).stream.localPort;
    const raw = new Redis(config.redisUrl!, { connectionName: 'strata-test-killer' });
    try {
      const list = (await raw.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
      const line = list.split('\n').find((l) => new RegExp(`addr=[^ ]+:${port} `).test(l));
      expect(line).toBeDefined();
      await raw.call('CLIENT', 'KILL', 'ID', /id=(\d+)/.exec(line!)![1]);
    } finally {
      await raw.quit();
    }
    expect(await waitFor(() => two.registry.currentTtlMs, (ms) => ms === 5000, 3000, 5)).toBe(5000);
    expect((await two.registry.findById(t.id))?.status).toBe('suspended');
    // ioredis reconnects and resubscribes: the long TTL is safe again.
    expect(await waitFor(() => two.registry.currentTtlMs, (ms) => ms === 60_000, 10_000, 20)).toBe(60_000);
  });

  it('a move hint makes instance 2, which serves the tenant, open connections to the home it names, and nothing else: no invalidation, no connections where the tenant is not served, junk dropped', async () => {
    const moving = await one.admin.create({ slug: uniqueSlug('pubsub-move'), name: 'moving inc', tier: 'pool' });
    const created = await one.admin.create({ slug: uniqueSlug('pubsub-silo'), name: 'silo inc', tier: 'silo' });
    const silo = (await one.registry.findById(created.id))!;
    expect((await two.registry.findById(moving.id))?.status).toBe('active');
    one.registry.invalidateTenant(moving);
    const silos = (i: Instance) => {
      const cache = i.module.get(SiloDataSourceCache);
      return { size: cache.stats().size, connections: cache.serverStats().reduce((n, s) => n + s.total, 0) };
    };
    const [before1, before2] = [silos(one), silos(two)];
    // Junk on the hint channel first: the valid hint after it shows it was read (one channel keeps its order).
    const raw = new Redis(config.redisUrl!, { connectionName: 'strata-test-publisher' });
    try {
      await raw.publish(`${CHANNEL}.moves`, '{not json');
      await raw.publish(`${CHANNEL}.moves`, JSON.stringify({ tenantId: moving.id, slug: moving.slug, tier: 'gold' }));
    } finally {
      await raw.quit();
    }
    await one.module.get<TenantChangePublisher>(TENANT_CHANGE_PUBLISHER).publishTenantMoving({
      tenantId: moving.id,
      slug: moving.slug,
      tier: 'silo',
      poolId: silo.poolId,
      schemaName: silo.schemaName,
      databaseName: silo.databaseName,
    });
    const warmed = await waitFor(() => silos(two), (s) => s.size === before2.size + 1 && s.connections >= before2.connections + WARM_CONNECTIONS, 3000, 5);
    expect(warmed.size).toBe(before2.size + 1);
    expect(warmed.connections).toBeGreaterThanOrEqual(before2.connections + WARM_CONNECTIONS);
    expect(two.registry.cachedRecordOf(moving)?.id).toBe(moving.id);
    expect(silos(one)).toEqual(before1);
    expect(stale.module.get(SiloDataSourceCache).stats().size).toBe(0);
  });

  describe('without REDIS_URL', () => {
    let local: Instance;
    beforeAll(async () => {
      local = await startInstance({ ...config, redisUrl: undefined }, true);
    });
    afterAll(async () => {
      await local?.module.close();
    });

    it('still invalidates its own registry and does not fail the admin call', async () => {
      expect(local.module.get(TenantRegistryInvalidation).listening).toBe(false);
      const t = await local.admin.create({ slug: uniqueSlug('pubsub-local'), name: 'local inc', tier: 'pool' });
      expect((await local.registry.findById(t.id))?.status).toBe('active');
      expect((await two.registry.findById(t.id))?.status).toBe('active');
      await local.admin.setStatus(t.id, 'suspended');
      expect((await local.registry.findById(t.id))?.status).toBe('suspended');
      // Nothing was published: instance 2 keeps its cached answer until its TTL.
      expect((await two.registry.findById(t.id))?.status).toBe('active');
      await sleep(200);
      expect((await two.registry.findById(t.id))?.status).toBe('active');
    });
  });
});
