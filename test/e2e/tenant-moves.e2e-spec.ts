import { randomUUID } from 'node:crypto';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { DataSource } from 'typeorm';
import { CONTROL_DATA_SOURCE, PoolEntity, TenantEntity, type Tier } from '#strata/control-plane';
import { OwnerConnections, TierDrivers } from '#strata/tenancy/platform';
import { HomeCopier } from '../../libs/platform/moves/home-copier';
import { createApp } from '../../apps/api/src/app.factory';
import { as, probeForeignIds, type ForeignRoute } from '../support/cross-tenant';
import { DOMAIN_FOREIGN_ROUTES } from '../support/cross-tenant-routes';
import {
  BackgroundTraffic,
  callApi,
  checkMismatches,
  compareTargetWithLog,
  dropDatabaseOf,
  expectCleanMove,
  formatRun,
  holdWriteLocks,
  homeAt,
  moveAndWait,
  moveUnderLoad,
  openWriteUnit,
  queryHome,
  requestMove,
  rowsIn,
  tenantHeaders,
  tenantHome,
  TenantWriter,
  waitForHomeGone,
  waitForMove,
  waitForMoverBlocked,
  type ApiAnswer,
  type MoveRun,
  type PhysicalHome,
} from '../support/move-harness';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

jest.setTimeout(60_000);

/** Figures of every move under load in this file, printed once at the end. */
const figures: string[] = [];
afterAll(() => {
  if (figures.length) process.stdout.write(`\ntenant moves under load:\n${figures.map((f) => `  ${f}`).join('\n')}\n`);
});

const admin = (t: TestApp) => ({ authorization: `Bearer ${t.adminToken}` });

