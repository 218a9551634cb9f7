import { parse as parseDisposition } from 'content-disposition';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import type { Response } from 'supertest';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

import { as, probeForeignIds, type ForeignRoute } from '../support/cross-tenant';
import { FILE_FOREIGN_ROUTES } from '../support/cross-tenant-routes';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MISSING = '00000000-0000-4000-8000-000000000000';
// Small, so the 413 case sends little; the rest of the suite stays under it.
const MAX_BYTES = 64 * 1024;
const TIERS = ['pool', 'bridge', 'silo'] as const;

/** supertest collects a binary body as a Buffer only when told how. */
const binary = (res: Response, done: (err: Error | null, body: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => done(null, Buffer.concat(chunks)));
};

interface Owned {
  tenant: OnboardedTenant;
  fileId: string;
  bytes: Buffer;
}

describe('files over HTTP (local driver)', () => {
  let t: TestApp;
  let root: string;
  const owned: Owned[] = [];
  const firstOf = (tier: (typeof TIERS)[number]) => owned.find((o) => o.tenant.tier === tier)!.tenant;

  const upload = (who: OnboardedTenant, bytes: Buffer | string, filename = 'notes.txt', contentType = 'text/plain') =>
    t.http().post('/files').set(as(who)).attach('file', Buffer.from(bytes), { filename, contentType });

  /** Every stored object, as a path relative to the root. */
  const objectsOnDisk = (): string[] =>
    existsSync(root)
      ? readdirSync(root, { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
          .sort()
      : [];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'strata-files-e2e-'));
    // Read by StorageModule.forRoot() while the app is built.
    process.env.FILES_DRIVER = 'local';
    process.env.FILES_ROOT = root;
    process.env.FILES_MAX_BYTES = String(MAX_BYTES);
    t = await startTestApp();
    // Two tenants per tier, so same-tier pairs are covered as well as cross-tier ones.
    for (const tier of TIERS) {
      for (const n of [1, 2]) {
        const tenant = await t.onboard(`files-${tier}${n}`, tier);
        const bytes = Buffer.from(`secret of ${tenant.slug}`);
        const res = await upload(tenant, bytes, `${tier}${n}.txt`).expect(201);
        owned.push({ tenant, fileId: res.body.id, bytes });
      }
    }
  }, 90_000);
  afterAll(async () => {
    await t?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it.each(TIERS)('uploads, lists, describes, downloads and deletes a file on the %s tier', async (tier) => {
    const me = firstOf(tier);
    const created = await upload(me, 'hello, files', 'hello.txt', 'text/plain').expect(201);
    expect(created.body).toEqual({ id: expect.stringMatching(UUID), name: 'hello.txt', contentType: 'text/plain', size: 12, createdAt: expect.any(String) });
    const id = created.body.id;
    // The object lives under the tenant's prefix, at the key the id names.
    expect(readFileSync(join(root, me.id, 'files', id), 'utf8')).toBe('hello, files');

    const list = await t.http().get('/files').set(as(me)).expect(200);
    expect(list.body.items[0]).toEqual(created.body);
    await t.http().get(`/files/${id}`).set(as(me)).expect(200, created.body);

    const content = await t.http().get(`/files/${id}/content`).set(as(me)).buffer(true).parse(binary).expect(200);
    expect(content.body.toString('utf8')).toBe('hello, files');
    expect(content.headers['content-type']).toBe('text/plain');
    expect(content.headers['content-length']).toBe('12');
    expect(content.headers['content-disposition']).toBe('attachment; filename=hello.txt');
    expect(content.headers['x-content-type-options']).toBe('nosniff');

    // The local driver's own signed URL (files-download.e2e-spec.ts covers it in depth).
    const url = await t.http().get(`/files/${id}/url`).set(as(me)).expect(200);
    expect(url.body).toEqual({ url: expect.stringMatching(/\/files\/signed\?token=[\w-]+\.[\w-]+\.[\w-]+$/), expiresAt: expect.any(String) });

    await t.http().delete(`/files/${id}`).set(as(me)).expect(204);
    expect((await t.http().get(`/files/${id}`).set(as(me)).expect(404)).body.error).toBe('file_not_found');
    expect((await t.http().get(`/files/${id}/content`).set(as(me)).expect(404)).body.error).toBe('file_not_found');
    await t.http().delete(`/files/${id}`).set(as(me)).expect(404);
    expect(existsSync(join(root, me.id, 'files', id))).toBe(false);
  });

  it('keeps binary content byte for byte and a UTF-8 file name as sent', async () => {
    const me = firstOf('bridge');
    const bytes = randomBytes(50_000);
    const created = await upload(me, bytes, 'Quartalsbericht – März.pdf', 'application/pdf').expect(201);
    expect(created.body).toMatchObject({ name: 'Quartalsbericht – März.pdf', contentType: 'application/pdf', size: 50_000 });
    const content = await t.http().get(`/files/${created.body.id}/content`).set(as(me)).buffer(true).parse(binary).expect(200);
    expect(Buffer.compare(content.body, bytes)).toBe(0);
    expect(parseDisposition(content.headers['content-disposition'])).toEqual({ type: 'attachment', parameters: { filename: 'Quartalsbericht – März.pdf' } });
    expect(content.headers['content-disposition']).toContain(
      `filename*=UTF-8''Quartalsbericht%20%E2%80%93%20M%C3%A4rz.pdf`,
    );
  });

  it('records the claimed content type lower-cased and serves the file with it', async () => {
    const me = firstOf('pool');
    // Odd but valid RFC 9110 tokens pass, lower-cased (what does not parse: content-type.sanitizer.spec.ts).
    const odd = await upload(me, 'x', 'a.bin', 'Application/We|rd~').expect(201);
    expect(odd.body.contentType).toBe('application/we|rd~');
    // Unparseable part types never reach us: busboy reads them as RFC 7578's default, text/plain.
    expect((await upload(me, 'x', 'b.bin', 'definitely not a type').expect(201)).body.contentType).toBe('text/plain');
    const upper = await upload(me, 'x', 'a.png', 'IMAGE/PNG').expect(201);
    expect(upper.body.contentType).toBe('image/png');
    const served = await t.http().get(`/files/${odd.body.id}/content`).set(as(me)).expect(200);
    expect(served.headers['content-type']).toBe('application/we|rd~');
  });

  it('pages newest first with a keyset cursor', async () => {
    const me = await t.onboard('files-pager', 'pool');
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await upload(me, `page ${n}`, `p${n}.txt`).expect(201)).body.id);
    const first = await t.http().get('/files?limit=2').set(as(me)).expect(200);
    expect(first.body.items.map((f: { id: string }) => f.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await t.http().get(`/files?limit=2&cursor=${first.body.nextCursor}`).set(as(me)).expect(200);
    expect(second.body).toEqual({ items: [expect.objectContaining({ id: ids[0] })], nextCursor: null });
    expect((await t.http().get('/files?cursor=%25%25garbage').set(as(me)).expect(400)).body.error).toBe('invalid_cursor');
  }, 30_000);

  it('accepts a file of exactly FILES_MAX_BYTES and answers 413 file_too_large above, storing nothing', async () => {
    const me = firstOf('silo');
    await upload(me, Buffer.alloc(MAX_BYTES, 1), 'max.bin', 'application/octet-stream').expect(201);
    const before = objectsOnDisk();
    const listed = (await t.http().get('/files?limit=100').set(as(me)).expect(200)).body.items.length;
    const res = await upload(me, Buffer.alloc(MAX_BYTES + 1, 1), 'big.bin', 'application/octet-stream').expect(413);
    expect(res.body).toEqual({ statusCode: 413, error: 'file_too_large', message: `a file may be at most ${MAX_BYTES} bytes` });
    expect(objectsOnDisk()).toEqual(before);
    expect((await t.http().get('/files?limit=100').set(as(me)).expect(200)).body.items).toHaveLength(listed);
  });

  it('takes the stored object back when the row cannot be inserted, so nothing is half-written', async () => {
    const me = firstOf('pool');
    // A constraint only this test's name violates: the insert fails after the object was stored.
    const owner = new Client({ connectionString: t.db.ownerUrl });
    await owner.connect();
    try {
      await owner.query(`ALTER TABLE shared.files ADD CONSTRAINT files_test_refuses_doomed CHECK (name <> 'doomed.txt')`);
      const before = objectsOnDisk();
      const res = await upload(me, 'never kept', 'doomed.txt');
      // The database's CHECK refused the row (23514), after the object had been stored.
      expect([res.status, res.body.error]).toEqual([400, 'validation_failed']);
      expect(objectsOnDisk()).toEqual(before);
      const names = (await t.http().get('/files?limit=100').set(as(me)).expect(200)).body.items.map((f: { name: string }) => f.name);
      expect(names).not.toContain('doomed.txt');
    } finally {
      await owner.query(`ALTER TABLE shared.files DROP CONSTRAINT IF EXISTS files_test_refuses_doomed`);
      await owner.end();
    }
  });

  it.each([
    ['no body at all', (me: OnboardedTenant) => t.http().post('/files').set(as(me)), 'file_required'],
    ['a JSON body', (me: OnboardedTenant) => t.http().post('/files').set(as(me)).send({ name: 'x.txt' }), 'file_required'],
    ['the file in another field', (me: OnboardedTenant) => t.http().post('/files').set(as(me)).attach('upload', Buffer.from('x'), 'x.txt'), 'unexpected_file_field'],
    ['a text field only', (me: OnboardedTenant) => t.http().post('/files').set(as(me)).field('file', 'not a file'), 'invalid_multipart'],
    ['two files', (me: OnboardedTenant) => t.http().post('/files').set(as(me)).attach('file', Buffer.from('a'), 'a.txt').attach('file', Buffer.from('b'), 'b.txt'), 'invalid_multipart'],
    ['a bidi-override file name', (me: OnboardedTenant) => upload(me, 'MZ', 'invoice\u202Efdp.exe'), 'invalid_filename'],
  ])('answers 400 for %s and stores nothing', async (_case, send, code) => {
    const me = firstOf('bridge');
    const before = objectsOnDisk();
    const res = await send(me);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ statusCode: 400, error: code, message: expect.any(String) });
    expect(objectsOnDisk()).toEqual(before);
  });

  it('refuses an upload without credentials before reading it', async () => {
    const before = objectsOnDisk();
    const res = await t.http().post('/files').set('X-Tenant', firstOf('pool').slug).attach('file', Buffer.from('x'), 'x.txt');
    expect(res.status).toBe(401);
    expect(objectsOnDisk()).toEqual(before);
  });

  it.each([
    ['get', '/files/not-a-uuid'],
    ['get', '/files/123/content'],
    ['get', '/files/abc/url'],
    ['delete', '/files/abc'],
  ] as const)('answers %s %s with 400 invalid_id', async (method, path) => {
    const res = await t.http()[method](path).set(as(firstOf('pool')));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_id');
  });

  it.each([
    ['get', `/files/${MISSING}`],
    ['get', `/files/${MISSING}/content`],
    ['get', `/files/${MISSING}/url`],
    ['delete', `/files/${MISSING}`],
  ] as const)('answers %s %s with 404 file_not_found', async (method, path) => {
    const res = await t.http()[method](path).set(as(firstOf('pool')));
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('file_not_found');
  });

  describe('across tenants', () => {
    const routes: Array<ForeignRoute<{ fileId: string }>> = FILE_FOREIGN_ROUTES;

    it("answers 404 file_not_found to every route given another tenant's file id, on all 9 tier pairs", async () => {
      const { pairs, checked, failures } = await probeForeignIds(t, owned, routes, 'file_not_found');
      expect(pairs.size).toBe(9);
      expect(checked).toBe(30 * routes.length);
      expect(failures).toEqual([]);
    }, 120_000);

    it("never lists another tenant's file", async () => {
      for (const caller of owned) {
        const ids = (await t.http().get('/files?limit=100').set(as(caller.tenant)).expect(200)).body.items.map((f: { id: string }) => f.id);
        expect(ids).toContain(caller.fileId);
        for (const victim of owned) if (victim !== caller) expect(ids).not.toContain(victim.fileId);
      }
    });

    it('left every victim file in place, readable by its owner, under its own prefix only', async () => {
      const onDisk = objectsOnDisk();
      for (const o of owned) {
        const content = await t.http().get(`/files/${o.fileId}/content`).set(as(o.tenant)).buffer(true).parse(binary).expect(200);
        expect(Buffer.compare(content.body, o.bytes)).toBe(0);
        expect(readFileSync(join(root, o.tenant.id, 'files', o.fileId))).toEqual(o.bytes);
        expect(onDisk.filter((p) => p.endsWith(o.fileId))).toEqual([join(o.tenant.id, 'files', o.fileId)]);
      }
      // Nothing outside a tenant prefix, and no temporary file left half-written.
      for (const p of onDisk) expect(p).toMatch(new RegExp(`^${UUID.source.slice(1, -1)}/files/${UUID.source.slice(1, -1)}$`));
    });
  });
});
