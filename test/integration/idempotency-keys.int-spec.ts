import { randomUUID } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { TestingModule } from '@nestjs/testing';
import { escapeIdentifier } from 'pg';
import {
  IDEMPOTENCY_KEY_SWEEP_QUEUE,
  IdempotencyKeySweeper,
  IdempotentRequests,
  requestFingerprint,
  type IdempotencyKeySweepResult,
  type IdempotentRequest,
} from '#strata/idempotency';
import type { TenantJobData } from '#strata/jobs';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy/platform';
import { IDEMPOTENCY_KEY_SWEEP_CRON_NAME, IdempotencyKeySweep } from '../../apps/worker/src/idempotency-key.sweep';
import { apiError } from '../support/api-error';
import { createTenancyFixture, deferred, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(90_000);

const TIERS = ['pool', 'bridge', 'silo'] as const;
const REQUEST: IdempotentRequest = {
  route: 'POST /projects',
  hash: requestFingerprint({ method: 'POST', route: '/projects', params: {}, query: {}, body: { name: 'x' } }),
};
const CREATED = { status: 201, body: { id: 'made-once', name: 'x' } };

describe('idempotency keys in the tenant unit of work, and their sweep (real Postgres, Redis, worker)', () => {
  let fx: TenancyFixture;
  let worker: TestWorker;
  let mod: TestingModule;
  let ctx: TenantContext;
  let conn: TenantConnectionManager;
  let requests: IdempotentRequests;
  const tenants = {} as Record<(typeof TIERS)[number], TestTenant>;
  let neighbour: TestTenant;

  beforeAll(async () => {
    fx = await createTenancyFixture();
    for (const tier of TIERS) tenants[tier] = await fx.onboard(tier, `idem-${tier}`);
    neighbour = await fx.onboard('pool', 'idem-neighbour');
    worker = await startTestWorker(fx.config, { schedule: true });
    mod = worker.module;
    ctx = mod.get(TenantContext);
    conn = mod.get(TenantConnectionManager);
    requests = mod.get(IdempotentRequests, { strict: false });
  });
  afterAll(async () => {
    await worker?.close();
    await fx?.close();
  });

  const inTenant = <T>(t: TestTenant, fn: () => Promise<T>): Promise<T> => ctx.run({ tenant: t.placement }, fn);
  const keysTable = (t: TestTenant) => `${escapeIdentifier(t.schema)}.idempotency_keys`;
  const keyRows = (t: TestTenant) =>
    fx.ownerQuery<{ key: string }>(
      `SELECT idempotency_key AS key FROM ${keysTable(t)} WHERE tenant_id = $1 ORDER BY idempotency_key`,
      [t.id],
      t.database,
    );

  /** Resolves once a statement of the app role waits on a lock in `t`'s database (the duplicate behind the first request). */
  const waitingOnLock = (t: TestTenant) =>
    waitFor(
      async () =>
        (
          await fx.ownerQuery<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND wait_event_type = 'Lock'`,
            [t.database, fx.db.appRole],
          )
        )[0].n,
      (n) => n > 0,
      5000,
    );

  /** A first request that claimed its key and now waits inside its handler until released. */
  function firstRequest(t: TestTenant, key: string, outcome: 'commit' | 'fail') {
    const claimed = deferred();
    const release = deferred();
    const done = inTenant(t, () =>
      requests.run(key, REQUEST, async () => {
        claimed.resolve();
        await release.promise;
        if (outcome === 'fail') throw new Error('the first request failed');
        return CREATED;
      }),
    );
    done.catch(() => undefined);
    return { claimed: claimed.promise, release: () => release.resolve(), done };
  }

  describe.each(TIERS)('on the %s tier', (tier) => {
    it('makes a duplicate wait for the first request and replay its answer once it commits; the duplicate never runs', async () => {
      const t = tenants[tier];
      const key = randomUUID();
      const first = firstRequest(t, key, 'commit');
      await first.claimed;
      const duplicateRan = jest.fn(async () => ({ status: 201, body: { id: 'second' } }));
      const duplicate = inTenant(t, () => requests.run(key, REQUEST, duplicateRan));
      expect(await waitingOnLock(t)).toBeGreaterThan(0);
      first.release();
      expect(await first.done).toEqual({ ...CREATED, replayed: false });
      expect(await duplicate).toEqual({ ...CREATED, replayed: true });
      expect(duplicateRan).not.toHaveBeenCalled();
      expect((await keyRows(t)).filter((r) => r.key === key)).toHaveLength(1);
    });

    it('lets the waiting duplicate run and own the key when the first request rolls back', async () => {
      const t = tenants[tier];
      const key = randomUUID();
      const first = firstRequest(t, key, 'fail');
      await first.claimed;
      const duplicate = inTenant(t, () => requests.run(key, REQUEST, async () => ({ status: 201, body: { id: 'second' } })));
      await waitingOnLock(t);
      first.release();
      await expect(first.done).rejects.toThrow('the first request failed');
      expect(await duplicate).toEqual({ status: 201, body: { id: 'second' }, replayed: false });
      expect(await inTenant(t, () => requests.run(key, REQUEST, async () => CREATED))).toEqual({ status: 201, body: { id: 'second' }, replayed: true });
    });

    it('answers 409 idempotency_key_in_use when the first request outlasts the lock_timeout the duplicate waits with', async () => {
      const t = tenants[tier];
      const key = randomUUID();
      const first = firstRequest(t, key, 'commit');
      await first.claimed;
      try {
        // run() joins this unit, so its claim waits under this lock_timeout (the role's is 10 s).
        const impatient = inTenant(t, () =>
          conn.transaction(async (em) => {
            await em.query(`SET LOCAL lock_timeout = '200ms'`);
            return requests.run(key, REQUEST, async () => CREATED);
          }),
        );
        expect(await apiError(impatient)).toBe('409 idempotency_key_in_use');
      } finally {
        first.release();
      }
      expect((await first.done).replayed).toBe(false);
    });

    it('never records a key whose handler failed', async () => {
      const t = tenants[tier];
      const key = randomUUID();
      await expect(inTenant(t, () => requests.run(key, REQUEST, async () => Promise.reject(new Error('boom'))))).rejects.toThrow('boom');
      expect((await keyRows(t)).filter((r) => r.key === key)).toEqual([]);
    });
  });

  describe('the sweep', () => {
    /** Keys `<prefix>-old-N` created two days ago and `<prefix>-new-N` now, straight into the tenant's home. */
    async function plant(t: TestTenant, prefix: string, old: number, fresh: number): Promise<void> {
      await fx.ownerQuery(
        `INSERT INTO ${keysTable(t)} (tenant_id, id, idempotency_key, request_route, request_hash, response_status, response_body, created_at)
         SELECT $1::uuid, gen_random_uuid(), $2 || '-old-' || g, 'POST /projects', repeat('a', 64), 201, '{}', now() - interval '2 days'
           FROM generate_series(1, $3::int) g
         UNION ALL
         SELECT $1::uuid, gen_random_uuid(), $2 || '-new-' || g, 'POST /projects', repeat('a', 64), 201, '{}', now()
           FROM generate_series(1, $4::int) g`,
        [t.id, prefix, old, fresh],
        t.database,
      );
    }
    const count = async (t: TestTenant, prefix: string, age: 'old' | 'new') => (await keyRows(t)).filter((r) => r.key.startsWith(`${prefix}-${age}-`)).length;

    it('is registered as a cron job', () => {
      expect(mod.get(SchedulerRegistry).getCronJob(IDEMPOTENCY_KEY_SWEEP_CRON_NAME)).toBeDefined();
    });

    it("deletes only the current tenant's keys older than the retention, in batches, and leaves a neighbour in the same table alone", async () => {
      const t = tenants.pool;
      await plant(t, 'direct', 2500, 3);
      await plant(neighbour, 'direct', 2, 2);
      const result = await inTenant(t, () => mod.get(IdempotencyKeySweeper, { strict: false }).sweep());
      expect(result).toEqual({ tenantId: t.id, deleted: 2500 });
      expect([await count(t, 'direct', 'old'), await count(t, 'direct', 'new')]).toEqual([0, 3]);
      expect([await count(neighbour, 'direct', 'old'), await count(neighbour, 'direct', 'new')]).toEqual([2, 2]);
    });

    it('fans out one sweep job per active tenant; each deletes its own expired keys on its own tier', async () => {
      for (const t of [...Object.values(tenants), neighbour]) await plant(t, 'fanout', 3, 2);
      const report = await mod.get(IdempotencyKeySweep).run();
      const everyone = [...Object.values(tenants), neighbour].map((t) => t.id).sort();
      expect([...report.enqueued].sort()).toEqual(everyone);
      const queue = worker.queue(IDEMPOTENCY_KEY_SWEEP_QUEUE) as Queue<TenantJobData<unknown>, IdempotencyKeySweepResult>;
      const jobs = await waitFor(
        async () => (await queue.getJobs(['completed', 'failed'])) as Array<Job<TenantJobData<unknown>, IdempotencyKeySweepResult>>,
        (js) => js.length >= everyone.length,
        20_000,
      );
      expect(await queue.getJobs(['failed'])).toEqual([]);
      for (const t of [...Object.values(tenants), neighbour]) {
        const job = jobs.find((j) => j.data.envelope.tenantId === t.id);
        // 3 planted here, plus whatever the first sweep left for this tenant (the neighbour's 2).
        expect(job?.returnvalue).toEqual({ tenantId: t.id, deleted: t === neighbour ? 5 : 3 });
        expect([await count(t, 'fanout', 'old'), await count(t, 'fanout', 'new')]).toEqual([0, 2]);
      }
    });
  });
});
