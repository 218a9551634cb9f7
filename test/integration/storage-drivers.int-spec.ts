import { parse as parseDisposition } from 'content-disposition';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import {
  LocalStorageDriver,
  resolveStorageOptions,
  S3StorageDriver,
  StorageKeyError,
  StorageObjectNotFoundError,
  StorageRangeError,
  TenantStorage,
  type StorageDriver,
} from '#strata/storage';
import { MissingTenantContextError, SYSTEM_TENANT } from '#strata/tenancy/platform';
import { createTenancyFixture, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';

jest.setTimeout(30_000);

// s3rver ships no types; this is the part of it used here.
interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = require('s3rver') as S3rverConstructor;

const BUCKET = 'strata-files';
const REGION = 'eu-central-1';
// s3rver's built-in account. It checks that the access key exists but not V4 signatures, so the
// presigned URL's signature is verified below, independently of the SDK that made it.
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** SigV4 query-string authentication, recomputed from the AWS spec with node:crypto: true when `url` is signed by `secret`. */
function presignedSignatureValid(url: URL, secret: string): boolean {
  const q = url.searchParams;
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || q.get('X-Amz-SignedHeaders') !== 'host') return false;
  const [, date, region, service, terminator] = (q.get('X-Amz-Credential') ?? '').split('/');
  const amzDate = q.get('X-Amz-Date') ?? '';
  const query = [...q.entries()]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = ['GET', url.pathname, query, `host:${url.host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const scope = [date, region, service, terminator].join('/');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), terminator);
  return createHmac('sha256', signingKey).update(stringToSign).digest('hex') === q.get('X-Amz-Signature');
}

describe('storage drivers under tenant contexts', () => {
  let fx: TenancyFixture;
  let a: TestTenant;
  let b: TestTenant;
  let base: string;
  let s3rver: S3rverInstance;
  let endpoint: string;
  const drivers: Record<'local' | 's3', StorageDriver> = {} as never;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'strata-storage-int-'));
    s3rver = new S3rver({
      address: '127.0.0.1',
      port: 0,
      silent: true,
      directory: join(base, 's3rver'),
      configureBuckets: [{ name: BUCKET, configs: [] }],
    });
    const { port } = await s3rver.run();
    endpoint = `http://127.0.0.1:${port}`;
    drivers.local = new LocalStorageDriver(join(base, 'local'));
    drivers.s3 = new S3StorageDriver({ bucket: BUCKET, region: REGION, endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    fx = await createTenancyFixture();
    a = await fx.onboard('pool', 'store-a');
    b = await fx.onboard('bridge', 'store-b');
  });
  afterAll(async () => {
    (drivers.s3 as S3StorageDriver | undefined)?.onApplicationShutdown();
    await s3rver?.close();
    await fx?.close();
    rmSync(base, { recursive: true, force: true });
  });

  const storageOf = (driver: StorageDriver) => new TenantStorage(driver, resolveStorageOptions({ urlTtlSeconds: 120 }, {}), fx.ctx);
  const as = <T>(tenant: TestTenant, fn: () => Promise<T>) => fx.ctx.run({ tenant: tenant.placement }, fn);

  /** Every stored full key, whichever driver holds it. */
  async function storedKeys(name: 'local' | 's3'): Promise<string[]> {
    if (name === 'local') {
      const root = join(base, 'local');
      if (!existsSync(root)) return [];
      return readdirSync(root, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
        .sort();
    }
    const out = await (drivers.s3 as S3StorageDriver).client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    return (out.Contents ?? []).map((o) => o.Key!).sort();
  }

  describe.each(['local', 's3'] as const)('%s driver', (name) => {
    it('round-trips put, head, get and delete under the tenant prefix', async () => {
      const storage = storageOf(drivers[name]);
      await as(a, () => storage.put(`rt/${name}`, Buffer.from('round trip'), { contentType: 'text/plain; charset=utf-8' }));
      expect(await storedKeys(name)).toContain(`${a.id}/rt/${name}`);
      const head = await as(a, () => storage.head(`rt/${name}`));
      expect(head.size).toBe(10);
      const got = await as(a, () => storage.get(`rt/${name}`));
      expect(await text(got.stream)).toBe('round trip');
      expect(got.size).toBe(10);
      // The local driver keeps bytes only; S3 keeps the (sanitized) type with the object.
      expect(got.contentType).toBe(name === 's3' ? 'text/plain; charset=utf-8' : undefined);
      await as(a, () => storage.delete(`rt/${name}`));
      await expect(as(a, () => storage.get(`rt/${name}`))).rejects.toThrow(StorageObjectNotFoundError);
      await expect(as(a, () => storage.head(`rt/${name}`))).rejects.toThrow(StorageObjectNotFoundError);
      await as(a, () => storage.delete(`rt/${name}`));
      expect(await storedKeys(name)).not.toContain(`${a.id}/rt/${name}`);
    });

    it('lists every key under a prefix, nested ones too, and nothing of another prefix', async () => {
      const storage = storageOf(drivers[name]);
      const keys = [`ls-${name}/b`, `ls-${name}/a/2`, `ls-${name}/a/10`];
      for (const key of keys) await as(a, () => storage.put(key, Buffer.from(key), { contentType: 'text/plain' }));
      await as(b, () => storage.put(`ls-${name}/b`, Buffer.from('other tenant'), { contentType: 'text/plain' }));
      // In no particular order (the drivers promise none): sorted here.
      expect((await drivers[name].list(`${a.id}/ls-${name}/`)).sort()).toEqual([`${a.id}/ls-${name}/a/10`, `${a.id}/ls-${name}/a/2`, `${a.id}/ls-${name}/b`]);
      expect(await drivers[name].list(`${a.id}/nothing-${name}/`)).toEqual([]);
      await expect(drivers[name].list(`${a.id}/ls-${name}`)).rejects.toThrow(/must end with/);
    });

    it('reads a byte range of the object (end clamped), and refuses one that starts past its end with StorageRangeError', async () => {
      const storage = storageOf(drivers[name]);
      await as(a, () => storage.put(`range/${name}`, Buffer.from('0123456789'), { contentType: 'text/plain' }));
      const part = await as(a, () => storage.get(`range/${name}`, { range: { start: 3, end: 6 } }));
      expect({ size: part.size, range: part.range, text: await text(part.stream) }).toEqual({ size: 10, range: { start: 3, end: 6 }, text: '3456' });
      const tail = await as(a, () => storage.get(`range/${name}`, { range: { start: 8, end: 99 } }));
      expect({ range: tail.range, text: await text(tail.stream) }).toEqual({ range: { start: 8, end: 9 }, text: '89' });
      const past = await as(a, () => storage.get(`range/${name}`, { range: { start: 10, end: 20 } })).catch((e: unknown) => e);
      expect(past).toBeInstanceOf(StorageRangeError);
      expect((past as StorageRangeError).size).toBe(10);
      // Another tenant's range read of the same relative key finds nothing.
      await expect(as(b, () => storage.get(`range/${name}`, { range: { start: 0, end: 1 } }))).rejects.toThrow(StorageObjectNotFoundError);
    });

    it('stores a stream of a known size', async () => {
      const storage = storageOf(drivers[name]);
      const body = Readable.from([Buffer.from('chunk one, '), Buffer.from('chunk two')]);
      await as(a, () => storage.put(`stream/${name}`, body, { contentType: 'text/plain', size: 20 }));
      expect(await text((await as(a, () => storage.get(`stream/${name}`))).stream)).toBe('chunk one, chunk two');
    });

    it('puts the same relative key of two tenants under two prefixes, each seeing only its own', async () => {
      const storage = storageOf(drivers[name]);
      await as(a, () => storage.put(`same/${name}`, Buffer.from('from A'), { contentType: 'text/plain' }));
      await as(b, () => storage.put(`same/${name}`, Buffer.from('from B'), { contentType: 'text/plain' }));
      await as(a, () => storage.put(`only-a/${name}`, Buffer.from('A only'), { contentType: 'text/plain' }));
      const keys = await storedKeys(name);
      expect(keys).toEqual(expect.arrayContaining([`${a.id}/same/${name}`, `${b.id}/same/${name}`, `${a.id}/only-a/${name}`]));
      expect(await text((await as(a, () => storage.get(`same/${name}`))).stream)).toBe('from A');
      expect(await text((await as(b, () => storage.get(`same/${name}`))).stream)).toBe('from B');
      await expect(as(b, () => storage.get(`only-a/${name}`))).rejects.toThrow(StorageObjectNotFoundError);
      // B deleting "its" only-a key removes nothing of A's.
      await as(b, () => storage.delete(`only-a/${name}`));
      expect(await storedKeys(name)).toContain(`${a.id}/only-a/${name}`);
      if (name === 'local') expect(readFileSync(join(base, 'local', b.id, 'same', name), 'utf8')).toBe('from B');
    });

    it('fails closed without a tenant context, with an actionable message, and writes nothing', async () => {
      const storage = storageOf(drivers[name]);
      const before = await storedKeys(name);
      const err = await storage.put(`orphan/${name}`, Buffer.from('x'), { contentType: 'text/plain' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MissingTenantContextError);
      expect((err as Error).message).toMatch(/no tenant context: storing an object needs a tenant.*tenantContext\.run/);
      await expect(storage.get(`orphan/${name}`)).rejects.toThrow(MissingTenantContextError);
      await expect(storage.delete(`orphan/${name}`)).rejects.toThrow(MissingTenantContextError);
      await expect(storage.presignedDownloadUrl(`orphan/${name}`)).rejects.toThrow(MissingTenantContextError);
      expect(await storedKeys(name)).toEqual(before);
    });

    it('refuses the system tenant and keys that could leave the prefix, before any I/O', async () => {
      const storage = storageOf(drivers[name]);
      const before = await storedKeys(name);
      await expect(fx.ctx.run({ tenant: SYSTEM_TENANT, system: true }, () => storage.put('x', Buffer.from('x'), { contentType: 'a/b' }))).rejects.toThrow(
        /system tenant has no stored objects/,
      );
      for (const key of [`../${b.id}/same/${name}`, `/${b.id}/same/${name}`, `..\\${b.id}\\same`, '%2e%2e/x']) {
        await expect(as(a, () => storage.put(key, Buffer.from('planted'), { contentType: 'a/b' }))).rejects.toThrow(StorageKeyError);
        await expect(as(a, () => storage.get(key))).rejects.toThrow(StorageKeyError);
      }
      expect(await storedKeys(name)).toEqual(before);
    });
  });

  it('presigns an S3 GET that serves the bytes, named and typed, under the tenant prefix', async () => {
    const storage = storageOf(drivers.s3);
    await as(a, () => storage.put('files/report', Buffer.from('%PDF-1.7 bytes'), { contentType: 'application/pdf' }));
    const before = Date.now();
    const presigned = await as(a, () => storage.presignedDownloadUrl('files/report', { filename: 'Bericht März.pdf', contentType: 'application/pdf' }));
    expect(presigned).not.toBeNull();
    const url = new URL(presigned!.url);
    expect(url.origin).toBe(endpoint);
    expect(url.pathname).toBe(`/${BUCKET}/${a.id}/files/report`);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('120');
    // expiresAt never outlives the signature (X-Amz-Date + X-Amz-Expires), and undershoots it by at most a second.
    const amzDate = url.searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z');
    const signedUntil = Date.parse(amzDate) + 120_000;
    expect(presigned!.expiresAt.getTime()).toBeLessThanOrEqual(signedUntil);
    expect(presigned!.expiresAt.getTime()).toBeGreaterThanOrEqual(signedUntil - 1000);
    expect(signedUntil).toBeGreaterThanOrEqual(before - 1000 + 120_000);

    expect(presignedSignatureValid(url, CREDENTIALS.secretAccessKey)).toBe(true);
    expect(presignedSignatureValid(url, 'another secret')).toBe(false);
    const forged = new URL(url);
    forged.pathname = `/${BUCKET}/${b.id}/files/report`;
    expect(presignedSignatureValid(forged, CREDENTIALS.secretAccessKey)).toBe(false);

    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('%PDF-1.7 bytes');
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(parseDisposition(res.headers.get('content-disposition') ?? '')).toEqual({ type: 'attachment', parameters: { filename: 'Bericht März.pdf' } });
  });

  it('has no presigned URLs on the local driver', async () => {
    const storage = storageOf(drivers.local);
    await as(a, () => storage.put('files/report', Buffer.from('x'), { contentType: 'application/pdf' }));
    expect(await as(a, () => storage.presignedDownloadUrl('files/report'))).toBeNull();
  });

  it('does not mistake a missing bucket for a missing object', async () => {
    const wrong = new S3StorageDriver({ bucket: 'no-such-bucket', region: REGION, endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    try {
      const err = await as(a, () => storageOf(wrong).get('files/report')).catch((e: unknown) => e);
      expect(err).not.toBeInstanceOf(StorageObjectNotFoundError);
      expect((err as Error).name).toBe('NoSuchBucket');
    } finally {
      wrong.onApplicationShutdown();
    }
  });

  it('refuses an S3 stream without a size instead of sending it unsized', async () => {
    const storage = storageOf(drivers.s3);
    await expect(as(a, () => storage.put('files/unsized', Readable.from([Buffer.from('x')]), { contentType: 'a/b' }))).rejects.toThrow(
      /S3 needs the size of a stream body up front/,
    );
  });
});
