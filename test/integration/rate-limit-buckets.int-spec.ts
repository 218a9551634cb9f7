import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { openRedisConnection, RedisMonitor } from '#strata/cache';
import { hasToken, SharedBuckets, type BucketLimit, type SharedBucket } from '#strata/rate-limits';
import { startExtraRedis, type ExtraRedis } from '../support/extra-redis';
import { waitFor } from '../support/tenancy-fixture';

jest.setTimeout(60_000);

const SLOW: BucketLimit = { rate: 1, capacity: 10 };

/** As the interceptor does: a token if there is one, taken. */
async function admit(buckets: SharedBuckets, key: string, limit = SLOW): Promise<boolean> {
  const got = buckets.bucket(key, limit);
  const b: SharedBucket = got instanceof Promise ? await got : got;
  if (!hasToken(b, performance.now())) return false;
  buckets.take(b);
  return true;
}

async function evalshaCalls(admin: Redis): Promise<number> {
  const stats = await admin.info('commandstats');
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/**
 * Two "instances" (two SharedBuckets with their own connections) on a private Redis this file
 * starts, so it can count the server's commands and kill it.
 */
describe('shared token buckets: local decisions, Redis in the background', () => {
  let server: ExtraRedis;
  let admin: Redis;
  const monitor = new RedisMonitor();
  const clients: Redis[] = [];
  const started: SharedBuckets[] = [];

  const instance = (keyPrefix: string, maxKeys = 1000, syncMs = 50) => {
    const redis = openRedisConnection(server.url, { connectionName: `rl-${clients.length}`, commandTimeoutMs: 500 }, monitor);
    clients.push(redis);
    const buckets = new SharedBuckets({ redis, keyPrefix, syncMs, maxKeys });
    buckets.start();
    started.push(buckets);
    return buckets;
  };
  const prefix = () => `rl-test:${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    server = await startExtraRedis();
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    for (const b of started) await b.stop().catch(() => undefined);
    for (const c of clients) c.disconnect();
    admin?.disconnect();
    await server?.stop();
  });

  it("what one instance takes is seen by the other within one sync: the second refuses once the first spent the tenant's burst", async () => {
    const p = prefix();
    const one = instance(p);
    const two = instance(p);
    const firstTen = await Promise.all(Array.from({ length: 10 }, () => admit(one, 'tenant-a')));
    expect(firstTen).toEqual(Array(10).fill(true));
    expect(await admit(one, 'tenant-a')).toBe(false);
    await one.flush();
    // The second instance has never seen the key: its first request waits for one sync, then refuses.
    expect(await admit(two, 'tenant-a')).toBe(false);
    // Another key is untouched by it.
    expect(await admit(two, 'tenant-b')).toBe(true);
  });

  it('a burst is sent at once, not at the next sync period: with a period of a minute the other instance still sees it', async () => {
    const p = prefix();
    const one = instance(p, 1000, 60_000);
    const two = instance(p, 1000, 60_000);
    for (let i = 0; i < 10; i++) expect(await admit(one, 'burst')).toBe(true);
    // No timer will run for a minute: only the early send can bring the shared bucket down.
    await waitFor(async () => Number((await admin.hget(`${p}:burst`, 'tokens')) ?? 10), (tokens) => tokens < 1, 2000, 20);
    expect(await admit(two, 'burst')).toBe(false);
  });

  it('steady traffic on a key costs no Redis call per request: 500 requests, a handful of pipelined syncs', async () => {
    const one = instance(prefix());
    const fast: BucketLimit = { rate: 100_000, capacity: 100_000 };
    await admit(one, 'steady', fast);
    await one.flush();
    const before = await evalshaCalls(admin);
    const t0 = Date.now();
    let admitted = 0;
    while (admitted < 500) {
      for (let i = 0; i < 50; i++) if (await admit(one, 'steady', fast)) admitted++;
      await new Promise((r) => setTimeout(r, 10));
    }
    await one.flush();
    const elapsedSyncs = Math.ceil((Date.now() - t0) / 50) + 2;
    const calls = (await evalshaCalls(admin)) - before;
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(elapsedSyncs);
    expect(calls).toBeLessThan(50);
  });

  it('with Redis killed an instance keeps limiting on its own copy without waiting, and shares again once Redis is back', async () => {
    const p = prefix();
    const one = instance(p);
    const two = instance(p);
    expect(await admit(one, 'outage')).toBe(true);
    await one.flush();
    await server.kill();
    try {
      const started = performance.now();
      const answers: boolean[] = [];
      for (let i = 0; i < 15; i++) answers.push(await admit(one, 'outage'));
      // The local bucket: 9 tokens left of 10 (≈ 1 refilled meanwhile), then refusals, not errors.
      expect(answers.filter(Boolean).length).toBeGreaterThanOrEqual(9);
      expect(answers.filter(Boolean).length).toBeLessThanOrEqual(11);
      expect(answers.at(-1)).toBe(false);
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      await server.start();
    }
    // Back (empty, as a Redis without persistence restarts): the first instance's consumption during
    // the outage reaches it with its next syncs …
    await waitFor(
      async () => {
        await one.flush();
        return (await admin.hget(`${p}:outage`, 'tokens').catch(() => null)) ?? '10';
      },
      (tokens) => Number(tokens) < 2,
      10_000,
      100,
    );
    // … so the second instance, new to the key, gets what is left of the burst (a token or two), not a fresh one.
    await waitFor(async () => clients.every((c) => c.status === 'ready'), Boolean, 10_000, 50);
    const onTwo: boolean[] = [];
    for (let i = 0; i < 5; i++) onTwo.push(await admit(two, 'outage'));
    expect(onTwo.filter(Boolean).length).toBeLessThanOrEqual(2);
    expect(onTwo.at(-1)).toBe(false);
  });

  it('10,000 keys through one instance keep at most RATE_LIMIT_MAX_KEYS local buckets', async () => {
    const one = instance(prefix(), 500);
    const fast: BucketLimit = { rate: 1000, capacity: 1000 };
    for (let i = 0; i < 10_000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => admit(one, `k${i + j}`, fast)));
    expect(one.size).toBe(500);
  });
});