describe('online tenant moves (one API instance with its executor)', () => {
  let t: TestApp;
  /** Two tenants that never move, busy while others do. */
  let neighbours: OnboardedTenant[];

  beforeAll(async () => {
    t = await startTestApp();
    neighbours = [await t.onboard('nb-pool', 'pool'), await t.onboard('nb-bridge', 'bridge')];
  });
  afterAll(() => t?.close());

  describe('every direction between tiers under writes, reads and neighbours', () => {
    // Three tenants, one per starting tier, each going away and back: all six directions.
    const roundTrips: Array<[who: string, home: Tier, away: Tier]> = [
      ['a', 'pool', 'bridge'],
      ['b', 'bridge', 'silo'],
      ['c', 'silo', 'pool'],
    ];
    const directions: Array<[from: Tier, to: Tier, who: string]> = [
      ...roundTrips.map(([who, home, away]): [Tier, Tier, string] => [home, away, who]),
      ...roundTrips.map(([who, home, away]): [Tier, Tier, string] => [away, home, who]),
    ];
    const movers = new Map<string, { tenant: OnboardedTenant; writer: TenantWriter }>();

    beforeAll(async () => {
      for (const [who, home] of roundTrips) {
        const tenant = await t.onboard(`mv-${who}`, home);
        movers.set(who, { tenant, writer: new TenantWriter(t, tenant) });
      }
    });

    it.each(directions)(
      'moves a tenant from %s to %s while it writes and reads: the new home equals every acknowledged write, nothing failed, the old home is dropped',
      async (from, to, who) => {
        const { tenant, writer } = movers.get(who)!;
        const before = await callApi(t, 'GET', `/admin/tenants/${tenant.id}`, { headers: admin(t) });
        expect(before.body.tier).toBe(from);
        const oldHome = await homeAt(t, from, before.body.poolId, tenant.slug);

        const run = await moveUnderLoad(t, writer, { toTier: to }, { traffic: new BackgroundTraffic(t, neighbours) });
        figures.push(formatRun(run));
        expect(run.view).toMatchObject({ tenantId: tenant.id, fromTier: from, fromPoolId: before.body.poolId, toTier: to });
        await expectCleanMove(t, run, writer, tenant, { toTier: to });
        expect({ oldHome, gone: await waitForHomeGone(t, oldHome, tenant.id) }).toEqual({ oldHome, gone: true });
      },
    );
  });

  describe('cross-tenant isolation after a move', () => {
    interface Owned {
      tenant: OnboardedTenant;
      projectId: string;
      taskId: string;
      invoiceId: string;
    }
    const owned: Owned[] = [];
    let moved: Owned;

    async function own(tenant: OnboardedTenant): Promise<Owned> {
      const project = await t.http().post('/projects').set(as(tenant)).send({ name: `${tenant.slug} own project` }).expect(201);
      const task = await t.http().post(`/projects/${project.body.id}/tasks`).set(as(tenant)).send({ title: `${tenant.slug} own task` }).expect(201);
      const invoice = await t.http().post('/invoices').set(as(tenant)).send({ number: `${tenant.slug}-own`, amount: 100, currency: 'EUR' }).expect(201);
      return { tenant, projectId: project.body.id, taskId: task.body.id, invoiceId: invoice.body.id };
    }

    beforeAll(async () => {
      moved = await own(await t.onboard('xt-moved', 'pool'));
      owned.push(moved, await own(await t.onboard('xt-pool', 'pool')), await own(await t.onboard('xt-silo', 'silo')));
      const view = await moveAndWait(t, moved.tenant.id, 'silo');
      expect(view.phase).toBe('done');
      moved.tenant = { ...moved.tenant, tier: 'silo' };
    });

    const routes: Array<ForeignRoute<Owned>> = DOMAIN_FOREIGN_ROUTES;

    it("answers 404 to a tenant moved from pool to silo given another tenant's ids, and to the others given its ids", async () => {
      const { pairs, checked, failures } = await probeForeignIds(t, owned, routes);
      expect([...pairs].sort()).toEqual(['pool->silo', 'silo->pool', 'silo->silo']);
      expect(checked).toBe(owned.length * (owned.length - 1) * routes.length);
      expect(failures).toEqual([]);
    });

    it('left every resource as its owner made it, the moved tenant seeing exactly its own rows', async () => {
      for (const o of owned) {
        expect((await t.http().get(`/projects/${o.projectId}`).set(as(o.tenant)).expect(200)).body.name).toBe(`${o.tenant.slug} own project`);
        expect((await t.http().get(`/tasks/${o.taskId}`).set(as(o.tenant)).expect(200)).body.title).toBe(`${o.tenant.slug} own task`);
        expect((await t.http().get('/projects').set(as(o.tenant)).expect(200)).body.items.map((p: { id: string }) => p.id)).toEqual([o.projectId]);
        expect((await t.http().get('/invoices').set(as(o.tenant)).expect(200)).body.items.map((i: { id: string }) => i.id)).toEqual([o.invoiceId]);
      }
      // Physically: the moved tenant's rows are in its silo database, and no other tenant's are.
      const home = await homeAt(t, 'silo', 'main-silo', moved.tenant.slug);
      const rows = await rowsIn(t, home, moved.tenant.id);
      expect(rows.projects.map((p) => p.id)).toEqual([moved.projectId]);
      // As the owner without a tenant filter (superuser or not, its own database holds one tenant).
      const tenantsThere = await queryHome<{ tenant_id: string }>(
        t,
        home,
        moved.tenant.id,
        `SELECT DISTINCT tenant_id::text FROM (SELECT tenant_id FROM projects UNION ALL SELECT tenant_id FROM tasks UNION ALL SELECT tenant_id FROM invoices) x`,
      );
      expect(tenantsThere).toEqual([{ tenant_id: moved.tenant.id }]);
    });

    /** Every constraint and index of a home's tenant tables, as the catalog defines them. */
    const CATALOG = `SELECT c.relname AS "table", 'constraint ' || k.conname || ': ' || pg_get_constraintdef(k.oid) AS object
                       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
                     UNION ALL
                     SELECT c.relname, 'index ' || pg_get_indexdef(i.indexrelid)
                       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
                     ORDER BY 1, 2`;

    it('made the foreign keys and indexes of the new silo home again exactly as a freshly made silo home has them', async () => {
      const movedHome = await homeAt(t, 'silo', 'main-silo', moved.tenant.slug);
      const fresh = owned.find((o) => o.tenant.tier === 'silo' && o !== moved)!;
      const freshHome = await homeAt(t, 'silo', 'main-silo', fresh.tenant.slug);
      const [got, want] = await Promise.all([
        queryHome<{ table: string; object: string }>(t, movedHome, moved.tenant.id, CATALOG, [movedHome.schema]),
        queryHome<{ table: string; object: string }>(t, freshHome, fresh.tenant.id, CATALOG, [freshHome.schema]),
      ]);
      expect(got.filter((r) => r.object.includes('FOREIGN KEY')).length).toBeGreaterThan(0);
      expect(got).toEqual(want);
    });

    it('leaves an exclusive target as it was, every foreign key and index in place, when a copy fails half-way through a table', async () => {
      const source = owned.find((o) => o.tenant.slug.startsWith('xt-pool'))!;
      const target = owned.find((o) => o.tenant.tier === 'silo' && o !== moved)!;
      const control = t.app.get<DataSource>(CONTROL_DATA_SOURCE, { strict: false });
      const homeOfTenant = async (id: string) => {
        const tenant = await control.getRepository(TenantEntity).findOneByOrFail({ id });
        const pool = await control.getRepository(PoolEntity).findOneByOrFail({ id: tenant.poolId });
        return t.app.get(TierDrivers, { strict: false }).of(tenant.tier).homeOf(tenant, pool);
      };
      const targetHome = await homeAt(t, 'silo', 'main-silo', target.tenant.slug);
      const before = await queryHome(t, targetHome, target.tenant.id, CATALOG, [targetHome.schema]);
      // The guard runs before the table's DDL, before each batch and before the table is finished: the third call fails it.
      let calls = 0;
      const guard = async () => {
        if (++calls === 3) throw new Error('lease lost half-way');
      };
      const copier = new HomeCopier(t.app.get(OwnerConnections, { strict: false }), await homeOfTenant(source.tenant.id), await homeOfTenant(target.tenant.id), source.tenant.id, randomUUID(), guard);
      try {
        await expect(copier.copySnapshot(async () => undefined)).rejects.toThrow('lease lost half-way');
      } finally {
        await copier.close();
      }
      expect(calls).toBe(3);
      expect(await queryHome(t, targetHome, target.tenant.id, CATALOG, [targetHome.schema])).toEqual(before);
      const copied = await queryHome<{ n: string }>(t, targetHome, source.tenant.id, `SELECT count(*)::text AS n FROM projects WHERE tenant_id = $1`, [source.tenant.id]);
      expect(copied).toEqual([{ n: '0' }]);
    });

    it("analyzed the new home's tables before serving from it, so its reads are planned from real row counts", async () => {
      const home = await homeAt(t, 'silo', 'main-silo', moved.tenant.slug);
      const analyzed = await queryHome<{ relname: string }>(
        t,
        home,
        moved.tenant.id,
        `SELECT relname FROM pg_stat_user_tables WHERE schemaname = $1 AND last_analyze IS NOT NULL ORDER BY relname`,
        [home.schema],
      );
      expect(analyzed.map((r) => r.relname)).toEqual(expect.arrayContaining(['invoices', 'projects', 'tasks']));
    });
  });

  describe('the move API refuses what it cannot do', () => {
    const post = (tenantId: string, body: object, token = t.adminToken) =>
      callApi(t, 'POST', `/admin/tenants/${tenantId}/moves`, { headers: { authorization: `Bearer ${token}` }, body });
    const errorOf = (a: ApiAnswer) => ({ status: a.status, error: a.status >= 400 ? a.body?.error : undefined });

    it('answers 404 tenant_not_found for an unknown tenant, on requesting and on listing its moves', async () => {
      const unknown = randomUUID();
      expect(errorOf(await post(unknown, { toTier: 'silo' }))).toEqual({ status: 404, error: 'tenant_not_found' });
      expect(errorOf(await callApi(t, 'GET', `/admin/tenants/${unknown}/moves`, { headers: admin(t) }))).toEqual({ status: 404, error: 'tenant_not_found' });
    });

    it('answers 400 validation_failed for an unknown tier or a malformed pool id, and records no move', async () => {
      const tenant = await t.onboard('val-tier', 'pool');
      expect(errorOf(await post(tenant.id, { toTier: 'gold' }))).toEqual({ status: 400, error: 'validation_failed' });
      expect(errorOf(await post(tenant.id, {}))).toEqual({ status: 400, error: 'validation_failed' });
      expect(errorOf(await post(tenant.id, { toTier: 'bridge', toPoolId: 'Not A Pool' }))).toEqual({ status: 400, error: 'validation_failed' });
      expect((await callApi(t, 'GET', `/admin/tenants/${tenant.id}/moves`, { headers: admin(t) })).body).toEqual({ items: [] });
    });

    it('answers 400 move_noop for a move to where the tenant already lives', async () => {
      const tenant = await t.onboard('val-noop', 'bridge');
      expect(errorOf(await post(tenant.id, { toTier: 'bridge' }))).toEqual({ status: 400, error: 'move_noop' });
      expect(errorOf(await post(tenant.id, { toTier: 'bridge', toPoolId: 'main-bridge' }))).toEqual({ status: 400, error: 'move_noop' });
    });

    it('answers 409 pool_kind_mismatch for a pool of another kind, and 404 pool_not_found for an unregistered one', async () => {
      const tenant = await t.onboard('val-kind', 'pool');
      expect(errorOf(await post(tenant.id, { toTier: 'bridge', toPoolId: 'main-silo' }))).toEqual({ status: 409, error: 'pool_kind_mismatch' });
      expect(errorOf(await post(tenant.id, { toTier: 'silo', toPoolId: 'nowhere-pool' }))).toEqual({ status: 404, error: 'pool_not_found' });
    });

    it('answers 409 move_in_progress to a second move while the first is still open, and lists both newest first only once the first ends', async () => {
      const tenant = await t.onboard('val-busy', 'pool');
      const [first, second] = await Promise.all([post(tenant.id, { toTier: 'bridge' }), post(tenant.id, { toTier: 'silo' })]);
      const answers = [first, second].map(errorOf).sort((x, y) => x.status - y.status);
      expect(answers).toEqual([
        { status: 202, error: undefined },
        { status: 409, error: 'move_in_progress' },
      ]);
      const accepted = first.status === 202 ? first.body : second.body;
      // And once more, sequentially, while the accepted one is still open (or just ended: then it is accepted).
      const third = await post(tenant.id, { toTier: 'silo' });
      const ended = await waitForMove(t, accepted.id);
      if (third.status === 202) {
        expect(['done', 'failed', 'cancelled']).toContain(ended.phase);
        await waitForMove(t, third.body.id);
      } else {
        expect(errorOf(third)).toEqual({ status: 409, error: 'move_in_progress' });
      }
      expect(ended.phase).toBe('done');
      const list = await callApi(t, 'GET', `/admin/tenants/${tenant.id}/moves`, { headers: admin(t) });
      expect(list.body.items[list.body.items.length - 1].id).toBe(accepted.id);
      const created = list.body.items.map((m: { createdAt: string }) => Date.parse(m.createdAt));
      expect(created).toEqual([...created].sort((x, y) => y - x));
    });

    it('answers 409 tenant_not_active for a suspended tenant', async () => {
      const tenant = await t.onboard('val-susp', 'pool');
      await t.http().post(`/admin/tenants/${tenant.id}/suspend`).set(admin(t)).expect(200);
      expect(errorOf(await post(tenant.id, { toTier: 'silo' }))).toEqual({ status: 409, error: 'tenant_not_active' });
    });

    it("answers 403 to a tenant user's token on every move route, 401 without a token", async () => {
      const tenant = await t.onboard('val-auth', 'pool');
      const someMove = randomUUID();
      const routes: Array<[method: 'GET' | 'POST', path: string, body?: object]> = [
        ['POST', `/admin/tenants/${tenant.id}/moves`, { toTier: 'silo' }],
        ['GET', `/admin/tenants/${tenant.id}/moves`],
        ['GET', `/admin/moves/${someMove}`],
        ['POST', `/admin/moves/${someMove}/cancel`],
      ];
      for (const [method, path, body] of routes) {
        expect(errorOf(await callApi(t, method, path, { headers: { authorization: `Bearer ${tenant.token}` }, body }))).toEqual({
          status: 403,
          error: 'platform_admin_required',
        });
        expect((await callApi(t, method, path, { body })).status).toBe(401);
      }
      expect((await callApi(t, 'GET', `/admin/tenants/${tenant.id}/moves`, { headers: admin(t) })).body).toEqual({ items: [] });
    });

    it('answers 409 move_not_cancellable to cancelling a move that is done, and 404 move_not_found for an unknown move', async () => {
      const tenant = await t.onboard('val-cancel', 'pool');
      const done = await moveAndWait(t, tenant.id, 'bridge');
      expect(done.phase).toBe('done');
      expect(checkMismatches(done)).toEqual([]);
      expect(errorOf(await callApi(t, 'POST', `/admin/moves/${done.id}/cancel`, { headers: admin(t) }))).toEqual({ status: 409, error: 'move_not_cancellable' });
      const unknown = randomUUID();
      expect(errorOf(await callApi(t, 'GET', `/admin/moves/${unknown}`, { headers: admin(t) }))).toEqual({ status: 404, error: 'move_not_found' });
      expect(errorOf(await callApi(t, 'POST', `/admin/moves/${unknown}/cancel`, { headers: admin(t) }))).toEqual({ status: 404, error: 'move_not_found' });
    });
  });
});

