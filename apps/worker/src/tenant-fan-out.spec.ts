import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataSource } from 'typeorm';
import type { Redis } from 'ioredis';
import { JobsUnavailableError, type ResolvedJobsOptions, type SystemTenantRunner, type TenantJobOptions, type TenantJobProducer } from '#strata/jobs';
import type { TenantEntity } from '#strata/control-plane';
import { FAN_OUT_RETRY_PAUSES_MS, TenantFanOut } from './tenant-fan-out';

/** A control-plane tenant row as find() returns it. */
const tenantRow = (id: string, status = 'active') =>
  ({ id, slug: `t-${id}`, tier: 'pool', poolId: 'default', schemaName: 'public', databaseName: null, status, schemaVersion: 1, placementEpoch: 0 }) as unknown as TenantEntity;

/** The fan-out over fakes: the system runner runs inline, the producer answers as `add` says. */
function fanOutWith(rows: TenantEntity[], add: (tenantId: string, opts: TenantJobOptions) => Promise<void>) {
  // The tenant each add() runs for, as the real runner's CLS context would carry it.
  const tenant = new AsyncLocalStorage<string>();
  const system = {
    runAsSystem: (fn: () => Promise<unknown>) => fn(),
    runAsTenant: (placement: { id: string }, fn: () => Promise<unknown>) => tenant.run(placement.id, fn),
  } as unknown as SystemTenantRunner;
  const producer = { add: (_q: string, _n: string, _p: unknown, opts: TenantJobOptions) => add(tenant.getStore()!, opts) } as unknown as TenantJobProducer;
  const control = { getRepository: () => ({ find: async () => rows }) } as unknown as DataSource;
  return new TenantFanOut(system, producer, control, {} as Redis, { prefix: 'test' } as ResolvedJobsOptions);
}

const job = { requestIdPrefix: 'sweep', queue: 'q', name: 'n', payload: {} };

describe('TenantFanOut', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] }));
  afterEach(() => jest.useRealTimers());

  it('tries a tenant whose enqueue Redis did not take again, with the same job id, and still enqueues every other tenant', async () => {
    const calls: Array<{ tenant: string; jobId?: string }> = [];
    const fanOut = fanOutWith([tenantRow('a'), tenantRow('b')], async (tenant, opts) => {
      calls.push({ tenant, jobId: opts.jobId });
      if (tenant === 'a' && calls.filter((c) => c.tenant === 'a').length === 1) throw new JobsUnavailableError('no answer from Redis within 500 ms');
    });
    const pending = fanOut.enqueuePerActiveTenant(job);
    await jest.advanceTimersByTimeAsync(FAN_OUT_RETRY_PAUSES_MS[0]);
    const report = await pending;
    expect(report.enqueued.sort()).toEqual(['a', 'b']);
    expect(report.failed).toEqual([]);
    const aIds = calls.filter((c) => c.tenant === 'a').map((c) => c.jobId);
    expect(aIds).toHaveLength(2);
    expect(aIds[0]).toBe(aIds[1]);
    expect(aIds[0]).toBe(`${report.requestId}-a`);
  });

  it('reports a tenant as failed, not the whole run, when Redis never takes its job', async () => {
    const fanOut = fanOutWith([tenantRow('a'), tenantRow('b'), tenantRow('c', 'suspended')], async (tenant) => {
      if (tenant === 'a') throw new JobsUnavailableError('bullmq:q: down');
    });
    const pending = fanOut.enqueuePerActiveTenant(job);
    await jest.advanceTimersByTimeAsync(FAN_OUT_RETRY_PAUSES_MS.reduce((a, b) => a + b, 0));
    const report = await pending;
    expect(report.enqueued).toEqual(['b']);
    expect(report.failed).toEqual([{ id: 'a', reason: expect.stringContaining('bullmq:q: down') }]);
    expect(report.skipped).toEqual([{ id: 'c', status: 'suspended' }]);
  });

  it('enqueues nothing for a suspended tenant or one in maintenance, and reports both as skipped', async () => {
    const enqueued: string[] = [];
    const inMaintenance = { ...tenantRow('m'), maintenanceSince: new Date() } as TenantEntity;
    const fanOut = fanOutWith([tenantRow('a'), tenantRow('s', 'suspended'), inMaintenance], async (tenant) => {
      enqueued.push(tenant);
    });
    const report = await fanOut.enqueuePerActiveTenant(job);
    expect(enqueued).toEqual(['a']);
    expect(report.skipped).toEqual([
      { id: 's', status: 'suspended' },
      { id: 'm', status: 'maintenance' },
    ]);
  });

  it('does not retry an error that is not about Redis being unavailable', async () => {
    let attempts = 0;
    const fanOut = fanOutWith([tenantRow('a')], async () => {
      attempts++;
      throw new Error('a bug');
    });
    await expect(fanOut.enqueuePerActiveTenant(job)).rejects.toThrow('a bug');
    expect(attempts).toBe(1);
  });
});
