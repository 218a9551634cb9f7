import { SignJWT } from 'jose';
import { Client } from 'pg';
import { TenantRegistry } from '#strata/control-plane';
import { startTestApp, TEST_JWT_SECRET, type OnboardedTenant, type TestApp } from '../support/test-app';

const secret = new TextEncoder().encode(TEST_JWT_SECRET);

async function token(claims: Record<string, unknown>, opts: { key?: Uint8Array; exp?: string | number } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '1h')
    .sign(opts.key ?? secret);
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

jest.setTimeout(30_000);

describe('request edge: the wire claims, the token proves', () => {
  let t: TestApp;
  let acme: OnboardedTenant;
  let globex: OnboardedTenant;

  beforeAll(async () => {
    t = await startTestApp();
    acme = await t.onboard('acme', 'pool');
    globex = await t.onboard('globex', 'bridge');
  });
  afterAll(() => t.close());

  const auth = (who: OnboardedTenant) => ({ authorization: `Bearer ${who.token}` });

  it('resolves the tenant from the X-Tenant header', async () => {
    await t.http().get('/projects').set('X-Tenant', acme.slug).set(auth(acme)).expect(200);
  });

  it('resolves the tenant from the /t/{slug} path prefix', async () => {
    await t.http().get(`/t/${acme.slug}/projects`).set(auth(acme)).expect(200);
  });

  it('resolves the tenant from a subdomain of BASE_DOMAIN', async () => {
    await t.http().get('/projects').set('Host', `${acme.slug}.strata.test`).set(auth(acme)).expect(200);
  });

  it('answers 400 tenant_required when the request names no tenant', async () => {
    const res = await t.http().get('/projects').set(auth(acme)).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'tenant_required', message: expect.any(String) });
  });

  it('answers 400 tenant_ambiguous when the header and path name different tenants', async () => {
    const res = await t.http().get(`/t/${acme.slug}/projects`).set('X-Tenant', globex.slug).set(auth(acme)).expect(400);
    expect(res.body.error).toBe('tenant_ambiguous');
  });

  it.each(['header', 'path', 'subdomain'] as const)('rejects a token for tenant A on a request whose %s names tenant B', async (via) => {
    let req = t.http().get(via === 'path' ? `/t/${globex.slug}/projects` : '/projects').set(auth(acme));
    if (via === 'header') req = req.set('X-Tenant', globex.slug);
    if (via === 'subdomain') req = req.set('Host', `${globex.slug}.strata.test`);
    const res = await req.expect(404);
    expect(res.body).toEqual({ statusCode: 404, error: 'tenant_not_found', message: 'tenant not found' });
  });

  it('answers an unknown tenant exactly like a foreign one', async () => {
    const unknown = await t.http().get('/projects').set('X-Tenant', 'no-such-tenant').set(auth(acme)).expect(404);
    const foreign = await t.http().get('/projects').set('X-Tenant', globex.slug).set(auth(acme)).expect(404);
    expect(unknown.body).toEqual(foreign.body);
  });

  it('answers a malformed slug like an unknown tenant', async () => {
    const res = await t.http().get('/projects').set('X-Tenant', 'Not_A_Slug!').set(auth(acme)).expect(404);
    expect(res.body.error).toBe('tenant_not_found');
  });

  it.each(['/t/%/projects', '/t/%E0%A4%A/projects'])('answers an undecodable path claim (%s) with the JSON 404 of an unknown tenant, never a 500', async (path) => {
    const res = await t.http().get(path).expect(404);
    expect(res.body).toEqual({ statusCode: 404, error: 'tenant_not_found', message: expect.any(String) });
  });

  it('answers a bare /t/{slug} with a query string in the JSON error shape, not an HTML page', async () => {
    const res = await t.http().get(`/t/${acme.slug}?limit=1`).set(auth(acme)).expect(404);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.body).toEqual({ statusCode: 404, error: 'not_found', message: expect.any(String) });
  });

  it('needs a bearer token: 401 unauthenticated without one', async () => {
    const res = await t.http().get('/projects').set('X-Tenant', acme.slug).expect(401);
    expect(res.body.error).toBe('unauthenticated');
  });

  it('rejects a token signed with another key', async () => {
    const forged = await token({ sub: acme.userId, tid: acme.id, role: 'owner' }, { key: new TextEncoder().encode('x'.repeat(40)) });
    const res = await t.http().get('/projects').set('X-Tenant', acme.slug).set('authorization', `Bearer ${forged}`).expect(401);
    expect(res.body.error).toBe('invalid_token');
  });

  it('rejects an unsigned alg:none token', async () => {
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: acme.userId, tid: acme.id, role: 'owner', exp: Math.floor(Date.now() / 1000) + 600 })}.`;
    const res = await t.http().get('/projects').set('X-Tenant', acme.slug).set('authorization', `Bearer ${none}`).expect(401);
    expect(res.body.error).toBe('invalid_token');
  });

  it('rejects an expired token with token_expired', async () => {
    const old = await token({ sub: acme.userId, tid: acme.id, role: 'owner' }, { exp: Math.floor(Date.now() / 1000) - 600 });
    const res = await t.http().get('/projects').set('X-Tenant', acme.slug).set('authorization', `Bearer ${old}`).expect(401);
    expect(res.body.error).toBe('token_expired');
  });

  it('rejects a correctly signed token without exp with invalid_token: it would never expire', async () => {
    const forever = await new SignJWT({ sub: acme.userId, tid: acme.id, role: 'owner' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(secret);
    const res = await t.http().get('/projects').set('X-Tenant', acme.slug).set('authorization', `Bearer ${forever}`).expect(401);
    expect(res.body.error).toBe('invalid_token');
  });

  it('treats a sub in upper case as the same user, so dropping the membership by its id takes effect for that token too', async () => {
    const slug = `upper-${acme.slug}`.slice(0, 40).replace(/-$/, 'x');
    const created = await t.http().post('/admin/tenants').set('authorization', `Bearer ${t.adminToken}`).send({ slug, name: 'upper', tier: 'pool' }).expect(201);
    const added = await t
      .http()
      .post(`/admin/tenants/${created.body.id}/users`)
      .set('authorization', `Bearer ${t.adminToken}`)
      .send({ email: `u@${slug}.test`, password: 'correct-horse-battery', role: 'member' })
      .expect(201);
    const upper = await token({ sub: String(added.body.id).toUpperCase(), tid: created.body.id, role: 'member' });
    await t.http().get('/projects').set('X-Tenant', slug).set('authorization', `Bearer ${upper}`).expect(200);
    const owner = new Client({ connectionString: t.db.ownerUrl });
    await owner.connect();
    await owner.query('DELETE FROM control.memberships WHERE user_id = $1 AND tenant_id = $2', [added.body.id, created.body.id]).finally(() => owner.end());
    t.app.get(TenantRegistry).invalidateMembership(added.body.id, created.body.id);
    const res = await t.http().get('/projects').set('X-Tenant', slug).set('authorization', `Bearer ${upper}`).expect(404);
    expect(res.body.error).toBe('tenant_not_found');
  });

  it('answers 404 when the token is valid but its user has no membership in the tenant', async () => {
    const stranger = await token({ sub: globex.userId, tid: acme.id, role: 'owner' });
    const res = await t.http().get('/projects').set('X-Tenant', acme.slug).set('authorization', `Bearer ${stranger}`).expect(404);
    expect(res.body.error).toBe('tenant_not_found');
  });

  it('lets one person belong to several tenants, each login scoped to its tenant', async () => {
    const add = await t
      .http()
      .post(`/admin/tenants/${globex.id}/users`)
      .set('authorization', `Bearer ${t.adminToken}`)
      .send({ email: acme.email, role: 'member' })
      .expect(201);
    expect(add.body).toMatchObject({ id: acme.userId, userCreated: false });
    const login = await t.http().post(`/t/${globex.slug}/auth/login`).send({ email: acme.email, password: acme.password }).expect(200);
    await t.http().get('/projects').set('X-Tenant', globex.slug).set('authorization', `Bearer ${login.body.access_token}`).expect(200);
    // the globex token does not open acme
    await t.http().get('/projects').set('X-Tenant', acme.slug).set('authorization', `Bearer ${login.body.access_token}`).expect(404);
  });

  it('answers every failed login with the same 401 invalid_credentials', async () => {
    const wrongPassword = await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email: acme.email, password: 'nope-nope' });
    const unknownUser = await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email: 'ghost@x.test', password: 'nope-nope' });
    const notMember = await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email: globex.email, password: globex.password });
    for (const res of [wrongPassword, unknownUser, notMember]) {
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_credentials');
    }
  });

  it('rejects a login body that is not valid with 400 validation_failed', async () => {
    const res = await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email: 'not-an-email' }).expect(400);
    expect(res.body.error).toBe('validation_failed');
  });

  it('answers JSON nested deeper than the limit with 400 json_too_deep, even on the anonymous login, never a 500', async () => {
    const deep = `{"email":${'['.repeat(2000)}${']'.repeat(2000)},"password":"x"}`;
    const res = await t.http().post('/auth/login').set('X-Tenant', acme.slug).set('content-type', 'application/json').send(deep).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'json_too_deep', message: expect.stringMatching(/deeper than 32/) });
    // Nesting within the limit still reaches validation.
    const shallow = `{"email":${'['.repeat(20)}${']'.repeat(20)},"password":"x"}`;
    const ok = await t.http().post('/auth/login').set('X-Tenant', acme.slug).set('content-type', 'application/json').send(shallow).expect(400);
    expect(ok.body.error).toBe('validation_failed');
  });

  it.each([
    ['a value', '{"name":"\\ud800"}'],
    ['a lone low surrogate', '{"name":"a\\udfffb"}'],
    ['a key', '{"\\ud800":"x","name":"fine"}'],
  ])('refuses a string that is not well-formed Unicode in %s with 400 invalid_unicode and stores nothing', async (_where, body) => {
    const before = await t.http().get('/projects?limit=100').set('X-Tenant', acme.slug).set(auth(acme)).expect(200);
    const res = await t.http().post('/projects').set('X-Tenant', acme.slug).set(auth(acme)).set('content-type', 'application/json').send(body).expect(400);
    expect(res.body.error).toBe('invalid_unicode');
    const after = await t.http().get('/projects?limit=100').set('X-Tenant', acme.slug).set(auth(acme)).expect(200);
    expect(after.body.items).toHaveLength(before.body.items.length);
  });

  it('answers malformed JSON with 400 invalid_json', async () => {
    const res = await t
      .http()
      .post('/auth/login')
      .set('X-Tenant', acme.slug)
      .set('content-type', 'application/json')
      .send('{"email": ')
      .expect(400);
    expect(res.body.error).toBe('invalid_json');
  });

  it('answers 403 tenant_suspended to a member of a suspended tenant, and serves it again once active', async () => {
    const victim = await t.onboard('paused', 'silo');
    await t.http().post(`/admin/tenants/${victim.id}/suspend`).set('authorization', `Bearer ${t.adminToken}`).expect(200);
    await new Promise((r) => setTimeout(r, t.config.registryCacheTtlMs + 50));
    const res = await t.http().get('/projects').set('X-Tenant', victim.slug).set(auth(victim)).expect(403);
    expect(res.body.error).toBe('tenant_suspended');
    // a non-member still learns nothing
    await t.http().get('/projects').set('X-Tenant', victim.slug).set(auth(acme)).expect(404);
    await t.http().post(`/admin/tenants/${victim.id}/activate`).set('authorization', `Bearer ${t.adminToken}`).expect(200);
    await t.http().get('/projects').set('X-Tenant', victim.slug).set(auth(victim)).expect(200);
  });

  it('echoes a caller-supplied X-Request-Id and makes one otherwise', async () => {
    const given = await t.http().get('/health/live').set('X-Request-Id', 'req-1234567890').expect(200);
    expect(given.headers['x-request-id']).toBe('req-1234567890');
    const made = await t.http().get('/health/live').expect(200);
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers an unknown route with 404 not_found in the error shape', async () => {
    const res = await t.http().get('/health/nope').expect(404);
    expect(res.body).toEqual({ statusCode: 404, error: 'not_found', message: expect.any(String) });
  });

  it('reports live and ready, listing the control plane, every pool, Redis, migration drift and the RLS guardrail', async () => {
    await t.http().get('/health/live').expect(200, { status: 'ok' });
    const ready = await t.http().get('/health/ready').expect(200);
    expect(Object.keys(ready.body.details).sort()).toEqual([
      'control',
      'homes',
      'migrations',
      'pool:main-bridge',
      'pool:main-pool',
      'pool:main-silo',
      'redis',
      'rls',
    ]);
    expect(ready.body.details.migrations).toMatchObject({ status: 'up', behind: 0, behindTargets: [] });
    expect(ready.body.details.homes).toEqual({ status: 'up', degraded: [] });
    expect(ready.body.details.migrations.targets).toBeGreaterThanOrEqual(3);
    expect(ready.body.details.rls.status).toBe('up');
  });

  it('reports targets behind the release as drift without failing readiness', async () => {
    const owner = new Client({ connectionString: t.db.ownerUrl });
    await owner.connect();
    const [{ schema_version: had }] = (await owner.query(`SELECT schema_version FROM control.tenants WHERE id = $1`, [globex.id])).rows;
    try {
      await owner.query(`UPDATE control.tenants SET schema_version = '0000' WHERE id = $1`, [globex.id]);
      const ready = await t.http().get('/health/ready').expect(200);
      expect(ready.body.details.migrations).toMatchObject({ status: 'up', behind: 1, behindTargets: [`bridge:${globex.slug}`] });
    } finally {
      await owner.query(`UPDATE control.tenants SET schema_version = $2 WHERE id = $1`, [globex.id, had]);
      await owner.end();
    }
  });

  it('stays ready and reports a pool server that cannot be reached as degraded, with the reason', async () => {
    const owner = new Client({ connectionString: t.db.ownerUrl });
    await owner.connect();
    try {
      await owner.query(`INSERT INTO control.pools (id, kind, host, port, database) VALUES ('dead-pool', 'pool', '127.0.0.1', 1, 'x')`);
      const res = await t.http().get('/health/ready').expect(200);
      expect(res.body.details['pool:dead-pool']).toMatchObject({ status: 'up', degraded: true, reason: expect.stringMatching(/ECONNREFUSED|connect/) });
      expect(res.body.details.control.status).toBe('up');
    } finally {
      await owner.query(`DELETE FROM control.pools WHERE id = 'dead-pool'`);
      await owner.end();
    }
  });
});

describe('platform admin API', () => {
  let t: TestApp;
  let acme: OnboardedTenant;
  beforeAll(async () => {
    t = await startTestApp();
    acme = await t.onboard('acme', 'pool');
  });
  afterAll(() => t.close());
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });

  it('needs a token: 401 without one', async () => {
    const res = await t.http().get(`/admin/tenants/${acme.id}`).expect(401);
    expect(res.body.error).toBe('unauthenticated');
  });

  it('refuses a tenant user token with 403 platform_admin_required', async () => {
    const res = await t.http().get(`/admin/tenants/${acme.id}`).set('authorization', `Bearer ${acme.token}`).expect(403);
    expect(res.body.error).toBe('platform_admin_required');
  });

  it('returns the tenant record with its tier, status and pool', async () => {
    const res = await t.http().get(`/admin/tenants/${acme.id}`).set(admin()).expect(200);
    expect(res.body).toMatchObject({ id: acme.id, slug: acme.slug, tier: 'pool', status: 'active', poolId: 'main-pool' });
  });

  it('answers 404 tenant_not_found for an unknown id and 400 invalid_id for a malformed one', async () => {
    expect((await t.http().get('/admin/tenants/00000000-0000-4000-8000-000000000000').set(admin()).expect(404)).body.error).toBe('tenant_not_found');
    expect((await t.http().get('/admin/tenants/nope').set(admin()).expect(400)).body.error).toBe('invalid_id');
  });

  it.each([
    [{ slug: 'A-bad', name: 'x', tier: 'pool' }],
    [{ slug: 'ok-slug', name: 'x', tier: 'gold' }],
    [{ slug: 'ok-slug', tier: 'pool' }],
    [{ slug: 'x', name: 'x', tier: 'pool' }],
    [{ slug: 'ok-slug', name: 'x', tier: 'pool', extra: 1 }],
  ])('rejects an invalid onboarding request %j with 400 validation_failed', async (body) => {
    const res = await t.http().post('/admin/tenants').set(admin()).send(body).expect(400);
    expect(res.body.error).toBe('validation_failed');
  });

  it('refuses a taken slug with 409 tenant_slug_taken and leaves the first tenant intact', async () => {
    const res = await t.http().post('/admin/tenants').set(admin()).send({ slug: acme.slug, name: 'again', tier: 'bridge' }).expect(409);
    expect(res.body.error).toBe('tenant_slug_taken');
    await t.http().get('/projects').set('X-Tenant', acme.slug).set('authorization', `Bearer ${acme.token}`).expect(200);
  });

  it('answers 400 invalid_pool for a pool that does not serve the tier', async () => {
    const res = await t.http().post('/admin/tenants').set(admin()).send({ slug: 'pool-mismatch', name: 'x', tier: 'silo', poolId: 'main-pool' }).expect(400);
    expect(res.body.error).toBe('invalid_pool');
  });

  it('refuses a password given for an existing user with 409 user_exists_password_ignored and changes nothing', async () => {
    const victim = await t.onboard('pw-owner', 'pool');
    const other = await t.onboard('pw-ignored', 'pool');
    const refused = await t
      .http()
      .post(`/admin/tenants/${other.id}/users`)
      .set(admin())
      .send({ email: victim.email, password: 'a-different-password', role: 'member' })
      .expect(409);
    expect(refused.body.error).toBe('user_exists_password_ignored');
    // Neither the membership nor the password was written.
    await t.http().post('/auth/login').set('X-Tenant', other.slug).send({ email: victim.email, password: victim.password }).expect(401);
    await t.http().post('/auth/login').set('X-Tenant', victim.slug).send({ email: victim.email, password: 'a-different-password' }).expect(401);
    await t.http().post('/auth/login').set('X-Tenant', victim.slug).send({ email: victim.email, password: victim.password }).expect(200);
  });

  it('answers 400 password_required when a new user is added without a password', async () => {
    const res = await t.http().post(`/admin/tenants/${acme.id}/users`).set(admin()).send({ email: 'nobody-yet@x.test', role: 'member' }).expect(400);
    expect(res.body.error).toBe('password_required');
  });

  it('refuses a second membership of the same user with 409 membership_exists', async () => {
    const res = await t
      .http()
      .post(`/admin/tenants/${acme.id}/users`)
      .set(admin())
      .send({ email: acme.email, password: 'whatever-long', role: 'member' })
      .expect(409);
    expect(res.body.error).toBe('membership_exists');
  });

  it('onboards a tenant on each tier with 201 and its placement', async () => {
    for (const tier of ['pool', 'bridge', 'silo'] as const) {
      const onboarded = await t.onboard(`new-${tier}`, tier);
      const res = await t.http().get(`/admin/tenants/${onboarded.id}`).set(admin()).expect(200);
      expect(res.body).toMatchObject({ tier, status: 'active', poolId: `main-${tier}` });
    }
  });
});
