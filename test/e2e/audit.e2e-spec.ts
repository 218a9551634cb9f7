import { LoginFailures } from '#strata/auth';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { addMember, asUser, login, signInOwner, type SignedIn } from '../support/sessions';
import { waitFor } from '../support/tenancy-fixture';

// Onboarding and scrypt logins take seconds on a loaded 2-core machine.
jest.setTimeout(60_000);

interface Entry {
  seq: number;
  id: string;
  createdAt: string;
  action: string;
  actor: { type: string; id: string | null };
  onBehalfOf: string | null;
  tenantId: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
  hash: string;
}

describe('the audit log over HTTP: what is recorded, GET /admin/audit for operators, GET /audit for owners', () => {
  let t: TestApp;
  let acme: OnboardedTenant;
  let globex: OnboardedTenant;
  let owner: SignedIn;
  let admin: SignedIn;

  beforeAll(async () => {
    t = await startTestApp();
    acme = await t.onboard('audit-acme', 'pool');
    globex = await t.onboard('audit-globex', 'pool');
    owner = await signInOwner(t, acme);
    admin = await addMember(t, acme, 'admin');
  });
  afterAll(() => t.close());

  const adminAudit = (query: Record<string, string | number> = {}) =>
    t.http().get('/admin/audit').query(query).set('authorization', `Bearer ${t.adminToken}`);
  const entries = async (query: Record<string, string | number>): Promise<Entry[]> => {
    const res = await adminAudit({ limit: 100, ...query }).expect(200);
    return res.body.items;
  };

  it('records onboarding (the request with the operator as actor, the activation by the pipeline) and the users operators add', async () => {
    const [requested] = await entries({ tenantId: acme.id, action: 'tenant.onboarding_requested' });
    expect(requested).toEqual(
      expect.objectContaining({ action: 'tenant.onboarding_requested', tenantId: acme.id, actor: { type: 'operator', id: 'test-operator' }, onBehalfOf: null }),
    );
    expect(requested.details).toEqual(expect.objectContaining({ slug: acme.slug, tier: 'pool' }));
    expect(requested.hash).toMatch(/^[0-9a-f]{64}$/);
    const [onboarded] = await entries({ tenantId: acme.id, action: 'tenant.onboarded' });
    expect(onboarded).toEqual(expect.objectContaining({ actor: { type: 'system', id: null }, details: expect.objectContaining({ slug: acme.slug, tier: 'pool' }) }));
    expect(onboarded.seq).toBeGreaterThan(requested.seq);
    const added = await entries({ tenantId: acme.id, action: 'member.added' });
    expect(added.map((e) => e.details.userId)).toEqual(expect.arrayContaining([acme.userId, admin.userId]));
  });

  it('records a suspension and a reactivation with the request id the operator sent', async () => {
    const requestId = `audit-suspend-${Date.now()}`;
    await t.http().post(`/admin/tenants/${globex.id}/suspend`).set('authorization', `Bearer ${t.adminToken}`).set('x-request-id', requestId).expect(200);
    await t.http().post(`/admin/tenants/${globex.id}/activate`).set('authorization', `Bearer ${t.adminToken}`).expect(200);
    const [reactivated, suspended] = await entries({ tenantId: globex.id, action: 'tenant.*' });
    expect([reactivated.action, suspended.action]).toEqual(['tenant.reactivated', 'tenant.suspended']);
    expect(suspended.requestId).toBe(requestId);
    expect(suspended.details).toEqual({ from: 'active', to: 'suspended' });
  });

  it("records an owner's role change of a member, with the owner as actor", async () => {
    const member = await addMember(t, acme, 'member');
    await t.http().patch(`/members/${member.userId}`).set(asUser(owner)).send({ role: 'admin' }).expect(200);
    const [changed] = await entries({ tenantId: acme.id, action: 'member.role_changed' });
    expect(changed).toEqual(expect.objectContaining({ actor: { type: 'user', id: owner.userId }, details: { userId: member.userId, from: 'member', to: 'admin' } }));
  });

  it('records a password change and a refresh token used twice', async () => {
    const user = await addMember(t, acme, 'member');
    await t.http().post('/auth/password').set(asUser(user)).send({ currentPassword: user.password, newPassword: 'another-horse-battery' }).expect(200);
    const fresh = await login(t, acme.slug, user.email, 'another-horse-battery');
    await t.http().post('/auth/refresh').set('X-Tenant', acme.slug).send({ refresh_token: fresh.refreshToken }).expect(200);
    await t.http().post('/auth/refresh').set('X-Tenant', acme.slug).send({ refresh_token: fresh.refreshToken }).expect(401);
    const [changed] = await entries({ tenantId: acme.id, action: 'auth.password_changed' });
    expect(changed.actor).toEqual({ type: 'user', id: user.userId });
    const [reused] = await entries({ tenantId: acme.id, action: 'auth.refresh_token_reused' });
    expect(reused).toEqual(expect.objectContaining({ actor: { type: 'anonymous', id: null }, details: expect.objectContaining({ userId: user.userId }) }));
  });

  it('records a move when it is requested and when the executor finishes it', async () => {
    const mover = await t.onboard('audit-mover', 'pool');
    const move = await t.http().post(`/admin/tenants/${mover.id}/moves`).set('authorization', `Bearer ${t.adminToken}`).send({ toTier: 'bridge' }).expect(202);
    const finished = await waitFor(
      () => entries({ tenantId: mover.id, action: 'move.finished' }),
      (es) => es.length > 0,
      60_000,
      200,
    );
    expect(finished[0]).toEqual(expect.objectContaining({ actor: expect.objectContaining({ type: 'system' }), details: expect.objectContaining({ moveId: move.body.id, outcome: 'done' }) }));
    const [requested] = await entries({ tenantId: mover.id, action: 'move.requested' });
    expect(requested).toEqual(expect.objectContaining({ actor: { type: 'operator', id: 'test-operator' }, details: expect.objectContaining({ moveId: move.body.id, toTier: 'bridge' }) }));
  });

  it('records failed logins in bulk: entries with a count per account and tenant, not one per attempt', async () => {
    const failures = t.app.get(LoginFailures);
    await failures.flush();
    for (let i = 0; i < 3; i++) {
      await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email: acme.email, password: `wrong-${i}` }).expect(401);
    }
    await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email: 'nobody@nowhere.test', password: 'whatever' }).expect(401);
    await failures.flush();
    // Summed over entries: the app's own 60 s window may have closed in the middle of this test.
    const failed = await entries({ tenantId: acme.id, action: 'auth.login_failed' });
    const total = (email: string) => failed.filter((e) => e.details.email === email).reduce((n, e) => n + (e.details.count as number), 0);
    expect([total(acme.email), total('nobody@nowhere.test')]).toEqual([3, 1]);
    expect(failed.length).toBeLessThan(4);
    expect(failed.every((e) => e.actor.type === 'anonymous' && typeof e.details.windowStart === 'string')).toBe(true);
  });

  it('filters by tenant, action and time window, and pages through them without repeating or skipping', async () => {
    const all = await entries({ tenantId: acme.id });
    expect(all.length).toBeGreaterThan(5);
    expect(all.every((e) => e.tenantId === acme.id)).toBe(true);
    // Newest first: seqs descend.
    expect(all.map((e) => e.seq)).toEqual([...all.map((e) => e.seq)].sort((a, b) => b - a));

    const paged: Entry[] = [];
    let cursor: string | null = null;
    do {
      const query: Record<string, string | number> = cursor ? { tenantId: acme.id, limit: 2, cursor } : { tenantId: acme.id, limit: 2 };
      const res = await adminAudit(query).expect(200);
      paged.push(...(res.body.items as Entry[]));
      cursor = res.body.nextCursor as string | null;
    } while (cursor);
    expect(paged.map((e) => e.id)).toEqual(all.map((e) => e.id));

    const middle = all[Math.floor(all.length / 2)];
    const window = await entries({ tenantId: acme.id, from: middle.createdAt, to: all[0].createdAt });
    expect(window.length).toBeGreaterThan(0);
    expect(window.every((e) => e.createdAt >= middle.createdAt && e.createdAt < all[0].createdAt)).toBe(true);
  });

  it('refuses a cursor used with other filters, an empty or reversed window, and a malformed action', async () => {
    const first = await adminAudit({ tenantId: acme.id, limit: 1 }).expect(200);
    const other = await adminAudit({ tenantId: globex.id, limit: 1, cursor: first.body.nextCursor }).expect(400);
    expect(other.body.error).toBe('invalid_cursor');
    const at = '2026-01-01T00:00:00Z';
    expect((await adminAudit({ from: at, to: at }).expect(400)).body.error).toBe('invalid_time_range');
    expect((await adminAudit({ action: 'DROP TABLE' }).expect(400)).body.error).toBe('validation_failed');
    expect((await adminAudit({ tenantId: 'acme' }).expect(400)).body.error).toBe('validation_failed');
  });

  it("shows an owner their own tenant's entries only, and no one else", async () => {
    const res = await t.http().get('/audit').query({ limit: 100 }).set(asUser(owner)).expect(200);
    expect(res.body.items.length).toBeGreaterThan(0);
    expect(res.body.items.every((e: Entry) => e.tenantId === acme.id)).toBe(true);
    const globexOwner = await signInOwner(t, globex);
    const theirs = await t.http().get('/audit').query({ limit: 100 }).set(asUser(globexOwner)).expect(200);
    expect(theirs.body.items.every((e: Entry) => e.tenantId === globex.id)).toBe(true);
    expect(theirs.body.items.map((e: Entry) => e.action)).toEqual(expect.arrayContaining(['tenant.suspended', 'tenant.onboarded']));
    // No way to ask for another tenant's entries.
    expect((await t.http().get('/audit').query({ tenantId: globex.id }).set(asUser(owner)).expect(400)).body.error).toBe('unknown_query_parameter');
    expect((await t.http().get('/audit').set(asUser(admin)).expect(403)).body.error).toBe('forbidden_role');
    expect((await t.http().get('/admin/audit').set(asUser(owner)).expect(403)).body.error).toBe('platform_admin_required');
  });
});
