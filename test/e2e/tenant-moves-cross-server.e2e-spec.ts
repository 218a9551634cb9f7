import type { Tier } from '#strata/control-plane';
import { withExtraPostgres, type ExtraPostgres } from '../support/extra-postgres';
import {
  BackgroundTraffic,
  callApi,
  expectCleanMove,
  formatRun,
  homeAt,
  moveUnderLoad,
  onboardOn,
  TenantWriter,
  waitForHomeGone,
} from '../support/move-harness';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

jest.setTimeout(90_000);

/** The pools this file registers on the second server, one per kind. */
const EXTRA_POOLS: Record<Tier, { id: string; database: string }> = {
  pool: { id: 'extra-pool', database: 'strata_pool' },
  bridge: { id: 'extra-bridge', database: 'strata_bridge' },
  silo: { id: 'extra-silo', database: 'postgres' },
};

describe('online tenant moves between two PostgreSQL servers', () => {
  let t: TestApp;
  let extra: ExtraPostgres;
  let neighbours: OnboardedTenant[];
  const figures: string[] = [];
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });

  beforeAll(async () => {
    ({ started: t, extra } = await withExtraPostgres(() => startTestApp()));
    for (const [kind, { id, database }] of Object.entries(EXTRA_POOLS)) {
      const res = await callApi(t, 'POST', '/admin/pools', { headers: admin(), body: { id, kind, host: '127.0.0.1', port: extra.port, database } });
      if (res.status !== 201) throw new Error(`registering ${id} failed: ${res.status} ${JSON.stringify(res.body)}`);
    }
    // One neighbour stays on the main server's pool, one already lives in the extra server's pool
    // (whose shared schema the pool move below moves into).
    neighbours = [await t.onboard('nb-main', 'pool'), await onboardOn(t, 'nb-extra', 'pool', EXTRA_POOLS.pool.id)];
  });

  afterAll(async () => {
    if (figures.length) process.stdout.write(`\ntenant moves across servers under load:\n${figures.map((f) => `  ${f}`).join('\n')}\n`);
    // The app first: its data sources hold sessions on both servers.
    await t?.close();
    await extra?.stop();
  });

  it.each<Tier>(['pool', 'bridge', 'silo'])(
    "moves a %s tenant from the main server's default pool to the same tier on the second server under writes, reads and neighbours, losing and doubling nothing",
    async (tier) => {
      const tenant = await t.onboard(`xs-${tier}`, tier);
      const writer = new TenantWriter(t, tenant);
      const oldHome = await homeAt(t, tier, `main-${tier}`, tenant.slug);
      const target = { toTier: tier, toPoolId: EXTRA_POOLS[tier].id };

      const run = await moveUnderLoad(t, writer, target, { traffic: new BackgroundTraffic(t, neighbours) });
      figures.push(formatRun(run));
      expect(run.view).toMatchObject({ fromTier: tier, fromPoolId: `main-${tier}`, toTier: tier, toPoolId: EXTRA_POOLS[tier].id });
      const { home } = await expectCleanMove(t, run, writer, tenant, target);
      expect(home).toMatchObject({ host: '127.0.0.1', port: extra.port });

      // The old home on the main server is dropped by the executor's sweep (retention 0 in tests).
      expect(await waitForHomeGone(t, oldHome, tenant.id)).toBe(true);
    },
  );
});
