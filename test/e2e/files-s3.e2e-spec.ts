import { parse as parseDisposition } from 'content-disposition';
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Response } from 'supertest';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { waitFor } from '../support/tenancy-fixture';
import { scanTenantStores } from '../support/tenant-store-scanner';

// s3rver ships no types; this is the part of it used here.
interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = require('s3rver') as S3rverConstructor;

const as = (who: OnboardedTenant) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });
const BUCKET = 'strata-files-e2e';
const REGION = 'eu-central-1';
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

const binary = (res: Response, done: (err: Error | null, body: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => done(null, Buffer.concat(chunks)));
};

describe('files over HTTP (S3 driver against s3rver)', () => {
  let t: TestApp;
  let dir: string;
  let s3rver: S3rverInstance;
  let s3: S3Client;
  let a: OnboardedTenant;
  let b: OnboardedTenant;

  const bucketKeys = async () => ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }))).Contents ?? []).map((o) => o.Key!).sort();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-files-s3-e2e-'));
    s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: BUCKET, configs: [] }] });
    const { port } = await s3rver.run();
    const endpoint = `http://127.0.0.1:${port}`;
    Object.assign(process.env, {
      FILES_DRIVER: 's3',
      S3_BUCKET: BUCKET,
      S3_REGION: REGION,
      S3_ENDPOINT: endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      FILES_URL_TTL_SECONDS: '90',
    });
    s3 = new S3Client({ region: REGION, endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    t = await startTestApp();
    a = await t.onboard('files-s3-a', 'pool');
    b = await t.onboard('files-s3-b', 'silo');
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    s3?.destroy();
    await s3rver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores the upload in the bucket under {tenantId}/files/{id}, with its content type', async () => {
    const created = await t.http().post('/files').set(as(a)).attach('file', Buffer.from('%PDF-1.7'), { filename: 'a.pdf', contentType: 'application/pdf' }).expect(201);
    const key = `${a.id}/files/${created.body.id}`;
    expect(await bucketKeys()).toContain(key);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head).toMatchObject({ ContentType: 'application/pdf', ContentLength: 8 });
  });

  it('hands out a presigned URL that downloads the bytes as an attachment without our credentials', async () => {
    const created = await t.http().post('/files').set(as(a)).attach('file', Buffer.from('presigned bytes'), { filename: 'März.txt', contentType: 'text/plain' }).expect(201);
    const before = Date.now();
    const res = await t.http().get(`/files/${created.body.id}/url`).set(as(a)).expect(200);
    expect(res.body).toEqual({ url: expect.any(String), expiresAt: expect.any(String) });
    const expiresAt = Date.parse(res.body.expiresAt);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 90_000 - 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 90_000);
    const url = new URL(res.body.url);
    expect(url.pathname).toBe(`/${BUCKET}/${a.id}/files/${created.body.id}`);
    const download = await fetch(url);
    expect(download.status).toBe(200);
    expect(await download.text()).toBe('presigned bytes');
    expect(download.headers.get('content-type')).toBe('text/plain');
    expect(parseDisposition(download.headers.get('content-disposition') ?? '')).toEqual({ type: 'attachment', parameters: { filename: 'März.txt' } });
  });

  it('streams the content from the bucket through the API', async () => {
    const created = await t.http().post('/files').set(as(b)).attach('file', Buffer.from('through the api'), { filename: 'b.txt', contentType: 'text/plain' }).expect(201);
    const content = await t.http().get(`/files/${created.body.id}/content`).set(as(b)).buffer(true).parse(binary).expect(200);
    expect(content.body.toString()).toBe('through the api');
    expect(content.headers['content-length']).toBe('15');
    expect(content.headers['x-content-type-options']).toBe('nosniff');
  });

  it('serves a Range of the content from the bucket (GetObject with Range) as 206, and If-None-Match as 304', async () => {
    const created = await t.http().post('/files').set(as(b)).attach('file', Buffer.from('0123456789'), { filename: 'r.txt', contentType: 'text/plain' }).expect(201);
    const path = `/files/${created.body.id}/content`;
    const part = await t.http().get(path).set(as(b)).set('range', 'bytes=2-5').buffer(true).parse(binary).expect(206);
    expect(part.body.toString()).toBe('2345');
    expect(part.headers['content-range']).toBe('bytes 2-5/10');
    expect(part.headers['content-length']).toBe('4');
    const tail = await t.http().get(path).set(as(b)).set('range', 'bytes=-3').buffer(true).parse(binary).expect(206);
    expect(tail.body.toString()).toBe('789');
    const past = await t.http().get(path).set(as(b)).set('range', 'bytes=10-');
    expect([past.status, past.headers['content-range'], past.body.error]).toEqual([416, 'bytes */10', 'range_not_satisfiable']);
    await t.http().get(path).set(as(b)).set('if-none-match', part.headers.etag).expect(304);
  });

  it("answers 404 to another tenant's id on the S3 driver too, and leaves its object alone", async () => {
    const created = await t.http().post('/files').set(as(a)).attach('file', Buffer.from('mine'), { filename: 'mine.txt', contentType: 'text/plain' }).expect(201);
    const id = created.body.id;
    for (const [method, path] of [
      ['get', `/files/${id}`],
      ['get', `/files/${id}/content`],
      ['get', `/files/${id}/url`],
      ['delete', `/files/${id}`],
    ] as const) {
      const res = await t.http()[method](path).set(as(b));
      expect([path, res.status, res.body.error]).toEqual([path, 404, 'file_not_found']);
    }
    expect(await bucketKeys()).toContain(`${a.id}/files/${id}`);
    const listed = (await t.http().get('/files?limit=100').set(as(b)).expect(200)).body.items.map((f: { id: string }) => f.id);
    expect(listed).not.toContain(id);
  });

  it('deletes the row and then the object', async () => {
    const created = await t.http().post('/files').set(as(a)).attach('file', Buffer.from('doomed'), { filename: 'd.txt', contentType: 'text/plain' }).expect(201);
    const key = `${a.id}/files/${created.body.id}`;
    expect(await bucketKeys()).toContain(key);
    await t.http().delete(`/files/${created.body.id}`).set(as(a)).expect(204);
    expect(await bucketKeys()).not.toContain(key);
    await t.http().get(`/files/${created.body.id}/url`).set(as(a)).expect(404);
  });

  it("removes every object of a deleted tenant from the bucket (offboarding), and no other tenant's", async () => {
    const doomed = await t.onboard('files-s3-doomed', 'bridge');
    for (const name of ['one.txt', 'two.txt', 'three.txt']) {
      await t.http().post('/files').set(as(doomed)).attach('file', Buffer.from(name), { filename: name, contentType: 'text/plain' }).expect(201);
    }
    const othersBefore = (await bucketKeys()).filter((k) => !k.startsWith(`${doomed.id}/`));
    const store = { s3, bucket: BUCKET };
    expect(await scanTenantStores(t, { id: doomed.id, slug: doomed.slug }, store)).toEqual(expect.arrayContaining([expect.stringMatching(/^s3 object /)]));
    await t.http().delete(`/admin/tenants/${doomed.id}`).set('authorization', `Bearer ${t.adminToken}`).expect(202);
    const report = await waitFor(
      async () => (await t.http().get(`/admin/tenants/${doomed.id}/deletion-report`).set('authorization', `Bearer ${t.adminToken}`)).body,
      (r) => r.status === 'deleted',
      30_000,
      100,
    );
    expect(report.stores.find((e: { step: string }) => e.step === 'files')).toMatchObject({ store: 'object storage (s3)', removed: { objects: 3 } });
    expect(await scanTenantStores(t, { id: doomed.id, slug: doomed.slug }, store)).toEqual([]);
    expect((await bucketKeys()).filter((k) => !k.startsWith(`${doomed.id}/`))).toEqual(othersBefore);
  });
});
