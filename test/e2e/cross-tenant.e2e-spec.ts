import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { as, probeForeignIds, type ForeignRoute } from '../support/cross-tenant';
import { DOMAIN_FOREIGN_ROUTES } from '../support/cross-tenant-routes';

interface Owned {
  tenant: OnboardedTenant;
  projectId: string;
  taskId: string;
  invoiceId: string;
}

describe('cross-tenant isolation over HTTP on every tier pair', () => {
  let t: TestApp;
  const owned: Owned[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    // Two tenants per tier, so same-tier pairs are covered as well as cross-tier ones.
    for (const tier of ['pool', 'bridge', 'silo'] as const) {
      for (const n of [1, 2]) {
        const tenant = await t.onboard(`${tier}${n}`, tier);
        const project = await t.http().post('/projects').set(as(tenant)).send({ name: `${tenant.slug} project` }).expect(201);
        const task = await t.http().post(`/projects/${project.body.id}/tasks`).set(as(tenant)).send({ title: 'secret task' }).expect(201);
        const invoice = await t
          .http()
          .post('/invoices')
          .set(as(tenant))
          .send({ number: `INV-${tier}-${n}`, amount: 1000 * n, currency: 'EUR' })
          .expect(201);
        owned.push({ tenant, projectId: project.body.id, taskId: task.body.id, invoiceId: invoice.body.id });
      }
    }
  }, 60_000);
  afterAll(() => t.close());

  const routes: Array<ForeignRoute<Owned>> = DOMAIN_FOREIGN_ROUTES;

  it("answers 404 to every route given another tenant's ids, on all 9 tier pairs", async () => {
    const { pairs, checked, failures } = await probeForeignIds(t, owned, routes);
    expect(pairs.size).toBe(9);
    expect(checked).toBe(30 * routes.length);
    expect(failures).toEqual([]);
  }, 120_000);

  it('left every victim resource untouched by the foreign writes', async () => {
    for (const o of owned) {
      const project = await t.http().get(`/projects/${o.projectId}`).set(as(o.tenant)).expect(200);
      expect(project.body.name).toBe(`${o.tenant.slug} project`);
      const task = await t.http().get(`/tasks/${o.taskId}`).set(as(o.tenant)).expect(200);
      expect(task.body.title).toBe('secret task');
      const tasks = await t.http().get(`/projects/${o.projectId}/tasks`).set(as(o.tenant)).expect(200);
      expect(tasks.body.items.map((x: { title: string }) => x.title)).toEqual(['secret task']);
      await t.http().get(`/invoices/${o.invoiceId}`).set(as(o.tenant)).expect(200);
    }
  });

  it('lists only the caller tenant rows', async () => {
    for (const o of owned) {
      const projects = await t.http().get('/projects').set(as(o.tenant)).expect(200);
      expect(projects.body.items.map((p: { id: string }) => p.id)).toEqual([o.projectId]);
      const invoices = await t.http().get('/invoices').set(as(o.tenant)).expect(200);
      expect(invoices.body.items.map((i: { id: string }) => i.id)).toEqual([o.invoiceId]);
    }
  });

  it('serves 200 interleaved concurrent requests from six tenants on all tiers, each seeing only its own rows', async () => {
    const requests = Array.from({ length: 200 }, (_, i) => {
      const o = owned[i % owned.length];
      if (i % 4 === 0) {
        return t
          .http()
          .post('/projects')
          .set(as(o.tenant))
          .send({ name: `burst ${o.tenant.slug} ${i}` })
          .then((res) => ({ o, res, kind: 'create' as const }));
      }
      const path = i % 4 === 1 ? '/projects?limit=100' : i % 4 === 2 ? `/projects/${o.projectId}` : '/invoices';
      return t
        .http()
        .get(path)
        .set(as(o.tenant))
        .then((res) => ({ o, res, kind: path }));
    });
    const results = await Promise.all(requests);
    for (const { o, res, kind } of results) {
      expect([200, 201]).toContain(res.status);
      if (kind === 'create') expect(res.body.name).toContain(o.tenant.slug);
      if (kind === '/projects?limit=100') {
        for (const p of res.body.items) expect(p.id === o.projectId || p.name.includes(o.tenant.slug)).toBe(true);
      }
      if (kind === '/invoices') expect(res.body.items.map((i: { id: string }) => i.id)).toEqual([o.invoiceId]);
      if (kind.startsWith('/projects/')) expect(res.body.id).toBe(o.projectId);
    }
    for (const o of owned) {
      const list = await t.http().get('/projects?limit=100').set(as(o.tenant)).expect(200);
      const mine = results.filter((r) => r.kind === 'create' && r.o === o).length;
      expect(list.body.items).toHaveLength(mine + 1);
      for (const p of list.body.items) expect(p.id === o.projectId || p.name.startsWith(`burst ${o.tenant.slug} `)).toBe(true);
    }
  }, 60_000);
});
