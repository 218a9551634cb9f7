import { PlacementWarmer } from './placement.warmer';
import { TenantMoveHints } from '#strata/control-plane';
import type { TenantPlacement } from './tenant.types';

const target: TenantPlacement = {
  id: '6f1d2c3b-1a2b-4c3d-9e8f-0a1b2c3d4e5f',
  slug: 'acme',
  tier: 'silo',
  poolId: 'main-silo',
  schemaName: 'shared',
  databaseName: 'strata_t_acme',
  status: 'active',
  schemaVersion: '0012',
  placementEpoch: 2,
};

/** A warmer over a driver that counts the leases it hands out; each lease's query takes a few ms. */
function warmerCounting() {
  let entered = 0;
  const dataSource = { entityMetadatas: [{ tableName: 'projects' }], query: () => new Promise((r) => setTimeout(r, 5)) };
  const driver = { enter: async () => (entered++, { dataSource }), leave: () => undefined };
  const registry = { findPool: async () => ({ id: 'main-silo' }) };
  const warmer = new PlacementWarmer({ of: () => driver } as never, registry as never, new TenantMoveHints(), { siloPoolMax: 6 } as never);
  return { warmer, entered: () => entered };
}

describe('placement warmer', () => {
  it('warms a placement once for callers that ask while a warm of it is under way', async () => {
    const { warmer, entered } = warmerCounting();
    await Promise.all([warmer.warm(target), warmer.warm(target), warmer.warm(target, 4)]);
    expect(entered()).toBe(6);
  });

  it('warms again once the earlier warm has ended, and another placement on its own', async () => {
    const { warmer, entered } = warmerCounting();
    await warmer.warm(target);
    await Promise.all([warmer.warm(target), warmer.warm({ ...target, databaseName: 'strata_t_other' })]);
    expect(entered()).toBe(18);
  });
});
