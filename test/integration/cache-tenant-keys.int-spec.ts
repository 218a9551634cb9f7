import { Global, Module } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { ClsModule } from 'nestjs-cls';
import { Redis } from 'ioredis';
import { randomBytes, randomUUID } from 'node:crypto';
import { loadStrataConfig, StrataConfigModule } from '#strata/common';
import { MissingTenantContextError, TenantContext, type TenantPlacement } from '#strata/tenancy/platform';
import { CacheModule, REDIS_CLIENT, RedisNotConfiguredError, TenantCache, TenantCacheKeyError } from '#strata/cache';
import { rejectionOf } from '../support/tenancy-fixture';

jest.setTimeout(30_000);

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
// Redis is shared with other test files and engineers: everything this file writes lives here.
const NS = `test:cache-keys:${randomBytes(4).toString('hex')}:`;

const placement = (slug: string): TenantPlacement => ({
  id: randomUUID(),
  slug,
  tier: 'pool',
  poolId: 'pool-default',
  schemaName: 'shared',
  databaseName: null,
  status: 'active',
  schemaVersion: '0', placementEpoch: 1
});

/** In the app TenancyModule provides TenantContext globally; this test needs nothing else of it. */
@Global()
@Module({ providers: [TenantContext], exports: [TenantContext] })
class ContextOnlyModule {}

async function cacheModule(redisUrl: string | undefined): Promise<TestingModule> {
  const config = loadStrataConfig({
    DATABASE_URL: 'postgres://unused@127.0.0.1:1/unused',
    AUTH_JWT_SECRET: 'cache-test-secret-0123456789abcdef',
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  });
  const m = await Test.createTestingModule({
    imports: [StrataConfigModule.forRoot(config), ClsModule.forRoot({ global: true }), ContextOnlyModule, CacheModule.forRoot({ namespace: NS })],
  }).compile();
  await m.init();
  return m;
}

async function scanAll(redis: Redis, match: string): Promise<string[]> {
  const found = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    keys.forEach((k) => found.add(k));
    cursor = next;
  } while (cursor !== '0');
  return [...found].sort();
}

