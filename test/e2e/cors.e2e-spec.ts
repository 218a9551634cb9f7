import { CORS_ALLOWED_HEADERS } from '#strata/common';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

const APP = 'https://app.example.com';

describe('CORS for browser apps on other origins', () => {
  let t: TestApp;
  let acme: OnboardedTenant;
  beforeAll(async () => {
    t = await startTestApp({ corsOrigins: [APP, 'https://*.strata.test'] });
    acme = await t.onboard('acme', 'pool');
  });
  afterAll(() => t?.close());

  const preflight = (path: string, origin: string, headers = 'authorization,content-type,x-tenant,idempotency-key') =>
    t.http().options(path).set('origin', origin).set('access-control-request-method', 'POST').set('access-control-request-headers', headers);

  it('answers a preflight from an allowed origin with the methods and every header the API reads', async () => {
    const res = await preflight('/projects', APP).expect(204);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers['access-control-allow-methods']).toContain('POST');
    expect(res.headers['access-control-allow-methods']).toContain('PATCH');
    expect(res.headers['access-control-allow-headers'].split(',')).toEqual(expect.arrayContaining([...CORS_ALLOWED_HEADERS]));
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.headers.vary).toMatch(/origin/i);
  });

  it('answers preflights of the /t/{slug} path form and of routes that need a token, before any guard runs', async () => {
    expect((await preflight(`/t/${acme.slug}/projects`, APP).expect(204)).headers['access-control-allow-origin']).toBe(APP);
    expect((await preflight('/admin/tenants', APP).expect(204)).headers['access-control-allow-origin']).toBe(APP);
  });

  it('lets the app read the answer and the exposed headers of a real request', async () => {
    const res = await t
      .http()
      .get('/projects')
      .set('origin', APP)
      .set('X-Tenant', acme.slug)
      .set('authorization', `Bearer ${acme.token}`)
      .expect(200);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers['access-control-expose-headers'].split(',')).toEqual(expect.arrayContaining(['x-request-id', 'retry-after', 'idempotent-replayed']));
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('serves per-tenant frontends on subdomains of the pattern, one label deep', async () => {
    const ok = await preflight('/projects', `https://${acme.slug}.strata.test`).expect(204);
    expect(ok.headers['access-control-allow-origin']).toBe(`https://${acme.slug}.strata.test`);
    const deep = await preflight('/projects', `https://a.${acme.slug}.strata.test`);
    expect(deep.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('gives any other origin no CORS headers, so the browser refuses it, and the request itself is unchanged', async () => {
    const pre = await preflight('/projects', 'https://evil.example');
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    const res = await t.http().get('/projects').set('origin', 'https://evil.example').set('X-Tenant', acme.slug).set('authorization', `Bearer ${acme.token}`).expect(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('CORS off (no CORS_ORIGINS)', () => {
  let t: TestApp;
  beforeAll(async () => (t = await startTestApp()));
  afterAll(() => t?.close());

  it('adds no CORS headers for any origin', async () => {
    const res = await t.http().options('/projects').set('origin', APP).set('access-control-request-method', 'POST');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});
