import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { Client } from 'pg';
import request from 'supertest';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { JwtService } from '#strata/auth';
import { MailNotSentError } from '#strata/mail';
import { createApp } from '../../apps/api/src/app.factory';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { addMember, asUser, mailbox, signInOwner, type SignedIn } from '../support/sessions';
import { waitFor } from '../support/tenancy-fixture';
import { verifyWith } from '../support/audit';

// Onboarding and scrypt logins take seconds on a loaded 2-core machine.
jest.setTimeout(60_000);

interface Entry {
  seq: number;
  action: string;
  actor: { type: string; id: string | null };
  onBehalfOf: string | null;
  tenantId: string | null;
  requestId: string | null;
  details: Record<string, any>;
}

describe('impersonation: an operator acts as a user, audited, limited, revocable at once', () => {
  let t: TestApp;
  let second: NestExpressApplication;
  let owner: Client;
  let mail: ReturnType<typeof mailbox>;
  let acme: OnboardedTenant;
  let acmeOwner: SignedIn;
  let member: SignedIn;

  beforeAll(async () => {
    t = await startTestApp({ registryCacheTtlMs: 60_000 });
    // A second instance on the same control plane: a revocation must hold there too, at once.
    second = await createApp(t.config, { logger: ['error', 'fatal'] });
    await second.init();
    owner = new Client({ connectionString: t.db.ownerUrl });
    await owner.connect();
    mail = mailbox(t);
    acme = await t.onboard('imp-acme', 'pool');
    acmeOwner = await signInOwner(t, acme);
    member = await addMember(t, acme, 'member');
  });
  afterAll(async () => {
    await owner?.end();
    await second?.close();
    await t?.close();
  });

  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });
  const start = (userId: string, reason = 'ticket #4711: totals look wrong', tenantId = acme.id, headers = admin()) =>
    t.http().post(`/admin/tenants/${tenantId}/impersonate`).set(headers).send({ userId, reason });
  const as = (token: string) => ({ 'X-Tenant': acme.slug, authorization: `Bearer ${token}` });
  const audit = async (query: Record<string, string>): Promise<Entry[]> =>
    (await t.http().get('/admin/audit').query({ limit: 100, ...query }).set(admin()).expect(200)).body.items;
  /** The `impersonation.request` entries of one impersonation, oldest first (written when each answer is over). */
  const requestsOf = async (impersonationId: string, atLeast: number): Promise<Entry[]> => {
    const found = await waitFor(
      async () => (await audit({ action: 'impersonation.request', tenantId: acme.id })).filter((e) => e.details.impersonationId === impersonationId),
      (es) => es.length >= atLeast,
      5000,
    );
    return found.reverse();
  };

  it("answers a token acting as the user (sub) for the operator (act), for 15 minutes at most, and mails the tenant's owners", async () => {
    const before = mail.sent().length;
    const res = await start(member.userId).expect(201);
    const claims = decodeJwt(res.body.access_token);
    expect(claims).toEqual(expect.objectContaining({ sub: member.userId, tid: acme.id, role: 'member', act: { sub: 'test-operator' }, imp: res.body.impersonation.id }));
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(900);
    expect(res.body.expires_in).toBeLessThanOrEqual(900);
    expect(res.body.impersonation).toEqual(expect.objectContaining({ tenantId: acme.id, userId: member.userId, operatorId: 'test-operator', revokedAt: null }));
    const notices = mail.sent().slice(before);
    expect(notices.map((m) => m.to)).toEqual([acme.email]);
    expect(notices[0].text).toContain('test-operator');
    expect(notices[0].text).toContain('ticket #4711');
    const [started] = await audit({ action: 'impersonation.started', tenantId: acme.id });
    expect(started).toEqual(
      expect.objectContaining({ actor: { type: 'operator', id: 'test-operator' }, onBehalfOf: member.userId, details: expect.objectContaining({ impersonationId: res.body.impersonation.id }) }),
    );
  });

  it('audits every request made with it, with both identities, method, route, status and request id', async () => {
    const { body } = await start(member.userId).expect(201);
    const me = await t.http().get('/auth/me').set(as(body.access_token)).set('x-request-id', 'imp-request-0001').expect(200);
    expect(me.body.user.id).toBe(member.userId);
    await t.http().post('/projects').set(as(body.access_token)).send({ name: 'made while impersonating' }).expect(201);
    await t.http().delete(`/projects/00000000-0000-4000-8000-000000000000`).set(as(body.access_token)).expect(403);
    const entries = await requestsOf(body.impersonation.id, 3);
    // Each is written when its answer is over, so two close together may land in either order.
    expect(entries.map((e) => [e.details.method, e.details.route, e.details.status]).sort()).toEqual([
      ['DELETE', '/projects/:id', 403],
      ['GET', '/auth/me', 200],
      ['POST', '/projects', 201],
    ]);
    for (const e of entries) expect(e).toEqual(expect.objectContaining({ actor: { type: 'operator', id: 'test-operator' }, onBehalfOf: member.userId, tenantId: acme.id }));
    expect(entries.find((e) => e.details.route === '/auth/me')?.requestId).toBe('imp-request-0001');
  });

  it('refuses password changes and member management with 403 impersonation_forbidden, whatever the role, and audits the refusals', async () => {
    const { body } = await start(acmeOwner.userId).expect(201);
    const token = body.access_token;
    const refused = [
      await t.http().post('/auth/password').set(as(token)).send({ currentPassword: acme.password, newPassword: 'taken-over-1234' }),
      await t.http().post('/members/invitations').set(as(token)).send({ email: 'mole@evil.test', role: 'owner' }),
      await t.http().patch(`/members/${member.userId}`).set(as(token)).send({ role: 'owner' }),
      await t.http().delete(`/members/${member.userId}`).set(as(token)),
      await t.http().delete(`/members/invitations/${randomUUID()}`).set(as(token)),
    ];
    expect(refused.map((r) => [r.status, r.body.error])).toEqual(Array(5).fill([403, 'impersonation_forbidden']));
    // The owner's own token still may.
    await t.http().get('/members').set(asUser(acmeOwner)).expect(200);
    const entries = await requestsOf(body.impersonation.id, 5);
    expect(entries.map((e) => e.details.status)).toEqual([403, 403, 403, 403, 403]);
  });

  it('revokes at once, on every instance: the next request answers 401 impersonation_ended, and it is no longer listed', async () => {
    const { body } = await start(member.userId).expect(201);
    const id = body.impersonation.id;
    await request(second.getHttpServer()).get('/projects').set(as(body.access_token)).expect(200);
    const listed = await t.http().get('/admin/impersonations').query({ tenantId: acme.id }).set(admin()).expect(200);
    expect(listed.body.items.map((i: { id: string }) => i.id)).toContain(id);

    await t.http().delete(`/admin/impersonations/${id}`).set(admin()).expect(204);
    for (const server of [t.app.getHttpServer(), second.getHttpServer()]) {
      const res = await request(server).get('/projects').set(as(body.access_token)).expect(401);
      expect(res.body.error).toBe('impersonation_ended');
    }
    const after = await t.http().get('/admin/impersonations').set(admin()).expect(200);
    expect(after.body.items.map((i: { id: string }) => i.id)).not.toContain(id);
    await t.http().delete(`/admin/impersonations/${id}`).set(admin()).expect(204);
    expect((await t.http().delete('/admin/impersonations/00000000-0000-4000-8000-000000000000').set(admin()).expect(404)).body.error).toBe('impersonation_not_found');
    const [revoked] = await audit({ action: 'impersonation.revoked', tenantId: acme.id });
    expect(revoked).toEqual(expect.objectContaining({ actor: { type: 'operator', id: 'test-operator' }, onBehalfOf: member.userId }));
  });

  it('ends when its time is up: past its row’s end it answers 401 impersonation_ended, past the token’s exp 401 token_expired', async () => {
    const { body } = await start(member.userId).expect(201);
    await owner.query(`UPDATE control.impersonations SET created_at = created_at - interval '16 minutes', expires_at = expires_at - interval '16 minutes' WHERE id = $1`, [body.impersonation.id]);
    expect((await t.http().get('/projects').set(as(body.access_token)).expect(401)).body.error).toBe('impersonation_ended');
    const expired = await t.app.get(JwtService).signImpersonationToken(
      { sub: member.userId, tid: acme.id, role: 'member', act: { sub: 'test-operator' }, imp: body.impersonation.id },
      new Date(Date.now() - 60_000),
    );
    expect((await t.http().get('/projects').set(as(expired.token)).expect(401)).body.error).toBe('token_expired');
  });

  it('never impersonates an operator: not the caller itself, nor anyone who acted as an operator', async () => {
    const self = await start(member.userId, 'checking my own view', acme.id, { authorization: `Bearer ${await t.app.get(JwtService).signPlatformToken(member.userId)}` });
    expect([self.status, self.body.error]).toEqual([403, 'operator_not_impersonable']);
    // An operator whose token subject is a user id acts once (audited as operator) ...
    const operatorUser = await addMember(t, acme, 'admin');
    const theirToken = await t.app.get(JwtService).signPlatformToken(operatorUser.userId);
    await start(member.userId, 'support shift', acme.id, { authorization: `Bearer ${theirToken}` }).expect(201);
    // ... and from then on cannot be impersonated by another operator.
    const other = await start(operatorUser.userId);
    expect([other.status, other.body.error]).toEqual([403, 'operator_not_impersonable']);
  });

  it('refuses unknown tenants and users who are not members with 404, and a missing reason with 400', async () => {
    expect((await start(member.userId, 'x-tenant', '00000000-0000-4000-8000-000000000000').expect(404)).body.error).toBe('tenant_not_found');
    expect((await start('00000000-0000-4000-8000-000000000000').expect(404)).body.error).toBe('member_not_found');
    expect((await t.http().post(`/admin/tenants/${acme.id}/impersonate`).set(admin()).send({ userId: member.userId }).expect(400)).body.error).toBe('validation_failed');
  });

  it("starts nothing when the owners' notice cannot be sent: 503, and the impersonation is revoked", async () => {
    mail.spy.mockRejectedValueOnce(new MailNotSentError('smtp down'));
    const res = await start(member.userId, 'while mail is down');
    expect([res.status, res.body.error]).toEqual([503, 'impersonation_not_notified']);
    const { rows } = await owner.query(`SELECT revoked_at, revoked_by FROM control.impersonations WHERE reason = 'while mail is down'`);
    expect(rows).toEqual([{ revoked_at: expect.any(Date), revoked_by: 'system:notice-not-sent' }]);
  });

  it('cannot be used on operator routes, and leaves the audit chain valid', async () => {
    const { body } = await start(member.userId).expect(201);
    expect((await t.http().get('/admin/audit').set(as(body.access_token)).expect(403)).body.error).toBe('platform_admin_required');
    expect((await verifyWith(owner)).broken).toBeNull();
  });
});
