import { decodeJwt } from 'jose';
import { Client } from 'pg';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { addMember, asUser, login, signInOwner } from '../support/sessions';

// Onboarding (a silo is a CREATE DATABASE) and scrypt logins take seconds on a loaded 2-core machine.
jest.setTimeout(60_000);

describe('sessions: login, me, refresh rotation with reuse detection, logout, tenants lookup, password change', () => {
  let t: TestApp;
  let acme: OnboardedTenant;
  let globex: OnboardedTenant;

  beforeAll(async () => {
    t = await startTestApp();
    acme = await t.onboard('sess-acme', 'pool');
    globex = await t.onboard('sess-globex', 'bridge');
  });
  afterAll(() => t.close());

  const refresh = (slug: string, refreshToken: string) => t.http().post('/auth/refresh').set('X-Tenant', slug).send({ refresh_token: refreshToken });

  async function ownerQuery<R>(sql: string, params: unknown[] = []): Promise<R[]> {
    const c = new Client({ connectionString: t.db.ownerUrl });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as R[];
    } finally {
      await c.end();
    }
  }

  it('answers a login with a short-lived access token and an opaque refresh token', async () => {
    const res = await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email: acme.email, password: acme.password }).expect(200);
    expect(res.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: t.config.tokenTtlSeconds,
      refresh_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      refresh_expires_in: t.config.refreshTtlSeconds,
    });
    // Stored as its sha256 only.
    const stored = await ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM control.refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))`, [
      res.body.refresh_token,
    ]);
    expect(stored[0].n).toBe(1);
  });

  it('answers GET /auth/me with the user, the tenant, the role and when the access token expires', async () => {
    const res = await t.http().get('/auth/me').set('X-Tenant', acme.slug).set('authorization', `Bearer ${acme.token}`).expect(200);
    const exp = decodeJwt(acme.token).exp!;
    expect(res.body).toEqual({
      user: { id: acme.userId, email: acme.email },
      tenant: { id: acme.id, slug: acme.slug, name: acme.name },
      role: 'owner',
      tokenExpiresAt: new Date(exp * 1000).toISOString(),
    });
  });

  it('answers GET /auth/me without a token with 401 unauthenticated, and with another tenant on the wire with 404', async () => {
    expect((await t.http().get('/auth/me').set('X-Tenant', acme.slug).expect(401)).body.error).toBe('unauthenticated');
    expect((await t.http().get('/auth/me').set(asUser({ tenant: globex, token: acme.token })).expect(404)).body.error).toBe('tenant_not_found');
  });

  it('exchanges a refresh token for a new pair that works, and uses the old one up', async () => {
    const s = await signInOwner(t, acme);
    const first = await refresh(acme.slug, s.refreshToken).expect(200);
    expect(first.body.refresh_token).not.toBe(s.refreshToken);
    await t.http().get('/auth/me').set(asUser({ tenant: acme, token: first.body.access_token })).expect(200);
    const second = await refresh(acme.slug, first.body.refresh_token).expect(200);
    expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
    const [row] = await ownerQuery<{ used: boolean }>(`SELECT used_at IS NOT NULL AS used FROM control.refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))`, [
      s.refreshToken,
    ]);
    expect(row.used).toBe(true);
  });

  it('answers a used refresh token with 401 refresh_token_reused and revokes its whole family, but no other login', async () => {
    const stolen = await signInOwner(t, acme);
    const other = await signInOwner(t, acme);
    const rotated = await refresh(acme.slug, stolen.refreshToken).expect(200);
    const reuse = await refresh(acme.slug, stolen.refreshToken).expect(401);
    expect(reuse.body.error).toBe('refresh_token_reused');
    // The legitimate successor is dead too: we cannot tell who holds which copy.
    const successor = await refresh(acme.slug, rotated.body.refresh_token).expect(401);
    expect(successor.body.error).toBe('invalid_refresh_token');
    const [family] = await ownerQuery<{ revoked_reason: string }>(
      `SELECT f.revoked_reason FROM control.refresh_families f JOIN control.refresh_tokens r ON r.family_id = f.id
        WHERE r.token_hash = sha256(convert_to($1, 'UTF8'))`,
      [stolen.refreshToken],
    );
    expect(family.revoked_reason).toBe('reuse');
    await refresh(acme.slug, other.refreshToken).expect(200);
  });

  it('lets exactly one of many concurrent refreshes with the same token win; the others are reuse', async () => {
    const s = await signInOwner(t, acme);
    const answers = await Promise.all(Array.from({ length: 8 }, () => refresh(acme.slug, s.refreshToken)));
    const won = answers.filter((r) => r.status === 200);
    expect(won).toHaveLength(1);
    expect(answers.filter((r) => r.status === 401).map((r) => r.body.error)).toEqual(Array(7).fill('refresh_token_reused'));
    // One successor was issued, not eight.
    const [tokens] = await ownerQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM control.refresh_tokens WHERE family_id =
         (SELECT family_id FROM control.refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8')))`,
      [s.refreshToken],
    );
    expect(tokens.n).toBe(2);
  });

  it('honours a refresh token only with its own tenant on the wire, and a foreign try uses up or revokes nothing', async () => {
    const both = await addMember(t, acme, 'member');
    await t.http().post(`/admin/tenants/${globex.id}/users`).set('authorization', `Bearer ${t.adminToken}`).send({ email: both.email, role: 'admin' }).expect(201);
    for (const wire of [globex.slug, 'no-such-tenant']) {
      const res = await refresh(wire, both.refreshToken);
      expect([res.status, res.body.error]).toEqual(wire === globex.slug ? [401, 'invalid_refresh_token'] : [404, 'tenant_not_found']);
    }
    const own = await refresh(acme.slug, both.refreshToken).expect(200);
    expect(decodeJwt(own.body.access_token)).toMatchObject({ tid: acme.id, role: 'member' });
  });

  it('answers an expired refresh token with 401 invalid_refresh_token', async () => {
    const s = await signInOwner(t, acme);
    await ownerQuery(`UPDATE control.refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = sha256(convert_to($1, 'UTF8'))`, [s.refreshToken]);
    expect((await refresh(acme.slug, s.refreshToken).expect(401)).body.error).toBe('invalid_refresh_token');
  });

  it('answers a malformed refresh token with 400 validation_failed and an unknown one with 401 invalid_refresh_token', async () => {
    expect((await refresh(acme.slug, 'x').expect(400)).body.error).toBe('validation_failed');
    expect((await refresh(acme.slug, 'A'.repeat(43)).expect(401)).body.error).toBe('invalid_refresh_token');
  });

  it('logs out by revoking the refresh family: neither the token nor its successor refreshes again; a second logout is 204 too', async () => {
    const s = await signInOwner(t, acme);
    const next = await refresh(acme.slug, s.refreshToken).expect(200);
    await t.http().post('/auth/logout').set('X-Tenant', acme.slug).send({ refresh_token: next.body.refresh_token }).expect(204);
    expect((await refresh(acme.slug, next.body.refresh_token).expect(401)).body.error).toBe('invalid_refresh_token');
    await t.http().post('/auth/logout').set('X-Tenant', acme.slug).send({ refresh_token: next.body.refresh_token }).expect(204);
  });

  it('does not let a logout on another tenant end a session', async () => {
    const s = await signInOwner(t, acme);
    await t.http().post('/auth/logout').set('X-Tenant', globex.slug).send({ refresh_token: s.refreshToken }).expect(204);
    await refresh(acme.slug, s.refreshToken).expect(200);
  });

  it('lists on the root domain the tenants a user belongs to, with slug, name and role, without a tenant on the wire', async () => {
    const user = await addMember(t, globex, 'admin');
    await t.http().post(`/admin/tenants/${acme.id}/users`).set('authorization', `Bearer ${t.adminToken}`).send({ email: user.email, role: 'member' }).expect(201);
    const res = await t.http().post('/auth/tenants').send({ email: user.email.toUpperCase(), password: user.password }).expect(200);
    expect(res.body.items).toEqual(
      [
        { id: acme.id, slug: acme.slug, name: acme.name, role: 'member', status: 'active' },
        { id: globex.id, slug: globex.slug, name: globex.name, role: 'admin', status: 'active' },
      ].sort((a, b) => a.slug.localeCompare(b.slug)),
    );
  });

  it('answers the tenants lookup with the same 401 invalid_credentials for a wrong password and an unknown email', async () => {
    const wrong = await t.http().post('/auth/tenants').send({ email: acme.email, password: 'not-the-password' });
    const unknown = await t.http().post('/auth/tenants').send({ email: 'ghost@nowhere.test', password: 'not-the-password' });
    for (const res of [wrong, unknown]) expect([res.status, res.body]).toEqual([401, { statusCode: 401, error: 'invalid_credentials', message: 'email or password is wrong' }]);
  });

  it('changes the password, revokes every refresh family of the user in every tenant, and answers a fresh session', async () => {
    const user = await addMember(t, acme, 'admin');
    await t.http().post(`/admin/tenants/${globex.id}/users`).set('authorization', `Bearer ${t.adminToken}`).send({ email: user.email, role: 'member' }).expect(201);
    const inGlobex = await login(t, globex.slug, user.email, user.password);
    const wrong = await t.http().post('/auth/password').set(asUser(user)).send({ currentPassword: 'nope', newPassword: 'a-new-password-1' }).expect(400);
    expect(wrong.body.error).toBe('invalid_current_password');

    const changed = await t.http().post('/auth/password').set(asUser(user)).send({ currentPassword: user.password, newPassword: 'a-new-password-1' }).expect(200);
    expect(changed.body).toMatchObject({ token_type: 'Bearer', refresh_token: expect.any(String), access_token: expect.any(String) });
    expect((await refresh(acme.slug, user.refreshToken).expect(401)).body.error).toBe('invalid_refresh_token');
    expect((await refresh(globex.slug, inGlobex.refreshToken).expect(401)).body.error).toBe('invalid_refresh_token');
    await refresh(acme.slug, changed.body.refresh_token).expect(200);
    await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email: user.email, password: user.password }).expect(401);
    await login(t, acme.slug, user.email, 'a-new-password-1');
  });

  it('refuses a new password shorter than 8 characters with 400 validation_failed', async () => {
    const res = await t.http().post('/auth/password').set(asUser({ tenant: acme, token: acme.token })).send({ currentPassword: acme.password, newPassword: 'short' }).expect(400);
    expect(res.body.error).toBe('validation_failed');
  });

  it('answers a login to a suspended tenant with correct credentials 403 tenant_suspended, and anything else as before', async () => {
    const paused = await t.onboard('sess-paused', 'silo');
    const s = await signInOwner(t, paused);
    const stranger = await signInOwner(t, acme);
    await t.http().post(`/admin/tenants/${paused.id}/suspend`).set('authorization', `Bearer ${t.adminToken}`).expect(200);

    const ok = await t.http().post('/auth/login').set('X-Tenant', paused.slug).send({ email: paused.email, password: paused.password });
    expect([ok.status, ok.body.error]).toEqual([403, 'tenant_suspended']);
    const wrong = await t.http().post('/auth/login').set('X-Tenant', paused.slug).send({ email: paused.email, password: 'wrong-password' });
    expect([wrong.status, wrong.body.error]).toEqual([401, 'invalid_credentials']);
    const notMember = await t.http().post('/auth/login').set('X-Tenant', paused.slug).send({ email: stranger.email, password: stranger.password });
    expect([notMember.status, notMember.body.error]).toEqual([401, 'invalid_credentials']);
    const unknown = await t.http().post('/auth/login').set('X-Tenant', 'no-such-tenant').send({ email: paused.email, password: paused.password });
    expect([unknown.status, unknown.body.error]).toEqual([404, 'tenant_not_found']);

    // A valid refresh token is told the same, and is kept for when the tenant is back.
    expect((await refresh(paused.slug, s.refreshToken).expect(403)).body.error).toBe('tenant_suspended');
    expect((await refresh(paused.slug, 'B'.repeat(43)).expect(401)).body.error).toBe('invalid_refresh_token');
    const listed = await t.http().post('/auth/tenants').send({ email: paused.email, password: paused.password }).expect(200);
    expect(listed.body.items).toEqual([expect.objectContaining({ slug: paused.slug, status: 'suspended' })]);

    await t.http().post(`/admin/tenants/${paused.id}/activate`).set('authorization', `Bearer ${t.adminToken}`).expect(200);
    await refresh(paused.slug, s.refreshToken).expect(200);
  });
});