describe('TenantCache on real Redis', () => {
  let mod: TestingModule;
  let cache: TenantCache;
  let ctx: TenantContext;
  let raw: Redis;
  const a = placement('cache-a');
  const b = placement('cache-b');
  const inA = <T>(fn: () => Promise<T>) => ctx.run({ tenant: a }, fn);
  const inB = <T>(fn: () => Promise<T>) => ctx.run({ tenant: b }, fn);

  beforeAll(async () => {
    mod = await cacheModule(REDIS_URL);
    cache = mod.get(TenantCache);
    ctx = mod.get(TenantContext);
    raw = new Redis(REDIS_URL, { connectionName: 'strata-test-raw' });
  });
  afterAll(async () => {
    const leftovers = raw ? await scanAll(raw, `${NS}*`) : [];
    for (let i = 0; i < leftovers.length; i += 500) await raw.unlink(...leftovers.slice(i, i + 500));
    await raw?.quit();
    await mod?.close();
  });

  it('shares one lazily connected client and keys every entry t:{tenantId}: by construction', async () => {
    const client = mod.get<Redis>(REDIS_CLIENT);
    expect(client).toBeInstanceOf(Redis);
    await inA(() => cache.set('profile', { n: 1 }, 60));
    expect(await raw.get(`${NS}t:${a.id}:profile`)).toBe('{"n":1}');
    const ttl = await raw.ttl(`${NS}t:${a.id}:profile`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it("keeps A's keys invisible to B: same logical key, different values", async () => {
    await inA(() => cache.set('settings', { owner: 'A' }, 60));
    await inB(() => cache.set('settings', { owner: 'B' }, 60));
    expect(await inA(() => cache.get('settings'))).toEqual({ owner: 'A' });
    expect(await inB(() => cache.get('settings'))).toEqual({ owner: 'B' });

    await inA(() => cache.set('only-a', 42, 60));
    expect(await inB(() => cache.get('only-a'))).toBeUndefined();
    // B deleting "its" only-a removes nothing of A's.
    expect(await inB(() => cache.del('only-a'))).toBe(false);
    expect(await inA(() => cache.get('only-a'))).toBe(42);
    expect(await inA(() => cache.del('only-a'))).toBe(true);
    expect(await inA(() => cache.get('only-a'))).toBeUndefined();
  });

  it('fails closed outside a tenant context, before touching Redis', async () => {
    const before = await scanAll(raw, `${NS}*`);
    for (const call of [
      () => cache.get('x'),
      () => cache.set('x', 1, 60),
      () => cache.del('x'),
      () => cache.wrap('x', 60, async () => 1),
      () => cache.invalidateTenant(),
    ]) {
      const err = await rejectionOf(call());
      expect(err).toBeInstanceOf(MissingTenantContextError);
      expect(err.message).toMatch(/tenantContext\.run/);
    }
    expect(await scanAll(raw, `${NS}*`)).toEqual(before);
  });

  it('rejects keys that are patterns, empty, too long or not printable ASCII', async () => {
    for (const bad of ['*', 'a*', 'x?', '[ab]', 'back\\slash', '', 'has space', 'k'.repeat(257), 'tab\there', 'é']) {
      expect(await rejectionOf(inA(() => cache.get(bad)))).toBeInstanceOf(TenantCacheKeyError);
    }
    await expect(inA(() => cache.set('ok:k'.padEnd(256, 'k'), 1, 60))).resolves.toBeUndefined();
    await expect(rejectionOf(inA(() => cache.set('ttl', 1, 0)))).resolves.toThrow(/TTL/);
    await expect(rejectionOf(inA(() => cache.set('ttl', 1, 1.5)))).resolves.toThrow(/TTL/);
    await expect(rejectionOf(inA(() => cache.set('undef', undefined, 5)))).resolves.toThrow(/JSON/);
  });

  it('wrap() runs the loader once, caches its result, and keeps tenants apart', async () => {
    const loader = jest.fn(async () => ({ loadedAt: Date.now() }));
    const first = await inA(() => cache.wrap('expensive', 30, loader));
    const again = await inA(() => cache.wrap('expensive', 30, loader));
    expect(again).toEqual(first);
    expect(loader).toHaveBeenCalledTimes(1);
    // Concurrent misses of a fresh key share one load.
    const slow = jest.fn(async () => {
      await new Promise((r) => setTimeout(r, 50));
      return 'v';
    });
    const all = await inA(() => Promise.all(Array.from({ length: 10 }, () => cache.wrap('slow', 30, slow))));
    expect(all).toEqual(Array(10).fill('v'));
    expect(slow).toHaveBeenCalledTimes(1);
    // B's identical key is B's own miss.
    await inB(() => cache.wrap('expensive', 30, loader));
    expect(loader).toHaveBeenCalledTimes(2);
    expect(await raw.ttl(`${NS}t:${a.id}:expensive`)).toBeGreaterThan(0);
  });

  it("invalidateTenant() removes all of A's keys in SCAN batches and nothing else", async () => {
    const A_KEYS = 1_500;
    const pipe = raw.pipeline();
    for (let i = 0; i < A_KEYS; i++) pipe.set(`${NS}t:${a.id}:bulk:${i}`, '1', 'EX', 300);
    for (let i = 0; i < 50; i++) pipe.set(`${NS}t:${b.id}:bulk:${i}`, '1', 'EX', 300);
    // Lookalikes that must survive: no tenant prefix, A's id without the separator, A's id inside B's key.
    const survivors = [`${NS}foreign:${a.id}`, `${NS}t:${a.id}x:bulk`, `${NS}t:${b.id}:about:${a.id}`];
    for (const k of survivors) pipe.set(k, '1', 'EX', 300);
    await pipe.exec();
    await inA(() => cache.set('settings', { owner: 'A' }, 60));
    await inB(() => cache.set('settings', { owner: 'B' }, 60));
    const aBefore = (await scanAll(raw, `${NS}t:${a.id}:*`)).length;
    expect(aBefore).toBeGreaterThan(A_KEYS);
    const bBefore = await scanAll(raw, `${NS}t:${b.id}:*`);

    const client = mod.get<Redis>(REDIS_CLIENT);
    const scan = jest.spyOn(client, 'scan');
    const unlink = jest.spyOn(client, 'unlink');
    const keys = jest.spyOn(client, 'keys');
    try {
      expect(await inA(() => cache.invalidateTenant())).toBe(aBefore);
      expect(scan.mock.calls.length).toBeGreaterThan(1);
      for (const call of scan.mock.calls) expect(call.slice(1)).toEqual(['MATCH', `${NS}t:${a.id}:*`, 'COUNT', 500]);
      expect(unlink.mock.calls.length).toBeGreaterThan(1);
      expect(keys).not.toHaveBeenCalled();
    } finally {
      scan.mockRestore();
      unlink.mockRestore();
      keys.mockRestore();
    }

    expect(await scanAll(raw, `${NS}t:${a.id}:*`)).toEqual([]);
    expect(await scanAll(raw, `${NS}t:${b.id}:*`)).toEqual(bBefore);
    for (const k of survivors) expect(await raw.exists(k)).toBe(1);
    expect(await inB(() => cache.get('settings'))).toEqual({ owner: 'B' });
    expect(await inA(() => cache.get('settings'))).toBeUndefined();
  });

  describe('without REDIS_URL', () => {
    let bare: TestingModule;
    beforeAll(async () => {
      bare = await cacheModule(undefined);
    });
    afterAll(async () => {
      await bare?.close();
    });

    it('boots, and fails with an actionable error only when the cache is used', async () => {
      const c = bare.get(TenantCache);
      const cx = bare.get(TenantContext);
      const err = await rejectionOf(cx.run({ tenant: a }, () => c.wrap('k', 5, async () => 1)));
      expect(err).toBeInstanceOf(RedisNotConfiguredError);
      expect(err.message).toMatch(/REDIS_URL/);
      // The tenant check still comes first.
      expect(await rejectionOf(c.get('k'))).toBeInstanceOf(MissingTenantContextError);
    });
  });
});
