import { randomBytes } from 'node:crypto';
import { MAIL_SENDER, type MailSender, type OutboundMail } from '#strata/mail';
import type { MembershipRole } from '#strata/control-plane';
import type { OnboardedTenant, TestApp } from './test-app';

export const PASSWORD = 'correct-horse-battery';

/** A user of a tenant with a live login: its access and refresh tokens. */
export interface SignedIn {
  tenant: OnboardedTenant;
  userId: string;
  email: string;
  password: string;
  role: MembershipRole;
  token: string;
  refreshToken: string;
}

/** POST /auth/login on `slug`; throws unless it answers 200. */
export async function login(t: TestApp, slug: string, email: string, password: string): Promise<{ token: string; refreshToken: string }> {
  const res = await t.http().post('/auth/login').set('X-Tenant', slug).send({ email, password });
  if (res.status !== 200) throw new Error(`login to ${slug} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { token: res.body.access_token, refreshToken: res.body.refresh_token };
}

/** The tenant's onboarded owner, logged in afresh (a session of its own). */
export async function signInOwner(t: TestApp, tenant: OnboardedTenant): Promise<SignedIn> {
  const s = await login(t, tenant.slug, tenant.email, tenant.password);
  return { tenant, userId: tenant.userId, email: tenant.email, password: tenant.password, role: 'owner', ...s };
}

/** A new user added to `tenant` with `role` through the admin API, logged in. */
export async function addMember(t: TestApp, tenant: OnboardedTenant, role: MembershipRole): Promise<SignedIn> {
  const email = `${role}-${randomBytes(3).toString('hex')}@${tenant.slug}.test`;
  const res = await t
    .http()
    .post(`/admin/tenants/${tenant.id}/users`)
    .set('authorization', `Bearer ${t.adminToken}`)
    .send({ email, password: PASSWORD, role });
  if (res.status !== 201) throw new Error(`adding a ${role} to ${tenant.slug} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { tenant, userId: res.body.id, email, password: PASSWORD, role, ...(await login(t, tenant.slug, email, PASSWORD)) };
}

/** The headers of a request as `who`, in its tenant. */
export const asUser = (who: { tenant: { slug: string }; token: string }) => ({ 'X-Tenant': who.tenant.slug, authorization: `Bearer ${who.token}` });

/**
 * Records what the app's mail port is handed, still passing each message on to the configured
 * driver (the log driver in tests): the test reads invitation links as an invitee reads its mail.
 */
export function mailbox(t: TestApp) {
  const sender = t.app.get<MailSender>(MAIL_SENDER, { strict: false });
  const spy = jest.spyOn(sender, 'send');
  const sent = (): OutboundMail[] => spy.mock.calls.map(([m]) => m);
  return {
    spy,
    sent,
    /** The invitation token in the newest message to `to` (the link is AUTH_INVITATION_URL with {token}). */
    tokenFor(to: string): string {
      const mail = sent().filter((m) => m.to === to).at(-1);
      const token = mail && /#token=([A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
      if (!token) throw new Error(`no invitation mail to ${to}`);
      return token;
    },
  };
}
