import type { StrataConfig } from '#strata/common';
import { ServerConnectionBudget, type AdmissionWait } from './server-connection.budget';
import { ServerCapacityError } from './tenancy.errors';

const budgetOf = (max: number, acquireMs = 100) =>
  new ServerConnectionBudget({ dbServerMaxConnections: max, dbServerAcquireTimeoutMs: acquireMs } as StrataConfig);

describe('ServerConnectionBudget', () => {
  it('counts shared and silo connections of one server against one cap, and servers apart', async () => {
    const budget = budgetOf(2);
    await budget.acquire('a:5432', 'shared');
    await budget.acquire('a:5432', 'silo');
    await budget.acquire('b:5432', 'silo');
    expect(budget.openOnServer('a:5432')).toBe(2);
    expect(budget.openOnServer('b:5432')).toBe(1);
    await expect(budget.acquire('a:5432', 'silo', 20)).rejects.toBeInstanceOf(ServerCapacityError);
  });

  it('hands a released slot to the first waiter, in arrival order, and records how long each waited', async () => {
    const budget = budgetOf(1, 1000);
    const waits: AdmissionWait[] = [];
    budget.onWait((w) => waits.push(w));
    const held = await budget.acquire('a:1', 'shared');
    const order: string[] = [];
    const first = budget.acquire('a:1', 'silo').then((s) => (order.push('first'), s));
    const second = budget.acquire('a:1', 'shared').then((s) => (order.push('second'), s));
    expect(budget.stats()).toEqual(expect.arrayContaining([{ server: 'a:1', kind: 'silo', open: 0, waiting: 1 }]));
    held.release();
    held.release(); // twice: still one slot
    (await first).release();
    (await second).release();
    expect(order).toEqual(['first', 'second']);
    expect(budget.openOnServer('a:1')).toBe(0);
    expect(waits.map((w) => [w.kind, w.admitted])).toEqual([
      ['silo', true],
      ['shared', true],
    ]);
  });

  it('answers 503 tenant_capacity with Retry-After after the acquire timeout, and asks reclaimers for room once per waiter', async () => {
    const budget = budgetOf(1, 30);
    const asked: string[] = [];
    budget.onPressure((server) => (asked.push(server), false));
    await budget.acquire('a:1', 'shared');
    const started = Date.now();
    const err = await budget.acquire('a:1', 'silo').catch((e: unknown) => e as ServerCapacityError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(err).toBeInstanceOf(ServerCapacityError);
    expect((err as ServerCapacityError).getStatus()).toBe(503);
    expect((err as ServerCapacityError).getResponse()).toMatchObject({ statusCode: 503, error: 'tenant_capacity' });
    expect((err as ServerCapacityError).headers).toEqual({ 'Retry-After': '1' });
    expect(asked).toEqual(['a:1']);
  });
});
