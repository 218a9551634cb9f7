import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveKeyOf } from '#strata/exports';
import { contentOf, downloadArchive, exportAndWait, fillTenant, openArchive } from '../support/export-harness';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { uniqueSlug } from '../support/test-database';

// s3rver ships no types; this is the part of it used here.
interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = require('s3rver') as S3rverConstructor;

jest.setTimeout(90_000);

const BUCKET = 'strata-exports-e2e';
const REGION = 'eu-central-1';
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const ENV_KEYS = ['FILES_DRIVER', 'S3_BUCKET', 'S3_REGION', 'S3_ENDPOINT', 'S3_FORCE_PATH_STYLE', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'];

describe('tenant export and restore on the S3 driver (s3rver)', () => {
  let t: TestApp;
  let dir: string;
  let s3rver: S3rverInstance;
  let s3: S3Client;
  let tenant: OnboardedTenant;
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-exports-s3-'));
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
    });
    s3 = new S3Client({ region: REGION, endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    t = await startTestApp();
    tenant = await t.onboard('ex-s3', 'pool');
    await fillTenant(t, tenant);
  });
  afterAll(async () => {
    await t?.close();
    s3?.destroy();
    await s3rver?.close();
    rmSync(dir, { recursive: true, force: true });
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  });

  it('keeps the archive in the bucket under its platform key and restores rows and files (with their content types) into bridge', async () => {
    const exported = await exportAndWait(t, tenant.id);
    expect(exported.state).toBe('done');
    const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }))).Contents ?? []).map((o) => o.Key!);
    expect(keys).toContain(archiveKeyOf(exported.id));

    const slug = uniqueSlug('rs3-bridge');
    const created = await t.http().post('/admin/tenants').set('authorization', `Bearer ${t.adminToken}`).send({ slug, name: 'restored', tier: 'bridge', restoreFrom: exported.id }).expect(201);
    const again = await exportAndWait(t, created.body.id);
    expect(again.tables).toEqual(exported.tables);
    const [before, after] = await Promise.all([openArchive(await downloadArchive(t, exported.id)), openArchive(await downloadArchive(t, again.id))]);
    expect(contentOf(after.manifest)).toEqual(contentOf(before.manifest));
    // S3 keeps each object's type: the manifest carries it and the restore puts it back.
    expect(after.manifest.files.map((f) => f.contentType)).toEqual(before.manifest.files.map((f) => f.contentType));
    for (const f of before.manifest.files) {
      expect(f.contentType).toBe('text/plain');
      const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${created.body.id}/${f.key}` }));
      expect({ type: head.ContentType, size: head.ContentLength }).toEqual({ type: f.contentType, size: f.bytes });
    }
  });
});
