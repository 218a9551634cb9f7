import type { PoolEntity, TenantEntity, TenantRegistry } from '#strata/control-plane';
import { TenantMigratingError } from '../tenancy.errors';
import type { TenantPlacement } from '../tenant.types';
import { BRIDGE_RULES } from './bridge.tier';
import type { TierDriver } from './tier.driver';
import { PlacementResolver, type TierDrivers } from './tier.drivers';

/** A registry whose answers the test sets; it counts the reads that reach "the control plane". */
function fakeRegistry(tenantVersion: () => string) {
  const reads = { tenant: 0, pool: 0 };
  const pool = { id: 'main-bridge', kind: 'bridge', schemaVersion: '0012' } as PoolEntity;
  const registry = {
    findPool: async () => (reads.pool++, pool),
    findById: async (id: string) => (reads.tenant++, { id, tier: 'bridge', poolId: pool.id, schemaVersion: tenantVersion() } as TenantEntity),
    forgetTenantRecord: () => undefined,
    forgetPool: () => undefined,
  } as unknown as TenantRegistry;
  return { registry, reads };
}

const drivers = { of: () => ({ schemaVersionOf: BRIDGE_RULES.schemaVersionOf }) as unknown as TierDriver } as unknown as TierDrivers;
const placement = (schemaVersion: string): TenantPlacement =>
  ({ id: 't1', slug: 'acme', tier: 'bridge', poolId: 'main-bridge', schemaName: 't_acme', databaseName: null, status: 'active', schemaVersion, placementEpoch: 0 });

describe('PlacementResolver', () => {
  it('serves a tenant whose cached record is behind once the fresh record says it caught up', async () => {
    const { registry, reads } = fakeRegistry(() => '0012');
    const resolver = new PlacementResolver(registry, drivers, '0012');
    await expect(resolver.poolOf(placement('0011'))).resolves.toMatchObject({ id: 'main-bridge' });
    expect(reads.tenant).toBe(1);
  });

  it('refuses a tenant still behind on fresh records, and re-reads them at most once a second', async () => {
    const { registry, reads } = fakeRegistry(() => '0011');
    const resolver = new PlacementResolver(registry, drivers, '0012');
    for (let i = 0; i < 20; i++) await expect(resolver.poolOf(placement('0011'))).rejects.toBeInstanceOf(TenantMigratingError);
    expect(reads.tenant).toBe(1);
  });

  it('reads nothing more for a tenant at the release version', async () => {
    const { registry, reads } = fakeRegistry(() => '0012');
    const resolver = new PlacementResolver(registry, drivers, '0012');
    await resolver.poolOf(placement('0012'));
    expect(reads).toEqual({ tenant: 0, pool: 1 });
  });
});
