import { SYSTEM_TENANT } from './tenant.types';
import { Test } from '@nestjs/testing';
import { ClsModule } from 'nestjs-cls';
import { MissingTenantContextError, TenantContext } from './tenant.context';
import type { TenantPlacement } from './tenant.types';

const tenant = (id: string): TenantPlacement => ({
  id,
  slug: `t-${id}`,
  tier: 'pool',
  poolId: 'main-pool',
  schemaName: 'shared',
  databaseName: null,
  status: 'active',
  schemaVersion: '0001', placementEpoch: 1
});

describe('TenantContext', () => {
  let ctx: TenantContext;
  beforeAll(async () => {
    const mod = await Test.createTestingModule({ imports: [ClsModule.forRoot({ global: true })], providers: [TenantContext] }).compile();
    ctx = mod.get(TenantContext);
  });

  it('throws an actionable error outside any context', () => {
    expect(() => ctx.require('loading invoices')).toThrow(MissingTenantContextError);
    expect(() => ctx.require('loading invoices')).toThrow(/no tenant context: loading invoices .*tenantContext\.run/);
  });

  it('holds the tenant inside run() and forgets it afterwards', async () => {
    const seen = await ctx.run({ tenant: tenant('a') }, async () => {
      await new Promise((r) => setTimeout(r, 5));
      return ctx.tenant.id;
    });
    expect(seen).toBe('a');
    expect(ctx.current()).toBeUndefined();
  });

  it('keeps interleaved async branches apart', async () => {
    const ids = ['a', 'b', 'c', 'd'];
    const results = await Promise.all(
      ids.map((id, i) =>
        ctx.run({ tenant: tenant(id) }, async () => {
          await new Promise((r) => setTimeout(r, (ids.length - i) * 3));
          return ctx.tenant.id;
        }),
      ),
    );
    expect(results).toEqual(ids);
  });

  it('gives a nested run its own tenant and restores the outer one', () => {
    ctx.run({ tenant: tenant('outer') }, () => {
      ctx.run({ tenant: tenant('inner') }, () => expect(ctx.tenant.id).toBe('inner'));
      expect(ctx.tenant.id).toBe('outer');
    });
  });

  it('refuses to rebind a context to another tenant', () => {
    ctx.run({ tenant: tenant('a') }, () => {
      expect(() => ctx.bind({ tenant: tenant('b'), requestId: 'r' })).toThrow(/refusing to switch tenants/);
    });
  });

  it('hands per-tenant resources a real tenant only: the system scope is refused, and no scope fails closed', () => {
    ctx.run({ tenant: tenant('a') }, () => expect(ctx.requireTenant('a query', 'tenant data').tenant.id).toBe('a'));
    ctx.run({ tenant: SYSTEM_TENANT, system: true }, () =>
      expect(() => ctx.requireTenant('a query', 'tenant data')).toThrow(/^the system tenant has no tenant data; enter a tenant with TenantContext\.run\(\)/),
    );
    expect(() => ctx.requireTenant('a query', 'tenant data')).toThrow(MissingTenantContextError);
  });

  it('makes up a request id when none is given', () => {
    ctx.run({ tenant: tenant('a') }, () => expect(ctx.require().requestId).toMatch(/^[0-9a-f-]{36}$/));
  });
});
