import { EventEmitter2 } from '@nestjs/event-emitter';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

const as = (who: OnboardedTenant) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });
let serial = 0;
const invoice = (extra: Record<string, unknown> = {}) => ({ number: `INV-${++serial}`, amount: 1000, currency: 'EUR', ...extra });

describe.each(['pool', 'bridge'] as const)('invoice lifecycle on the %s tier', (tier) => {
  let t: TestApp;
  let me: OnboardedTenant;
  const updated: unknown[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    me = await t.onboard(`invoices-${tier}`, tier);
    t.app.get(EventEmitter2).on('invoice.updated', (view: unknown) => void updated.push(view));
  }, 30_000);
  afterAll(() => t.close());

  it('creates an invoice open by default, with no due date unless one is given', async () => {
    const plain = await t.http().post('/invoices').set(as(me)).send(invoice()).expect(201);
    expect(plain.body).toMatchObject({ status: 'open', dueAt: null });
    const due = await t.http().post('/invoices').set(as(me)).send(invoice({ status: 'draft', dueAt: '2030-01-31T00:00:00Z' })).expect(201);
    expect(due.body).toMatchObject({ status: 'draft', dueAt: '2030-01-31T00:00:00.000Z' });
  });

  it('refuses to create an invoice already paid or void, and a due date without an offset', async () => {
    const paid = await t.http().post('/invoices').set(as(me)).send(invoice({ status: 'paid' })).expect(400);
    expect(paid.body.details).toEqual([expect.objectContaining({ field: 'status', code: 'is_in' })]);
    const local = await t.http().post('/invoices').set(as(me)).send(invoice({ dueAt: '2030-01-31' })).expect(400);
    expect(local.body.details).toEqual([expect.objectContaining({ field: 'dueAt' })]);
  });

  it('updates amount and due date with PATCH and emits invoice.updated with the new view', async () => {
    const { body: created } = await t.http().post('/invoices').set(as(me)).send(invoice()).expect(201);
    const res = await t.http().patch(`/invoices/${created.id}`).set(as(me)).send({ amount: 2500, dueAt: '2031-06-01T12:00:00+02:00' }).expect(200);
    expect(res.body).toMatchObject({ id: created.id, amount: 2500, dueAt: '2031-06-01T10:00:00.000Z', status: 'open' });
    expect(updated.at(-1)).toMatchObject({ id: created.id, amount: 2500 });
    const cleared = await t.http().patch(`/invoices/${created.id}`).set(as(me)).send({ dueAt: null }).expect(200);
    expect(cleared.body.dueAt).toBeNull();
    expect((await t.http().get(`/invoices/${created.id}`).set(as(me)).expect(200)).body).toEqual(cleared.body);
  });

  it('moves draft → open → paid and then refuses void with 409 invalid_invoice_transition', async () => {
    const { body: created } = await t.http().post('/invoices').set(as(me)).send(invoice({ status: 'draft' })).expect(201);
    await t.http().patch(`/invoices/${created.id}`).set(as(me)).send({ status: 'open' }).expect(200);
    await t.http().patch(`/invoices/${created.id}`).set(as(me)).send({ status: 'paid' }).expect(200);
    const refused = await t.http().post(`/invoices/${created.id}/void`).set(as(me)).expect(409);
    expect(refused.body).toEqual({ statusCode: 409, error: 'invalid_invoice_transition', message: expect.stringContaining('paid') });
    expect((await t.http().patch(`/invoices/${created.id}`).set(as(me)).send({ amount: 1 }).expect(409)).body.error).toBe('invalid_invoice_transition');
  });

  it('refuses to pay a draft, and voids an open invoice with POST /invoices/:id/void', async () => {
    const { body: draft } = await t.http().post('/invoices').set(as(me)).send(invoice({ status: 'draft' })).expect(201);
    expect((await t.http().patch(`/invoices/${draft.id}`).set(as(me)).send({ status: 'paid' }).expect(409)).body.error).toBe('invalid_invoice_transition');
    const { body: open } = await t.http().post('/invoices').set(as(me)).send(invoice()).expect(201);
    const voided = await t.http().post(`/invoices/${open.id}/void`).set(as(me)).expect(200);
    expect(voided.body.status).toBe('void');
    expect(updated.at(-1)).toMatchObject({ id: open.id, status: 'void' });
    expect((await t.http().patch(`/invoices/${open.id}`).set(as(me)).send({ status: 'open' }).expect(409)).body.error).toBe('invalid_invoice_transition');
  });

  it('lets exactly one of a concurrent pay and void win', async () => {
    const { body: created } = await t.http().post('/invoices').set(as(me)).send(invoice()).expect(201);
    const [pay, voiding] = await Promise.all([
      t.http().patch(`/invoices/${created.id}`).set(as(me)).send({ status: 'paid' }),
      t.http().post(`/invoices/${created.id}/void`).set(as(me)),
    ]);
    expect([pay.status, voiding.status].sort()).toEqual([200, 409]);
  });

  it('answers 404 invoice_not_found for PATCH and void of an invoice the tenant does not have', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    expect((await t.http().patch(`/invoices/${missing}`).set(as(me)).send({ amount: 1 }).expect(404)).body.error).toBe('invoice_not_found');
    expect((await t.http().post(`/invoices/${missing}/void`).set(as(me)).expect(404)).body.error).toBe('invoice_not_found');
  });
});
