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

/**
 * A warmer over a driver that counts the leases it hands out and the connections (query runners)
 * they hold; each touch takes a few ms.
 */
function warmerCounting() {
  let entered = 0;
  let touching = 0;
  let maxTouching = 0;
  let held = 0;
  let maxHeld = 0;
  const events: string[] = [];
  const dataSource = {
    entityMetadatas: [{ tableName: 'projects' }],
    createQueryRunner: () => {
      held++;
      maxHeld = Math.max(maxHeld, held);
      return {
        query: async () => {
          touching++;
          maxTouching = Math.max(maxTouching, touching);
          await new Promise((r) => setTimeout(r, 5));
          touching--;
          events.push('touched');
        },
        release: async () => {
          held--;
          events.push('released');
        },
      };
    },
  };
  const driver = { ownConnections: true, enter: async () => (entered++, { dataSource }), leave: () => undefined };
  const registry = { findPool: async () => ({ id: 'main-silo' }) };
  const warmer = new PlacementWarmer({ of: () => driver } as never, registry as never, new TenantMoveHints(), { siloPoolMax: 6 } as never);
  return { warmer, driver, entered: () => entered, maxTouching: () => maxTouching, maxHeld: () => maxHeld, held: () => held, events };
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

  it('opens the connections one after the other, each held until the last is open, then gives them all back', async () => {
    const w = warmerCounting();
    await w.warmer.warm(target);
    expect(w.maxTouching()).toBe(1);
    expect(w.maxHeld()).toBe(6);
    expect(w.held()).toBe(0);
    expect(w.events).toEqual([...Array(6).fill('touched'), ...Array(6).fill('released')]);
  });

  it("opens nothing for a home on a shared DataSource (pool, bridge): its connections are every tenant's", async () => {
    const w = warmerCounting();
    w.driver.ownConnections = false;
    await w.warmer.warm({ ...target, tier: 'bridge', schemaName: 't_acme', databaseName: null });
    expect([w.entered(), w.maxHeld()]).toEqual([0, 0]);
  });

  it('never opens more connections than one DataSource holds (SILO_POOL_MAX): the warm holds each until the last is open', async () => {
    const w = warmerCounting();
    await w.warmer.warm(target, 9);
    expect([w.entered(), w.maxHeld()]).toEqual([6, 6]);
  });
});
