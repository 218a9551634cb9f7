import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

const as = (who: OnboardedTenant) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MISSING = '00000000-0000-4000-8000-000000000000';

describe.each(['pool', 'bridge', 'silo'] as const)('domain HTTP contract on the %s tier', (tier) => {
  let t: TestApp;
  let me: OnboardedTenant;

  beforeAll(async () => {
    t = await startTestApp();
    me = await t.onboard(`contract-${tier}`, tier);
    // A fresh database, an app and a tenant: seconds alone, but CI saw it pass 30 s at load 9.
  }, 90_000);
  afterAll(() => t.close(), 60_000);

  it('creates, reads, updates and deletes a project', async () => {
    const created = await t.http().post('/projects').set(as(me)).send({ name: 'Apollo', description: 'moon' }).expect(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(UUID), name: 'Apollo', description: 'moon' });
    expect(created.body).not.toHaveProperty('tenantId');
    const id = created.body.id;
    await t.http().get(`/projects/${id}`).set(as(me)).expect(200).expect((r) => expect(r.body.name).toBe('Apollo'));
    const patched = await t.http().patch(`/projects/${id}`).set(as(me)).send({ name: 'Artemis' }).expect(200);
    expect(patched.body).toMatchObject({ id, name: 'Artemis', description: 'moon' });
    await t.http().delete(`/projects/${id}`).set(as(me)).expect(204);
    const gone = await t.http().get(`/projects/${id}`).set(as(me)).expect(404);
    expect(gone.body.error).toBe('project_not_found');
  });

  it('nests tasks under a project and deletes them with it', async () => {
    const project = await t.http().post('/projects').set(as(me)).send({ name: 'With tasks' }).expect(201);
    const task = await t.http().post(`/projects/${project.body.id}/tasks`).set(as(me)).send({ title: 'write tests' }).expect(201);
    expect(task.body).toMatchObject({ id: expect.stringMatching(UUID), projectId: project.body.id, title: 'write tests', status: 'todo' });
    const moved = await t.http().patch(`/tasks/${task.body.id}`).set(as(me)).send({ status: 'done' }).expect(200);
    expect(moved.body.status).toBe('done');
    const list = await t.http().get(`/projects/${project.body.id}/tasks`).set(as(me)).expect(200);
    expect(list.body).toEqual({ items: [expect.objectContaining({ id: task.body.id })], nextCursor: null });
    await t.http().delete(`/projects/${project.body.id}`).set(as(me)).expect(204);
    expect((await t.http().get(`/tasks/${task.body.id}`).set(as(me)).expect(404)).body.error).toBe('task_not_found');
  });

  it('deletes a task with 204', async () => {
    const project = await t.http().post('/projects').set(as(me)).send({ name: 'Short-lived task' }).expect(201);
    const task = await t.http().post(`/projects/${project.body.id}/tasks`).set(as(me)).send({ title: 'x' }).expect(201);
    await t.http().delete(`/tasks/${task.body.id}`).set(as(me)).expect(204);
    await t.http().delete(`/tasks/${task.body.id}`).set(as(me)).expect(404);
  });

  it('answers 404 project_not_found when adding a task to a missing project', async () => {
    const res = await t.http().post(`/projects/${MISSING}/tasks`).set(as(me)).send({ title: 'orphan' }).expect(404);
    expect(res.body.error).toBe('project_not_found');
  });

  it.each([
    ['get', '/projects/not-a-uuid'],
    ['patch', '/projects/123'],
    ['delete', '/projects/abc'],
    ['get', '/projects/abc/tasks'],
    ['get', '/tasks/abc'],
    ['get', '/invoices/abc'],
  ] as const)('answers %s %s with 400 invalid_id', async (method, path) => {
    const res = await t.http()[method](path).set(as(me)).send({ name: 'x' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_id');
  });

  it.each([
    ['/projects', {}],
    ['/projects', { name: '' }],
    ['/projects', { name: 42 }],
    ['/projects', { name: 'ok', tenantId: MISSING }],
    ['/invoices', { number: 'A-1', amount: 10.5, currency: 'EUR' }],
    ['/invoices', { number: 'A-1', amount: -1, currency: 'EUR' }],
    ['/invoices', { number: 'A-1', amount: 100, currency: 'XXQ' }],
    ['/invoices', { number: 'A-1', amount: 100, currency: 'eur' }],
    ['/invoices', { number: '', amount: 100, currency: 'EUR' }],
    ['/invoices', { number: 'A-1', amount: '100', currency: 'EUR' }],
    ['/invoices', { number: 'A-1', amount: Number.MAX_SAFE_INTEGER + 2, currency: 'EUR' }],
  ])('rejects POST %s %j with 400 validation_failed and writes nothing', async (path, body) => {
    const before = await t.http().get(`${path}?limit=100`).set(as(me)).expect(200);
    const res = await t.http().post(path).set(as(me)).send(body).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'validation_failed', message: expect.any(String), details: expect.arrayContaining([expect.objectContaining({ field: expect.any(String), code: expect.any(String) })]) });
    const after = await t.http().get(`${path}?limit=100`).set(as(me)).expect(200);
    expect(after.body.items).toHaveLength(before.body.items.length);
  });

  it('rejects an empty PATCH and an unknown task status with 400 validation_failed', async () => {
    const project = await t.http().post('/projects').set(as(me)).send({ name: 'Patch me' }).expect(201);
    expect((await t.http().patch(`/projects/${project.body.id}`).set(as(me)).send({}).expect(400)).body.error).toBe('validation_failed');
    const res = await t.http().post(`/projects/${project.body.id}/tasks`).set(as(me)).send({ title: 't', status: 'someday' }).expect(400);
    expect(res.body.error).toBe('validation_failed');
  });

  it('creates and fetches an invoice, refusing a duplicate number with 409 invoice_number_taken', async () => {
    const created = await t.http().post('/invoices').set(as(me)).send({ number: 'INV-9', amount: 123456, currency: 'JPY' }).expect(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(UUID), number: 'INV-9', amount: 123456, currency: 'JPY' });
    await t.http().get(`/invoices/${created.body.id}`).set(as(me)).expect(200).expect((r) => expect(r.body.amount).toBe(123456));
    const dup = await t.http().post('/invoices').set(as(me)).send({ number: 'INV-9', amount: 1, currency: 'EUR' }).expect(409);
    expect(dup.body.error).toBe('invoice_number_taken');
    expect((await t.http().get(`/invoices/${MISSING}`).set(as(me)).expect(404)).body.error).toBe('invoice_not_found');
  });

  it('pages invoices newest first with a cursor, without gaps or repeats', async () => {
    const numbers: string[] = [];
    for (let i = 0; i < 7; i++) {
      const n = `PAGE-${i}`;
      numbers.push(n);
      await t.http().post('/invoices').set(as(me)).send({ number: n, amount: i, currency: 'USD' }).expect(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `/invoices?limit=3&cursor=${encodeURIComponent(cursor)}` : '/invoices?limit=3';
      const page = await t.http().get(q).set(as(me)).expect(200);
      expect(page.body.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.items.map((i: { number: string }) => i.number));
      cursor = page.body.nextCursor;
    } while (cursor);
    const pageNumbers = seen.filter((n) => n.startsWith('PAGE-'));
    expect(pageNumbers).toEqual([...numbers].reverse());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('rejects a garbage cursor with 400 invalid_cursor and a bad limit with 400 validation_failed', async () => {
    expect((await t.http().get('/invoices?cursor=%%%garbage').set(as(me)).expect(400)).body.error).toBe('invalid_cursor');
    expect((await t.http().get('/invoices?limit=0').set(as(me)).expect(400)).body.error).toBe('validation_failed');
    expect((await t.http().get('/invoices?limit=101').set(as(me)).expect(400)).body.error).toBe('validation_failed');
  });
});