describe('a second API instance whose registry never hears of the move', () => {
  let t: TestApp;
  let stale: NestExpressApplication;

  beforeAll(async () => {
    // The old home is kept (retired, fenced) for a minute instead of dropped: the stale instance
    // still finds it, and must be turned away from it.
    t = await startTestApp({ moveSourceRetentionMs: 60_000 });
    // Same database; no Redis (no invalidation reaches it), a registry cache of a minute, no executor of its own.
    stale = await createApp({ ...t.config, registryCacheTtlMs: 60_000, redisUrl: undefined, movesExecutor: false }, { logger: ['error', 'fatal'] });
    await stale.init();
  });
  afterAll(async () => {
    await stale?.close();
    // Old silo homes are retained for a minute: dropped here rather than left to the run's teardown.
    for (const tenant of onboarded) await dropDatabaseOf(t, await homeAt(t, 'silo', 'main-silo', tenant.slug)).catch(() => undefined);
    await t?.close();
  });
  const onboarded: OnboardedTenant[] = [];
  const onboard = async (base: string, tier: Tier) => {
    const tenant = await t.onboard(base, tier);
    onboarded.push(tenant);
    return tenant;
  };

  const pairs: Array<[from: Tier, to: Tier]> = [
    ['pool', 'bridge'],
    ['bridge', 'silo'],
    ['silo', 'pool'],
  ];

  it.each(pairs)(
    'serves a tenant moved from %s to %s from its new home only, through an instance that still caches the old placement',
    async (from, to) => {
      const tenant = await onboard(`stale-${from}`, from);
      const headers = tenantHeaders(tenant);
      const seeded = await callApi(t, 'POST', '/projects', { headers, body: { name: `${tenant.slug} before the move` } });
      expect(seeded.status).toBe(201);
      // Warm the stale instance: it now holds the tenant's placement (and its pool) for a minute.
      const warm = await callApi(stale, 'GET', `/projects/${seeded.body.id}`, { headers });
      expect({ status: warm.status, name: warm.body?.name }).toEqual({ status: 200, name: `${tenant.slug} before the move` });
      expect((await callApi(stale, 'GET', '/projects', { headers })).status).toBe(200);

      const oldHome = await homeAt(t, from, `main-${from}`, tenant.slug);
      const view = await moveAndWait(t, tenant.id, to);
      expect({ phase: view.phase, error: view.error, checks: checkMismatches(view) }).toEqual({ phase: 'done', error: null, checks: [] });
      const newHome = await homeAt(t, to, view.toPoolId, tenant.slug);
      // The old home is still there (retention), and frozen from here on.
      const frozen = await rowsIn(t, oldHome, tenant.id);
      expect(frozen.projects.map((p) => p.name)).toEqual([`${tenant.slug} before the move`]);

      // Written through the first instance after the cutover: only the new home has it.
      const after = await callApi(t, 'POST', '/projects', { headers, body: { name: `${tenant.slug} after the move` } });
      expect(after.status).toBe(201);

      // Through the stale instance: reads see it, so they are served by the new home.
      const read = await callApi(stale, 'GET', `/projects/${after.body.id}`, { headers });
      expect({ status: read.status, name: read.body?.name }).toEqual({ status: 200, name: `${tenant.slug} after the move` });
      const list = await callApi(stale, 'GET', '/projects', { headers });
      expect({ status: list.status, names: list.body?.items?.map((p: { name: string }) => p.name).sort() }).toEqual({
        status: 200,
        names: [`${tenant.slug} after the move`, `${tenant.slug} before the move`].sort(),
      });
      // Writes through it land in the new home, never the old one.
      const created = await callApi(stale, 'POST', '/projects', { headers, body: { name: `${tenant.slug} via the stale instance` } });
      expect(created.status).toBe(201);
      const renamed = await callApi(stale, 'PATCH', `/projects/${seeded.body.id}`, { headers, body: { name: `${tenant.slug} renamed via the stale instance` } });
      expect({ status: renamed.status, name: renamed.body?.name }).toEqual({ status: 200, name: `${tenant.slug} renamed via the stale instance` });
      const invoice = await callApi(stale, 'POST', '/invoices', { headers, body: { number: `${tenant.slug}-stale`, amount: 1, currency: 'EUR' } });
      expect(invoice.status).toBe(201);
      // A fresh stale instance request after that still answers from the new home.
      const again = await callApi(stale, 'GET', `/projects/${seeded.body.id}`, { headers });
      expect({ status: again.status, name: again.body?.name }).toEqual({ status: 200, name: `${tenant.slug} renamed via the stale instance` });

      const target = await rowsIn(t, newHome, tenant.id);
      expect(target.projects.map((p) => [p.id, p.name]).sort()).toEqual(
        [
          [seeded.body.id, `${tenant.slug} renamed via the stale instance`],
          [after.body.id, `${tenant.slug} after the move`],
          [created.body.id, `${tenant.slug} via the stale instance`],
        ].sort(),
      );
      expect(target.invoices).toEqual([{ id: invoice.body.id, number: `${tenant.slug}-stale` }]);
      expect(await rowsIn(t, oldHome, tenant.id)).toEqual(frozen);
    },
  );

  it('never serves a stale instance from the half-made target when the tenant moves back into a silo home that instance still remembers', async () => {
    const tenant = await onboard('stale-back', 'silo');
    const headers = tenantHeaders(tenant);
    const kept = await callApi(t, 'POST', '/projects', { headers, body: { name: `${tenant.slug} kept` } });
    expect(kept.status).toBe(201);
    // The stale instance learns the first placement (silo) and keeps it for a minute.
    expect((await callApi(stale, 'GET', `/projects/${kept.body.id}`, { headers })).status).toBe(200);

    const away = await moveAndWait(t, tenant.id, 'pool');
    expect(away.phase).toBe('done');
    // Back into the same silo home. A transaction holding the source tables (as an in-flight write
    // does) keeps the mover installing its capture for a moment, its target already provisioned.
    const source = await homeAt(t, 'pool', away.toPoolId, tenant.slug);
    const writeLocks = await holdWriteLocks(t, source);
    let back: { id: string };
    const answers: Record<string, { status: number; name?: string }> = {};
    try {
      back = await requestMove(t, tenant.id, 'silo');
      expect(await waitForMoverBlocked(t, source)).toBe(true);
      // The stale instance still points at the silo home: it must be turned away from it (and follow
      // the tenant to the pool) or answer a retryable 503, never serve what is there now.
      const read = await callApi(stale, 'GET', `/projects/${kept.body.id}`, { headers });
      answers.read = { status: read.status, name: read.body?.name };
      const write = await callApi(stale, 'POST', '/projects', { headers, body: { name: `${tenant.slug} written during the move` } });
      answers.write = { status: write.status, name: write.body?.name };
    } finally {
      await writeLocks.release();
    }
    const ended = await waitForMove(t, back!.id);
    // Wherever the tenant lives now, an acknowledged write is there.
    const now = await rowsIn(t, await tenantHome(t, tenant.id), tenant.id);
    const names = now.projects.map((p) => p.name).sort();
    const expected = [`${tenant.slug} kept`, ...(answers.write.status === 201 ? [`${tenant.slug} written during the move`] : [])].sort();
    // One picture of everything that went wrong, if anything did.
    expect({
      read: answers.read,
      write: [201, 503].includes(answers.write.status) ? 'answered 201 or a retryable 503' : answers.write,
      move: { phase: ended.phase, error: ended.error },
      projectsNow: names,
    }).toEqual({
      read: { status: 200, name: `${tenant.slug} kept` },
      write: 'answered 201 or a retryable 503',
      move: { phase: 'done', error: null },
      projectsNow: expected,
    });
    expect(await tenantHome(t, tenant.id)).toMatchObject({ tier: 'silo' });
  });

  it('never lets a stale instance write to the home the tenant is moving back into while the move still waits to fence the current one', async () => {
    const tenant = await onboard('stale-fence', 'pool');
    const headers = tenantHeaders(tenant);
    const project = await callApi(t, 'POST', '/projects', { headers, body: { name: `${tenant.slug} v0` } });
    expect(project.status).toBe(201);
    // The stale instance learns the first placement (the pool) and keeps it for a minute.
    expect((await callApi(stale, 'GET', `/projects/${project.body.id}`, { headers })).status).toBe(200);

    const away = await moveAndWait(t, tenant.id, 'silo');
    expect(away.phase).toBe('done');
    const current = await homeAt(t, 'silo', away.toPoolId, tenant.slug);
    // Two write units in flight on the current (silo) home: the move back to the pool must wait for
    // both at its fence. One commits a rename while the mover waits; the other keeps it waiting.
    const slow = await openWriteUnit(t, current, tenant.id);
    const renaming = await openWriteUnit(t, current, tenant.id);
    const answers: Record<string, { status: number; name?: string }> = {};
    let back: { id: string };
    try {
      back = await requestMove(t, tenant.id, 'pool');
      await waitForMove(t, back.id, { until: ['copying', 'catching_up', 'verifying', 'cutover'], everyMs: 5 });
      await renaming.query(`UPDATE projects SET name = $2, updated_at = now() WHERE id = $1`, [project.body.id, `${tenant.slug} v1 (committed on the current home)`]);
      expect(await waitForMoverBlocked(t, current, { fence: true })).toBe(true);
      await renaming.commit();
      // Through the stale instance, which still routes the tenant to the pool home: v1 is committed
      // and the tenant has not left the silo yet, so it must read v1 (or be told to retry) …
      const read = await callApi(stale, 'GET', `/projects/${project.body.id}`, { headers });
      answers.read = { status: read.status, name: read.body?.name };
      // … and a write it acknowledges must outlive the move.
      const write = await callApi(stale, 'PATCH', `/projects/${project.body.id}`, { headers, body: { name: `${tenant.slug} v2 (via the stale instance)` } });
      answers.write = { status: write.status, name: write.body?.name };
    } finally {
      await renaming.commit();
      await slow.commit();
    }
    const ended = await waitForMove(t, back!.id);
    const now = await rowsIn(t, await tenantHome(t, tenant.id), tenant.id);
    const acknowledged = answers.write.status === 200 ? `${tenant.slug} v2 (via the stale instance)` : `${tenant.slug} v1 (committed on the current home)`;
    expect({
      read: answers.read.status === 503 ? 'a retryable 503' : answers.read,
      write: [200, 503].includes(answers.write.status) ? 'answered 200 or a retryable 503' : answers.write,
      move: { phase: ended.phase, error: ended.error },
      nameNow: now.projects.map((p) => p.name),
    }).toEqual({
      read: answers.read.status === 503 ? 'a retryable 503' : { status: 200, name: `${tenant.slug} v1 (committed on the current home)` },
      write: 'answered 200 or a retryable 503',
      move: { phase: 'done', error: null },
      nameNow: [acknowledged],
    });
  });

  it('keeps the tenant writable through the stale instance while it moves, every acknowledged write landing in the new home', async () => {
    const tenant = await onboard('stale-load', 'bridge');
    const writer = new TenantWriter(stale, tenant);
    const run: MoveRun = await moveUnderLoad(t, writer, { toTier: 'pool' });
    figures.push(`${formatRun(run)} [writes via a stale instance]`);
    expect({ phase: run.view.phase, checks: checkMismatches(run.view) }).toEqual({ phase: 'done', checks: [] });
    expect(run.writes.errors).toEqual([]);
    expect(run.writes.readFailures).toEqual([]);
    expect(run.writes.staleReads).toEqual([]);
    const comparison = await compareTargetWithLog(t, writer);
    expect(comparison.home.tier).toBe('pool');
    expect(comparison.mismatches).toEqual([]);
  });
});
