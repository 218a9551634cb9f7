import { parse as parseDisposition } from 'content-disposition';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { as } from '../support/cross-tenant';
import { binary, pathOf, signAs, uploadFile } from '../support/files-fixture';
import { sleep } from '../support/tenancy-fixture';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

const TIERS = ['pool', 'bridge', 'silo'] as const;
const SIZE = 10_000;

interface Owned {
  tenant: OnboardedTenant;
  fileId: string;
  bytes: Buffer;
}

/** Signed URLs, Range and ETag on the local driver: what `<img src>`, players and resumable downloads need in development. */
describe('file downloads (local driver): signed URLs, ranges, entity tags', () => {
  let t: TestApp;
  let root: string;
  const owned: Owned[] = [];
  const ownedOn = (tier: (typeof TIERS)[number]) => owned.find((o) => o.tenant.tier === tier)!;

  /** `GET /files/:id/url` as the owner: the signed URL and its lifetime. */
  const signedUrl = async (o: Owned): Promise<{ url: string; expiresAt: string }> => (await t.http().get(`/files/${o.fileId}/url`).set(as(o.tenant)).expect(200)).body;
  /** GET of a path with no credentials and no tenant on the wire. */
  const anonymous = (path: string) => t.http().get(path).buffer(true).parse(binary);

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'strata-files-download-e2e-'));
    // Read by StorageModule.forRoot() while the app is built.
    Object.assign(process.env, { FILES_DRIVER: 'local', FILES_ROOT: root, FILES_URL_TTL_SECONDS: '120' });
    t = await startTestApp();
    // Two tenants per tier, so same-tier pairs are covered as well as cross-tier ones.
    for (const tier of TIERS) {
      for (const n of [1, 2]) {
        const tenant = await t.onboard(`dl-${tier}${n}`, tier);
        const bytes = randomBytes(SIZE);
        const res = await uploadFile(t, tenant, bytes, `${tier} photo.png`, 'image/png').expect(201);
        owned.push({ tenant, fileId: res.body.id, bytes });
      }
    }
  }, 90_000);
  afterAll(async () => {
    await t?.close();
    rmSync(root, { recursive: true, force: true });
  });

  describe('signed URLs', () => {
    it.each(TIERS)('GET /files/:id/url on the %s tier answers a URL that serves the bytes without credentials until expiresAt', async (tier) => {
      const o = ownedOn(tier);
      const before = Date.now();
      const { url, expiresAt } = await signedUrl(o);
      const parsed = new URL(url);
      // The origin the request came to, the public route, the token in the query (never in logged paths).
      expect(parsed.pathname).toBe('/files/signed');
      expect([...parsed.searchParams.keys()]).toEqual(['token']);
      expect(parsed.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(Date.parse(expiresAt)).toBeGreaterThanOrEqual(before + 120_000 - 1000);
      expect(Date.parse(expiresAt)).toBeLessThanOrEqual(Date.now() + 120_000);

      const res = await anonymous(pathOf(url)).expect(200);
      expect(Buffer.compare(res.body, o.bytes)).toBe(0);
      expect(res.headers['content-type']).toBe('image/png');
      expect(res.headers['content-length']).toBe(String(SIZE));
      expect(parseDisposition(res.headers['content-disposition'])).toEqual({ type: 'attachment', parameters: { filename: `${tier} photo.png` } });
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['cache-control']).toBe('private, no-cache');
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(res.headers.etag).toBe(`"${o.fileId}-${SIZE}"`);
    });

    it('answers a tampered URL with 403 signed_url_invalid and never a 500, whatever part was changed', async () => {
      const [victim, attacker] = [ownedOn('pool'), ownedOn('silo')];
      const token = new URL((await signedUrl(attacker)).url).searchParams.get('token')!;
      const [header, payload, signature] = token.split('.');
      // The attacker's genuine token with the victim's tenant and file ids put in, signature kept.
      const retargeted = Buffer.from(JSON.stringify({ ...decodeJwt(token), tid: victim.tenant.id, res: victim.fileId })).toString('base64url');
      const flipped = signature.slice(0, -2) + (signature.at(-2) === 'A' ? 'B' : 'A') + signature.at(-1);
      const tampered = [`${header}.${retargeted}.${signature}`, `${header}.${payload}.${flipped}`, token.slice(0, -4), `${token}AA`, 'not-a-token', 'x'.repeat(4096)];
      for (const bad of tampered) {
        const res = await t.http().get(`/files/signed?token=${encodeURIComponent(bad)}`);
        expect([res.status, res.body]).toEqual([403, { statusCode: 403, error: 'signed_url_invalid', message: expect.any(String) }]);
      }
      for (const path of ['/files/signed', '/files/signed?token=', `/files/signed?token=${token}&token=${token}`]) {
        expect([path, (await t.http().get(path)).status]).toEqual([path, 403]);
      }
    });

    it('answers an expired URL with 403 signed_url_expired', async () => {
      const o = ownedOn('bridge');
      // Lifetimes are whole seconds from the current second, so a 1 s token may live only a few
      // milliseconds (it failed so on a slow CI machine); 3 s leaves at least 2 s for the first GET.
      const { token, expiresAt } = await signAs(t, o.tenant, o.fileId, 3);
      expect(expiresAt.getTime() - Date.now()).toBeGreaterThan(1500);
      await anonymous(`/files/signed?token=${token}`).expect(200);
      await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 1100);
      const res = await t.http().get(`/files/signed?token=${token}`);
      expect([res.status, res.body.error]).toEqual([403, 'signed_url_expired']);
    });

    it("never serves another tenant's file: a validly signed token naming a foreign file id answers 404 on all 9 tier pairs", async () => {
      const failures: string[] = [];
      const pairs = new Set<string>();
      for (const holder of owned) {
        for (const victim of owned) {
          if (holder === victim) continue;
          pairs.add(`${holder.tenant.tier}->${victim.tenant.tier}`);
          // Only a holder of the server secret could make this token: the tenant in it is the holder's.
          const { token } = await signAs(t, holder.tenant, victim.fileId);
          const res = await t.http().get(`/files/signed?token=${token}`);
          if (res.status !== 404 || res.body.error !== 'file_not_found') failures.push(`${holder.tenant.tier}->${victim.tenant.tier}: ${res.status} ${JSON.stringify(res.body)}`);
        }
      }
      expect(pairs.size).toBe(9);
      expect(failures).toEqual([]);
    });

    it("takes the tenant from the token only: another tenant's wire claim and token, or its path prefix, change nothing", async () => {
      const [mine, other] = [ownedOn('pool'), ownedOn('bridge')];
      const path = pathOf((await signedUrl(mine)).url);
      const withOthersCredentials = await t.http().get(path).set(as(other.tenant)).buffer(true).parse(binary).expect(200);
      expect(Buffer.compare(withOthersCredentials.body, mine.bytes)).toBe(0);
      const underOthersPrefix = await anonymous(`/t/${other.tenant.slug}${path}`).expect(200);
      expect(Buffer.compare(underOthersPrefix.body, mine.bytes)).toBe(0);
    });

    it('stops serving a file as soon as it is deleted, while its URL is still within its lifetime', async () => {
      const me = ownedOn('silo').tenant;
      const created = await uploadFile(t, me, 'short-lived', 'gone.txt').expect(201);
      const { url } = (await t.http().get(`/files/${created.body.id}/url`).set(as(me)).expect(200)).body;
      await anonymous(pathOf(url)).expect(200);
      await t.http().delete(`/files/${created.body.id}`).set(as(me)).expect(204);
      const res = await t.http().get(pathOf(url));
      expect([res.status, res.body.error]).toEqual([404, 'file_not_found']);
    });

    it("stops serving a suspended tenant's files (404 tenant_not_found), and serves them again once it is active", async () => {
      const me = await t.onboard('dl-suspend', 'pool');
      const created = await uploadFile(t, me, 'suspended bytes', 's.txt').expect(201);
      const { url } = (await t.http().get(`/files/${created.body.id}/url`).set(as(me)).expect(200)).body;
      const admin = (action: string) => t.http().post(`/admin/tenants/${me.id}/${action}`).set('authorization', `Bearer ${t.adminToken}`).expect(200);
      await admin('suspend');
      const res = await t.http().get(pathOf(url));
      expect([res.status, res.body.error]).toEqual([404, 'tenant_not_found']);
      await admin('activate');
      await anonymous(pathOf(url)).expect(200);
    });

    it('a bearer token is not a download token, nor a download token a bearer token', async () => {
      const o = ownedOn('pool');
      const bearer = await t.http().get(`/files/signed?token=${o.tenant.token}`);
      expect([bearer.status, bearer.body.error]).toEqual([403, 'signed_url_invalid']);
      const { token } = await signAs(t, o.tenant, o.fileId);
      const asBearer = await t.http().get('/files').set({ 'X-Tenant': o.tenant.slug, authorization: `Bearer ${token}` });
      expect(asBearer.status).toBe(401);
    });
  });

  describe.each([
    ['GET /files/:id/content', async (o: Owned) => ({ path: `/files/${o.fileId}/content`, headers: as(o.tenant) as Record<string, string> })],
    ['the signed URL', async (o: Owned) => ({ path: pathOf((await signedUrl(o)).url), headers: {} as Record<string, string> })],
  ])('ranges and entity tags on %s', (_route, target) => {
    const get = async (o: Owned, extra: Record<string, string> = {}) => {
      const { path, headers } = await target(o);
      return t.http().get(path).set({ ...headers, ...extra }).buffer(true).parse(binary);
    };

    it.each<[string, number, number]>([
      ['bytes=0-99', 0, 99],
      ['bytes=9000-', 9000, SIZE - 1],
      ['bytes=-500', SIZE - 500, SIZE - 1],
      ['bytes=9990-20000', 9990, SIZE - 1],
    ])('answers Range %s with 206, Content-Range and exactly those bytes', async (range, start, end) => {
      const o = ownedOn('bridge');
      const res = await get(o, { range });
      expect(res.status).toBe(206);
      expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${SIZE}`);
      expect(res.headers['content-length']).toBe(String(end - start + 1));
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(res.headers.etag).toBe(`"${o.fileId}-${SIZE}"`);
      expect(Buffer.compare(res.body, o.bytes.subarray(start, end + 1))).toBe(0);
    });

    it('answers a range past the end with 416 range_not_satisfiable and Content-Range bytes */size', async () => {
      const res = await get(ownedOn('silo'), { range: `bytes=${SIZE}-` });
      expect(res.status).toBe(416);
      expect(res.headers['content-range']).toBe(`bytes */${SIZE}`);
      expect(JSON.parse(res.body.toString())).toEqual({ statusCode: 416, error: 'range_not_satisfiable', message: expect.stringContaining(`${SIZE} bytes`) });
    });

    it('answers several ranges, a malformed one, or a Range under a stale If-Range with 200 and the whole file', async () => {
      const o = ownedOn('pool');
      const cases: Array<Record<string, string>> = [{ range: 'bytes=0-9,100-109' }, { range: 'bytes=abc' }, { range: 'bytes=0-9', 'if-range': '"an-older-version"' }];
      for (const extra of cases) {
        const res = await get(o, extra);
        expect([extra, res.status, res.headers['content-length']]).toEqual([extra, 200, String(SIZE)]);
        expect(Buffer.compare(res.body, o.bytes)).toBe(0);
      }
      expect((await get(o, { range: 'bytes=0-9', 'if-range': `"${o.fileId}-${SIZE}"` })).status).toBe(206);
    });

    it('answers If-None-Match with the ETag it sent with 304 and no body, and another tag with 200', async () => {
      const o = ownedOn('silo');
      const first = await get(o);
      expect(first.status).toBe(200);
      const etag = first.headers.etag;
      for (const ifNoneMatch of [etag, `W/${etag}`, `"x", ${etag}`]) {
        const again = await get(o, { 'if-none-match': ifNoneMatch });
        expect([ifNoneMatch, again.status, again.body.length]).toEqual([ifNoneMatch, 304, 0]);
        expect(again.headers.etag).toBe(etag);
      }
      expect((await get(o, { 'if-none-match': '"something-else"' })).status).toBe(200);
    });
  });

  it('answers HEAD with the headers of the GET and no body', async () => {
    const o = ownedOn('pool');
    const res = await t.http().head(pathOf((await signedUrl(o)).url));
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(SIZE));
    expect(res.headers.etag).toBe(`"${o.fileId}-${SIZE}"`);
    expect(res.body).toEqual({});
  });

  it('still answers 404 file_not_found and 400 invalid_id on the bearer routes around the public one', async () => {
    const me = ownedOn('pool').tenant;
    expect((await t.http().get('/files/signed-ish').set(as(me))).body.error).toBe('invalid_id');
    expect((await t.http().delete('/files/signed').set(as(me))).body.error).toBe('invalid_id');
    expect((await t.http().get('/files').set('X-Tenant', me.slug).expect(401)).body.error).toBe('unauthenticated');
  });
});
