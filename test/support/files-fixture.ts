import type { Response } from 'supertest';
import { TenantRegistry } from '#strata/control-plane';
import { SignedDownloads, type SignedDownload } from '#strata/storage';
import { placementOf, TenantContext } from '#strata/tenancy/platform';
import { as } from './cross-tenant';
import type { OnboardedTenant, TestApp } from './test-app';

/** supertest collects a binary body as a Buffer only when told how: `.buffer(true).parse(binary)`. */
export const binary = (res: Response, done: (err: Error | null, body: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => done(null, Buffer.concat(chunks)));
};

/** `POST /files` as `who`. */
export const uploadFile = (t: TestApp, who: OnboardedTenant, bytes: Buffer | string, filename = 'notes.txt', contentType = 'text/plain') =>
  t.http().post('/files').set(as(who)).attach('file', Buffer.from(bytes), { filename, contentType });

/** Path and query of an absolute URL: what supertest requests against the app under test. */
export const pathOf = (url: string): string => {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
};

/**
 * A download token signed by the app's own SignedDownloads, as `tenant` would get it, for any
 * `resource` (a foreign file id, say) and lifetime: what only a holder of the server secret can make.
 */
export async function signAs(t: TestApp, tenant: OnboardedTenant, resource: string, expiresInSeconds?: number): Promise<SignedDownload> {
  const record = await t.app.get(TenantRegistry).findById(tenant.id);
  if (!record) throw new Error(`tenant ${tenant.slug} is not in the registry`);
  return t.app
    .get(TenantContext)
    .run({ tenant: placementOf(record) }, () => t.app.get(SignedDownloads).issue('files', resource, expiresInSeconds ? { expiresInSeconds } : {}));
}
