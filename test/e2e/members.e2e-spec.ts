import { decodeJwt } from 'jose';
import { Client } from 'pg';
import { MailNotSentError } from '#strata/mail';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { probeForeignIds } from '../support/cross-tenant';
import { INVITATION_FOREIGN_ROUTES, MEMBER_FOREIGN_ROUTES } from '../support/cross-tenant-routes';
import { addMember, asUser, login, mailbox, PASSWORD, signInOwner, type SignedIn } from '../support/sessions';

// Onboarding (a silo is a CREATE DATABASE) and scrypt logins take seconds on a loaded 2-core machine.
jest.setTimeout(60_000);

describe('members from inside the tenant: list, invite, accept, change role, remove', () => {
  let t: TestApp;
  let mail: ReturnType<typeof mailbox>;
  let acme: OnboardedTenant;
  let owner: SignedIn;
  let admin: SignedIn;
  let member: SignedIn;

  beforeAll(async () => {
    // A long registry TTL: every change below must reach the guard by invalidation, not by expiry.
    t = await startTestApp({ registryCacheTtlMs: 60_000 });
    mail = mailbox(t);
    acme = await t.onboard('mem-acme', 'pool');
    owner = await signInOwner(t, acme);
    admin = await addMember(t, acme, 'admin');
    member = await addMember(t, acme, 'member');
  });
  afterAll(() => t.close());

  const as = asUser;
  const invite = (who: SignedIn, email: string, role: string) => t.http().post('/members/invitations').set(as(who)).send({ email, role });
  const accept = (token: string, password?: string) => t.http().post('/auth/invitations/accept').send(password === undefined ? { token } : { token, password });

  async function ownerQuery<R>(sql: string, params: unknown[] = []): Promise<R[]> {
    const c = new Client({ connectionString: t.db.ownerUrl });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as R[];
    } finally {
      await c.end();
    }
  }

  /** A tenant of its own with a second owner, for the owner rules. */
  async function twoOwners(base: string): Promise<{ tenant: OnboardedTenant; first: SignedIn; second: SignedIn }> {
    const tenant = await t.onboard(base, 'pool');
    return { tenant, first: await signInOwner(t, tenant), second: await addMember(t, tenant, 'owner') };
  }

  it('lists the members to an owner and an admin, newest first, with email and role, a page at a time', async () => {
    for (const who of [owner, admin]) {
      const res = await t.http().get('/members').set(as(who)).expect(200);
      expect(res.body.items.map((m: { userId: string }) => m.userId)).toEqual(expect.arrayContaining([owner.userId, admin.userId, member.userId]));
      expect(res.body.items.find((m: { userId: string }) => m.userId === admin.userId)).toEqual({
        userId: admin.userId,
        email: admin.email,
        role: 'admin',
        createdAt: expect.any(String),
      });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: Array<{ userId: string }>; nextCursor: string | null } } = await t
        .http()
        .get('/members')
        .query(cursor ? { limit: 1, cursor } : { limit: 1 })
        .set(as(owner))
        .expect(200);
      expect(page.body.items.length).toBeLessThanOrEqual(1);
      seen.push(...page.body.items.map((m) => m.userId));
      cursor = page.body.nextCursor;
    } while (cursor);
    const all = await t.http().get('/members').set(as(owner)).expect(200);
    expect(seen).toEqual(all.body.items.map((m: { userId: string }) => m.userId));
  });

  it('answers a member who lists, invites, changes or removes members with 403 forbidden_role naming admin', async () => {
    const answers = [
      await t.http().get('/members').set(as(member)),
      await invite(member, 'someone@x.test', 'member'),
      await t.http().patch(`/members/${admin.userId}`).set(as(member)).send({ role: 'member' }),
      await t.http().delete(`/members/${admin.userId}`).set(as(member)),
    ];
    for (const res of answers) {
      expect([res.status, res.body.error]).toEqual([403, 'forbidden_role']);
      expect(res.body.message).toMatch(/needs the admin role/);
    }
  });

  it('invites by email through the mail port; accepting with a password creates the account, which then logs in', async () => {
    const email = 'new-hire@mem-acme.test';
    const res = await invite(admin, email.toUpperCase(), 'member').expect(201);
    expect(res.body).toEqual({ id: expect.any(String), email, role: 'member', expiresAt: expect.any(String) });
    expect(JSON.stringify(res.body)).not.toMatch(/token/i);
    const sent = mail.sent().at(-1)!;
    expect(sent).toMatchObject({ to: email, subject: expect.stringContaining(acme.name) });
    expect(sent.text).toContain(admin.email);
    expect(sent.text).toMatch(/https:\/\/app\.strata\.test\/accept-invitation#token=[A-Za-z0-9_-]{43}/);

    const accepted = await accept(mail.tokenFor(email), 'a-fresh-password').expect(200);
    expect(accepted.body).toEqual({
      userId: expect.any(String),
      email,
      role: 'member',
      tenant: { id: acme.id, slug: acme.slug, name: acme.name },
      userCreated: true,
    });
    const s = await login(t, acme.slug, email, 'a-fresh-password');
    const me = await t.http().get('/auth/me').set(as({ tenant: acme, token: s.token })).expect(200);
    expect(me.body).toMatchObject({ user: { email }, role: 'member' });
  });

  it('answers an accept without a password for a new account with 400 password_required and keeps the invitation open', async () => {
    const email = 'needs-password@mem-acme.test';
    await invite(owner, email, 'member').expect(201);
    const token = mail.tokenFor(email);
    expect((await accept(token).expect(400)).body.error).toBe('password_required');
    await accept(token, 'now-with-password').expect(200);
    expect((await accept(token, 'now-with-password').expect(404)).body.error).toBe('invitation_not_found');
  });

  it("adds an existing user's membership on accept without touching their password; a wrong password is 401", async () => {
    const other = await t.onboard('mem-other', 'bridge');
    await invite(owner, other.email, 'admin').expect(201);
    const token = mail.tokenFor(other.email);
    expect((await accept(token, 'not-their-password').expect(401)).body.error).toBe('invalid_credentials');
    const ok = await accept(token).expect(200);
    expect(ok.body).toMatchObject({ userId: other.userId, role: 'admin', userCreated: false });
    // Their one password opens both tenants.
    await login(t, acme.slug, other.email, other.password);
    await login(t, other.slug, other.email, other.password);
  });

  it('replaces the link when the same address is invited again; the old link no longer works', async () => {
    const email = 'twice@mem-acme.test';
    await invite(owner, email, 'member').expect(201);
    const first = mail.tokenFor(email);
    await invite(owner, email, 'admin').expect(201);
    const second = mail.tokenFor(email);
    expect(second).not.toBe(first);
    expect((await accept(first, PASSWORD).expect(404)).body.error).toBe('invitation_not_found');
    expect((await accept(second, PASSWORD).expect(200)).body.role).toBe('admin');
  });

  it('answers an expired invitation with 404 invitation_not_found', async () => {
    const email = 'late@mem-acme.test';
    await invite(owner, email, 'member').expect(201);
    await ownerQuery(`UPDATE control.invitations SET expires_at = now() - interval '1 second' WHERE email = $1`, [email]);
    expect((await accept(mail.tokenFor(email), PASSWORD).expect(404)).body.error).toBe('invitation_not_found');
  });

  it('lists the open invitations to admins, newest first, a page at a time, without accepted or expired ones', async () => {
    const { first } = await twoOwners('mem-pending');
    const emails = ['p1@mem-pending.test', 'p2@mem-pending.test', 'p3@mem-pending.test', 'done@mem-pending.test', 'old@mem-pending.test'];
    for (const email of emails) await invite(first, email, 'member').expect(201);
    await accept(mail.tokenFor('done@mem-pending.test'), PASSWORD).expect(200);
    await ownerQuery(`UPDATE control.invitations SET expires_at = now() - interval '1 second' WHERE email = $1`, ['old@mem-pending.test']);

    const page1 = await t.http().get('/members/invitations?limit=2').set(as(first)).expect(200);
    expect(page1.body.items.map((i: { email: string }) => i.email)).toEqual(['p3@mem-pending.test', 'p2@mem-pending.test']);
    expect(page1.body.items[0]).toEqual({ id: expect.any(String), email: 'p3@mem-pending.test', role: 'member', expiresAt: expect.any(String) });
    const page2 = await t.http().get(`/members/invitations?limit=2&cursor=${encodeURIComponent(page1.body.nextCursor)}`).set(as(first)).expect(200);
    expect(page2.body).toEqual({ items: [expect.objectContaining({ email: 'p1@mem-pending.test' })], nextCursor: null });
    // Another tenant's admin sees none of them.
    expect((await t.http().get('/members/invitations').set(as(owner)).expect(200)).body.items.map((i: { email: string }) => i.email)).not.toContain('p1@mem-pending.test');
  });

  it('withdraws an open invitation: its link stops working at once; foreign, accepted and unknown ids answer 404', async () => {
    const email = 'withdrawn@mem-acme.test';
    const invited = await invite(admin, email, 'member').expect(201);
    await t.http().delete(`/members/invitations/${invited.body.id}`).set(as(admin)).expect(204);
    expect((await accept(mail.tokenFor(email), PASSWORD).expect(404)).body.error).toBe('invitation_not_found');
    expect((await t.http().delete(`/members/invitations/${invited.body.id}`).set(as(admin)).expect(404)).body.error).toBe('invitation_not_found');

    const { first: otherOwner } = await twoOwners('mem-withdraw-other');
    const foreign = await invite(otherOwner, 'foreign@mem-withdraw-other.test', 'member').expect(201);
    expect((await t.http().delete(`/members/invitations/${foreign.body.id}`).set(as(owner)).expect(404)).body.error).toBe('invitation_not_found');
    // The foreign invitation is still open.
    await accept(mail.tokenFor('foreign@mem-withdraw-other.test'), PASSWORD).expect(200);
  });

  it("lets only owners withdraw an owner's invitation (403 forbidden_role naming owner), and answers a member 403 on both routes", async () => {
    const email = 'future-owner@mem-acme.test';
    const invited = await invite(owner, email, 'owner').expect(201);
    const refused = await t.http().delete(`/members/invitations/${invited.body.id}`).set(as(admin)).expect(403);
    expect(refused.body.error).toBe('forbidden_role');
    expect(refused.body.message).toContain('owner');
    await t.http().delete(`/members/invitations/${invited.body.id}`).set(as(owner)).expect(204);
    expect((await t.http().get('/members/invitations').set(as(member)).expect(403)).body.error).toBe('forbidden_role');
    expect((await t.http().delete(`/members/invitations/${invited.body.id}`).set(as(member)).expect(403)).body.error).toBe('forbidden_role');
  });

  it('answers an invitation of a current member with 409 membership_exists', async () => {
    expect((await invite(owner, member.email, 'admin').expect(409)).body.error).toBe('membership_exists');
  });

  it('answers 503 mail_not_sent when the mail server refuses, and keeps no invitation', async () => {
    const email = 'unlucky@mem-acme.test';
    mail.spy.mockRejectedValueOnce(new MailNotSentError('550 mailbox unavailable'));
    const res = await invite(owner, email, 'member').expect(503);
    expect(res.body.error).toBe('mail_not_sent');
    expect(res.headers['retry-after']).toBe('5');
    expect(await ownerQuery(`SELECT 1 FROM control.invitations WHERE email = $1`, [email])).toEqual([]);
  });

  it('lets only owners invite owners, make someone owner, or change or remove an owner (403 forbidden_role naming owner)', async () => {
    const answers = [
      await invite(admin, 'boss@mem-acme.test', 'owner'),
      await t.http().patch(`/members/${member.userId}`).set(as(admin)).send({ role: 'owner' }),
      await t.http().patch(`/members/${owner.userId}`).set(as(admin)).send({ role: 'member' }),
      await t.http().delete(`/members/${owner.userId}`).set(as(admin)),
    ];
    for (const res of answers) {
      expect([res.status, res.body.error]).toEqual([403, 'forbidden_role']);
      expect(res.body.message).toMatch(/needs the owner role/);
    }
  });

  it('refuses to demote or remove the last owner with 409 last_owner, and allows it once there is another', async () => {
    const { tenant, first } = await (async () => {
      const tenant = await t.onboard('mem-solo', 'pool');
      return { tenant, first: await signInOwner(t, tenant) };
    })();
    expect((await t.http().patch(`/members/${first.userId}`).set(as(first)).send({ role: 'admin' }).expect(409)).body.error).toBe('last_owner');
    expect((await t.http().delete(`/members/${first.userId}`).set(as(first)).expect(409)).body.error).toBe('last_owner');
    const second = await addMember(t, tenant, 'member');
    await t.http().patch(`/members/${second.userId}`).set(as(first)).send({ role: 'owner' }).expect(200);
    await t.http().patch(`/members/${first.userId}`).set(as(first)).send({ role: 'admin' }).expect(200);
    expect((await t.http().delete(`/members/${second.userId}`).set(as(second)).expect(409)).body.error).toBe('last_owner');
  });

  it('keeps an owner when two owners demote each other at the same moment: one wins, the other is refused', async () => {
    const { tenant, first, second } = await twoOwners('mem-race');
    // Make the two changes overlap for certain: a test transaction holds both owner rows, so each
    // request gets as far as it can (past any "is there another owner?" read) and waits, and both
    // are released together. Without the members lock both would then demote, leaving no owner.
    const blocker = new Client({ connectionString: t.db.ownerUrl });
    // Its own connection: pg_stat_activity is a snapshot taken once per transaction, so polling it
    // inside the blocker's transaction would see the same moment over and over.
    const watcher = new Client({ connectionString: t.db.ownerUrl });
    await Promise.all([blocker.connect(), watcher.connect()]);
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM control.memberships WHERE tenant_id = $1 AND role = 'owner' FOR UPDATE`, [tenant.id]);
      const racing = Promise.all([
        t.http().patch(`/members/${second.userId}`).set(as(first)).send({ role: 'member' }),
        t.http().patch(`/members/${first.userId}`).set(as(second)).send({ role: 'member' }),
      ]);
      const deadline = Date.now() + 20_000;
      for (;;) {
        const [{ waiting }] = (
          await watcher.query<{ waiting: number }>(
            `SELECT count(*)::int AS waiting FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = 'strata-control' AND wait_event_type = 'Lock'`,
          )
        ).rows;
        if (waiting >= 2) break;
        if (Date.now() > deadline) throw new Error(`only ${waiting} of the 2 changes reached the database`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await blocker.query('ROLLBACK');
      const answers = await racing;
      const statuses = answers.map((r) => `${r.status} ${r.body.error ?? ''}`.trim()).sort();
      // The loser finds itself demoted already (a member may not change roles) or the last owner.
      expect(statuses[0]).toBe('200');
      expect(['403 forbidden_role', '409 last_owner']).toContain(statuses[1]);
    } finally {
      await Promise.all([blocker.end(), watcher.end()]);
    }
    const owners = await ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM control.memberships WHERE tenant_id = $1 AND role = 'owner'`, [tenant.id]);
    expect(owners[0].n).toBe(1);
  });

  it('applies a role change to the very next request (registry invalidated, not waited out) and to the next refresh', async () => {
    const who = await addMember(t, acme, 'admin');
    await t.http().get('/members').set(as(who)).expect(200);
    const changed = await t.http().patch(`/members/${who.userId}`).set(as(owner)).send({ role: 'member' }).expect(200);
    expect(changed.body).toMatchObject({ userId: who.userId, email: who.email, role: 'member' });
    expect((await t.http().get('/members').set(as(who)).expect(403)).body.error).toBe('forbidden_role');
    expect((await t.http().get('/auth/me').set(as(who)).expect(200)).body.role).toBe('member');
    const refreshed = await t.http().post('/auth/refresh').set('X-Tenant', acme.slug).send({ refresh_token: who.refreshToken }).expect(200);
    expect(decodeJwt(refreshed.body.access_token).role).toBe('member');
  });

  it("removes a member: their token stops opening the tenant at once and their refresh tokens are revoked, their account stays", async () => {
    const who = await addMember(t, acme, 'member');
    await t.http().get('/projects').set(as(who)).expect(200);
    await t.http().delete(`/members/${who.userId}`).set(as(admin)).expect(204);
    expect((await t.http().get('/projects').set(as(who)).expect(404)).body.error).toBe('tenant_not_found');
    const refresh = await t.http().post('/auth/refresh').set('X-Tenant', acme.slug).send({ refresh_token: who.refreshToken }).expect(401);
    expect(refresh.body.error).toBe('invalid_refresh_token');
    expect(await ownerQuery(`SELECT 1 FROM control.users WHERE id = $1`, [who.userId])).toHaveLength(1);
    expect((await t.http().delete(`/members/${who.userId}`).set(as(admin)).expect(404)).body.error).toBe('member_not_found');
  });

  it('answers 400 invalid_id for a malformed user id and 400 validation_failed for an unknown role', async () => {
    expect((await t.http().patch('/members/nope').set(as(owner)).send({ role: 'member' }).expect(400)).body.error).toBe('invalid_id');
    expect((await t.http().patch(`/members/${member.userId}`).set(as(owner)).send({ role: 'king' }).expect(400)).body.error).toBe('validation_failed');
    expect((await invite(owner, 'not-an-email', 'member').expect(400)).body.error).toBe('validation_failed');
  });

  it("does not let a member of one tenant list another tenant's members (404), nor change or remove them by id", async () => {
    const tenants = [acme, await t.onboard('mem-bridge', 'bridge'), await t.onboard('mem-silo', 'silo')];
    const owned = tenants.map((tenant) => ({ tenant, memberUserId: tenant.userId }));
    for (const caller of tenants) {
      for (const victim of tenants) {
        if (caller === victim) continue;
        const res = await t.http().get('/members').set(as({ tenant: victim, token: caller.token }));
        expect([res.status, res.body.error]).toEqual([404, 'tenant_not_found']);
      }
    }
    const { pairs, checked, failures } = await probeForeignIds(t, owned, MEMBER_FOREIGN_ROUTES, 'member_not_found');
    expect(pairs.size).toBe(6);
    expect(checked).toBe(6 * MEMBER_FOREIGN_ROUTES.length);
    expect(failures).toEqual([]);
    // Every victim is still the owner of its tenant.
    for (const victim of tenants) {
      const rows = await ownerQuery<{ role: string }>(`SELECT role FROM control.memberships WHERE tenant_id = $1 AND user_id = $2`, [victim.id, victim.userId]);
      expect(rows).toEqual([{ role: 'owner' }]);
    }

    // Nor withdraw their invitations.
    const invited = [];
    for (const tenant of tenants) {
      const res = await t.http().post('/members/invitations').set(as({ tenant, token: tenant.token })).send({ email: `guest@${tenant.slug}.test`, role: 'member' }).expect(201);
      invited.push({ tenant, invitationId: res.body.id as string });
    }
    const withdrawals = await probeForeignIds(t, invited, INVITATION_FOREIGN_ROUTES, 'invitation_not_found');
    expect(withdrawals.checked).toBe(6 * INVITATION_FOREIGN_ROUTES.length);
    expect(withdrawals.failures).toEqual([]);
    for (const { tenant, invitationId } of invited) {
      const open = (await t.http().get('/members/invitations').set(as({ tenant, token: tenant.token })).expect(200)).body.items;
      expect(open.map((i: { id: string }) => i.id)).toContain(invitationId);
    }
  });
});
