import { tenantReadScope, tenantSetupSql, TenantConnectionManager } from './tenant-connection.manager';

const id = '3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60';

describe('tenant setup statement', () => {
  it('opens the transaction, sets search_path and the tenant for it only and takes the shared fence lock (the check follows as a statement of its own)', () => {
    expect(tenantSetupSql({ id, schemaName: 't_acme' })).toBe(
      `BEGIN; SELECT set_config('search_path', '"t_acme"', true), set_config('app.tenant_id', '${id}', true), ` +
        `pg_advisory_xact_lock_shared(1398035009, hashtext('${id}'))`,
    );
  });

  it('leaves the fence out only when asked to (the bench measures it that way)', () => {
    expect(tenantSetupSql({ id, schemaName: 't_acme' }, false)).toBe(
      `BEGIN; SELECT set_config('search_path', '"t_acme"', true), set_config('app.tenant_id', '${id}', true)`,
    );
  });

  it("sets the unit's statement and lock budgets for its transaction only, before the fence lock so the lock wait is bounded too", () => {
    expect(tenantSetupSql({ id, schemaName: 't_acme' }, true, { statementTimeoutMs: 15000, lockTimeoutMs: 3000 })).toBe(
      `BEGIN; SELECT set_config('search_path', '"t_acme"', true), set_config('app.tenant_id', '${id}', true), ` +
        `set_config('statement_timeout', '15000', true), set_config('lock_timeout', '3000', true), ` +
        `pg_advisory_xact_lock_shared(1398035009, hashtext('${id}'))`,
    );
  });

  it("leaves a budget of 0 to the role's default and refuses one that is not an integer", () => {
    expect(tenantSetupSql({ id, schemaName: 't_acme' }, false, { statementTimeoutMs: 0, lockTimeoutMs: 0 })).toBe(tenantSetupSql({ id, schemaName: 't_acme' }, false));
    expect(() => tenantSetupSql({ id, schemaName: 't_acme' }, false, { statementTimeoutMs: 1.5, lockTimeoutMs: 0 })).toThrow(/refusing unit budget/);
  });

  it('refuses a tenant id that is not a UUID', () => {
    expect(() => tenantSetupSql({ id: `${id}', true); DROP TABLE x; --`, schemaName: 'shared' })).toThrow(/not a UUID/);
  });

  it('refuses a schema name outside the identifier rule', () => {
    expect(() => tenantSetupSql({ id, schemaName: 'shared"; DROP SCHEMA x; --' })).toThrow(/refusing schema/);
    expect(() => tenantSetupSql({ id, schemaName: 'Upper' })).toThrow(/refusing schema/);
  });
});

describe('read scope', () => {
  it('binds the quoted schema, the tenant id and the plain schema name for the fence', () => {
    expect(tenantReadScope({ id, schemaName: 't_acme' })).toEqual({ searchPath: '"t_acme"', tenantId: id, schema: 't_acme' });
  });

  it('hands out one frozen scope per placement, so its setup bytes are built once', () => {
    const a = tenantReadScope({ id, schemaName: 't_scope_reuse' });
    expect(tenantReadScope({ id, schemaName: 't_scope_reuse' })).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(tenantReadScope({ id, schemaName: 't_scope_other' })).not.toBe(a);
  });

  it('refuses what the setup statement refuses, also after a valid placement of the same tenant was seen', () => {
    tenantReadScope({ id, schemaName: 'shared' });
    expect(() => tenantReadScope({ id: `${id}'--`, schemaName: 'shared' })).toThrow(/not a UUID/);
    expect(() => tenantReadScope({ id, schemaName: 'shared"; DROP SCHEMA x; --' })).toThrow(/refusing schema/);
  });

  it('stays bounded: after 10,000 other placements the first is rebuilt, not kept', () => {
    const first = tenantReadScope({ id, schemaName: 't_bounded_first' });
    for (let i = 0; i < 10_000; i++) tenantReadScope({ id, schemaName: `t_bounded_${i}` });
    const again = tenantReadScope({ id, schemaName: 't_bounded_first' });
    expect(again).toEqual(first);
    expect(again).not.toBe(first);
  });
});

describe('following a move', () => {
  const stale = { id: '6f1d2c3b-1a2b-4c3d-9e8f-0a1b2c3d4e5f', slug: 'acme', tier: 'pool', poolId: 'main-pool', schemaName: 'shared', databaseName: null, status: 'active', schemaVersion: '0012', placementEpoch: 3 } as const;
  const managerWith = (findById: () => Promise<unknown>) => {
    const followed: unknown[] = [];
    const registry = { forgetTenantRecord: jest.fn(), findById: jest.fn(findById) };
    const context = { followPlacement: (p: unknown) => followed.push(p) };
    const config = { placementFence: true, tenantSetupPrepared: true, dataStatementTimeoutMs: 0, dataLockTimeoutMs: 0 };
    const manager = new TenantConnectionManager(context as never, {} as never, {} as never, {} as never, registry as never, {} as never, config as never);
    const follow = (p: typeof stale) => (manager as unknown as { followMove(p: unknown): Promise<{ placementEpoch: number; tier: string }> }).followMove(p);
    return { registry, followed, follow };
  };

  it('polls the control plane once per interval for all units of a tenant held by its cutover, and moves every one of them', async () => {
    let reads = 0;
    const { registry, followed, follow } = managerWith(async () => (++reads < 4 ? { ...stale } : { ...stale, tier: 'silo', placementEpoch: 4 }));
    const moved = await Promise.all(Array.from({ length: 20 }, () => follow(stale)));
    expect(moved.map((m) => [m.tier, m.placementEpoch])).toEqual(Array.from({ length: 20 }, () => ['silo', 4]));
    expect(followed).toHaveLength(20);
    expect(registry.findById).toHaveBeenCalledTimes(4);
  });

  it('polls afresh for a later wait of the same tenant once the first has ended', async () => {
    const { registry, follow } = managerWith(async () => ({ ...stale, placementEpoch: 4 }));
    await follow(stale);
    await follow(stale);
    expect(registry.findById).toHaveBeenCalledTimes(2);
  });
});
