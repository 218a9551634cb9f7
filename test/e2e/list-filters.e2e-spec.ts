import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

const as = (who: OnboardedTenant) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });

/** Every item of a list, page by page with `limit`, passing `query` again with each cursor. */
async function everyPage(t: TestApp, who: OnboardedTenant, path: string, query: Record<string, string | number>): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const res = await t.http().get(path).set(as(who)).query({ ...query, ...(cursor ? { cursor } : {}) }).expect(200);
    seen.push(...res.body.items.map((i: { id: string }) => i.id));
    cursor = res.body.nextCursor ?? undefined;
  } while (cursor);
  return seen;
}

describe('list filters', () => {
  let t: TestApp;
  let me: OnboardedTenant;

  beforeAll(async () => {
    t = await startTestApp();
    me = await t.onboard('list-filters', 'pool');
  }, 30_000);
  afterAll(() => t.close());

  it('lists only the tasks of one status, page by page, and refuses a cursor of another status with invalid_cursor', async () => {
    const { body: project } = await t.http().post('/projects').set(as(me)).send({ name: 'filtered tasks' }).expect(201);
    const done: string[] = [];
    for (let i = 0; i < 7; i++) {
      const status = i % 2 ? 'done' : 'todo';
      const { body } = await t.http().post(`/projects/${project.id}/tasks`).set(as(me)).send({ title: `t${i}`, status }).expect(201);
      if (status === 'done') done.unshift(body.id);
    }
    expect(await everyPage(t, me, `/projects/${project.id}/tasks`, { status: 'done', limit: 1 })).toEqual(done);
    const first = await t.http().get(`/projects/${project.id}/tasks`).set(as(me)).query({ status: 'done', limit: 1 }).expect(200);
    const other = await t.http().get(`/projects/${project.id}/tasks`).set(as(me)).query({ status: 'todo', cursor: first.body.nextCursor }).expect(400);
    expect(other.body.error).toBe('invalid_cursor');
    await t.http().get(`/projects/${project.id}/tasks`).set(as(me)).query({ cursor: first.body.nextCursor }).expect(400);
    const bad = await t.http().get(`/projects/${project.id}/tasks`).set(as(me)).query({ status: 'archived' }).expect(400);
    expect(bad.body.details).toEqual([expect.objectContaining({ field: 'status', code: 'is_in' })]);
  });

  it('finds projects by a case-insensitive name prefix, taking % and _ literally', async () => {
    const ids: Record<string, string> = {};
    for (const name of ['Apollo', 'apogee', 'Artemis', '100%_sure', '100 percent']) {
      ids[name] = (await t.http().post('/projects').set(as(me)).send({ name }).expect(201)).body.id;
    }
    expect(await everyPage(t, me, '/projects', { q: 'APO', limit: 1 })).toEqual([ids.apogee, ids.Apollo]);
    expect(await everyPage(t, me, '/projects', { q: '100%_' })).toEqual([ids['100%_sure']]);
    expect((await t.http().get('/projects').set(as(me)).query({ q: '' }).expect(400)).body.error).toBe('validation_failed');
  });

  it('lists invoices by status and due-date window, every page, and binds the cursor to those filters', async () => {
    const make = async (n: string, status: string, dueAt?: string) =>
      (await t.http().post('/invoices').set(as(me)).send({ number: n, amount: 1, currency: 'EUR', status, ...(dueAt ? { dueAt } : {}) }).expect(201)).body.id as string;
    const a = await make('F-1', 'open', '2030-01-10T00:00:00Z');
    await make('F-2', 'draft', '2030-01-15T00:00:00Z');
    const c = await make('F-3', 'open', '2030-01-20T00:00:00Z');
    await make('F-4', 'open', '2030-02-01T00:00:00Z');
    await make('F-5', 'open');
    const window = { status: 'open', dueFrom: '2030-01-01T00:00:00Z', dueTo: '2030-02-01T00:00:00Z' };
    expect(await everyPage(t, me, '/invoices', { ...window, limit: 1 })).toEqual([c, a]);
    const first = await t.http().get('/invoices').set(as(me)).query({ ...window, limit: 1 }).expect(200);
    const moved = await t.http().get('/invoices').set(as(me)).query({ ...window, dueTo: '2030-03-01T00:00:00Z', cursor: first.body.nextCursor }).expect(400);
    expect(moved.body.error).toBe('invalid_cursor');
    const created = await t.http().get('/invoices').set(as(me)).query({ createdFrom: '2999-01-01T00:00:00Z' }).expect(200);
    expect(created.body).toEqual({ items: [], nextCursor: null });
  });

  it('pages GET /admin/tenants with limit and nextCursor, newest first, and refuses its unknown parameters', async () => {
    await t.onboard('list-filters-b', 'pool');
    await t.onboard('list-filters-c', 'pool');
    const admin = { authorization: `Bearer ${t.adminToken}` };
    const slugs: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await t.http().get('/admin/tenants').set(admin).query({ limit: 1, ...(cursor ? { cursor } : {}) }).expect(200);
      expect(res.body.items).toHaveLength(1);
      slugs.push(res.body.items[0].slug);
      cursor = res.body.nextCursor ?? undefined;
    } while (cursor);
    expect(new Set(slugs).size).toBe(slugs.length);
    expect(slugs.slice(0, 3)).toEqual([expect.stringMatching(/^list-filters-c/), expect.stringMatching(/^list-filters-b/), expect.stringMatching(/^list-filters/)]);
    const all = await t.http().get('/admin/tenants').set(admin).query({ limit: 100 }).expect(200);
    expect(all.body.items.map((x: { slug: string }) => x.slug)).toEqual(slugs);
    expect((await t.http().get('/admin/tenants').set(admin).query({ status: 'active' }).expect(400)).body.error).toBe('unknown_query_parameter');
  });
});
