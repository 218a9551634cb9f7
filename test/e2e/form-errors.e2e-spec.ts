import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

const as = (who: OnboardedTenant) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });

describe('errors a form can use', () => {
  let t: TestApp;
  let me: OnboardedTenant;

  beforeAll(async () => {
    t = await startTestApp();
    me = await t.onboard('form-errors', 'pool');
  }, 30_000);
  afterAll(() => t.close());

  it('answers a failed body with one detail per field, naming the first rule each broke in snake_case', async () => {
    const res = await t.http().post('/invoices').set(as(me)).send({ number: '', amount: 1.5, currency: 'eur', extra: 1 }).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'validation_failed', message: expect.any(String), details: expect.any(Array) });
    const byField = Object.fromEntries((res.body.details as Array<{ field: string; code: string; message: string }>).map((d) => [d.field, d]));
    expect(Object.keys(byField).sort()).toEqual(['amount', 'currency', 'extra', 'number']);
    expect(byField.amount).toEqual({ field: 'amount', code: 'is_int', message: expect.stringContaining('amount') });
    expect(byField.currency.code).toBe('is_iso_currency');
    expect(byField.extra.code).toBe('unknown_field');
    expect(byField.number.code).toBe('is_length');
    expect(res.body.message).toContain(byField.amount.message);
  });

  it('names a missing required field when no body is sent at all', async () => {
    const res = await t.http().post('/projects').set(as(me)).expect(400);
    expect(res.body.details).toEqual([{ field: 'name', code: expect.any(String), message: expect.any(String) }]);
  });

  it('answers 415 unsupported_media_type, saying what to send, for a body that is not sent as JSON', async () => {
    const res = await t.http().post('/projects').set(as(me)).set('content-type', 'text/plain').send('{"name":"x"}').expect(415);
    expect(res.body).toEqual({ statusCode: 415, error: 'unsupported_media_type', message: expect.stringContaining('application/json') });
    const form = await t.http().post('/projects').set(as(me)).type('form').send({ name: 'x' }).expect(415);
    expect(form.body.error).toBe('unsupported_media_type');
  });

  it('still accepts a JSON body with a charset parameter', async () => {
    await t.http().post('/projects').set(as(me)).set('content-type', 'application/json; charset=utf-8').send('{"name":"charset"}').expect(201);
  });

  it('keeps multipart uploads on POST /files', async () => {
    const res = await t.http().post('/files').set(as(me)).attach('file', Buffer.from('hello'), { filename: 'a.txt', contentType: 'text/plain' });
    expect(res.status).toBe(201);
  });

  it.each([
    ['an array', '[{"name":"x"}]', 'an array'],
    ['a string', '"x"', 'must be a JSON object'],
    ['a number', '42', 'must be a JSON object'],
    ['null', 'null', 'must be a JSON object'],
  ])('answers 400 body_not_object for a JSON body that is %s', async (_what, raw, says) => {
    const res = await t.http().post('/projects').set(as(me)).set('content-type', 'application/json').send(raw).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'body_not_object', message: expect.stringContaining(says) });
  });

  it('still answers 400 invalid_json for a body that is not JSON at all', async () => {
    const res = await t.http().post('/projects').set(as(me)).set('content-type', 'application/json').send('{"name":').expect(400);
    expect(res.body.error).toBe('invalid_json');
  });

  it('answers 400 unknown_query_parameter naming a parameter a list does not take', async () => {
    const res = await t.http().get('/projects?limit=5&sort=name').set(as(me)).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'unknown_query_parameter', message: expect.stringContaining('"sort"') });
  });

  it('answers 400 unknown_query_parameter on a route that takes no query at all', async () => {
    const project = await t.http().post('/projects').set(as(me)).send({ name: 'no query' }).expect(201);
    const res = await t.http().get(`/projects/${project.body.id}?expand=tasks`).set(as(me)).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'unknown_query_parameter', message: expect.stringContaining('"expand"') });
  });

  it('keeps validation_failed with details for a known query parameter with a bad value', async () => {
    const res = await t.http().get('/projects?limit=0').set(as(me)).expect(400);
    expect(res.body.error).toBe('validation_failed');
    expect(res.body.details).toEqual([{ field: 'limit', code: 'min', message: expect.any(String) }]);
  });
});
