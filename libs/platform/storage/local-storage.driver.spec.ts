import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { LocalStorageDriver } from './local-storage.driver';
import { StorageKeyError, StorageObjectNotFoundError, StorageRangeError } from './storage.errors';

const T = '3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60';

/** Every file under `dir`, relative, sorted. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('local storage driver', () => {
  let base: string;
  let root: string;
  let outside: string;
  let driver: LocalStorageDriver;

  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'strata-local-driver-'));
    root = join(base, 'root');
    outside = join(base, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'outside the root');
    driver = new LocalStorageDriver(root);
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('round-trips a buffer and a stream, sized from the file itself', async () => {
    await driver.put(`${T}/files/a`, Buffer.from('hello'), { contentType: 'text/plain' });
    await driver.put(`${T}/files/b`, Readable.from([Buffer.from('str'), Buffer.from('eam')]), { contentType: 'text/plain', size: 6 });
    const a = await driver.get(`${T}/files/a`);
    expect(await text(a.stream)).toBe('hello');
    expect(a.size).toBe(5);
    expect(await driver.head(`${T}/files/b`)).toEqual({ size: 6 });
    expect(await text((await driver.get(`${T}/files/b`)).stream)).toBe('stream');
    expect(tree(root)).toEqual([`${T}/files/a`, `${T}/files/b`]);
  });

  it('reads a byte range, clamping its end to the object, and says which bytes it sends', async () => {
    await driver.put(`${T}/files/r`, Buffer.from('0123456789'), { contentType: 'text/plain' });
    const mid = await driver.get(`${T}/files/r`, { range: { start: 2, end: 4 } });
    expect({ size: mid.size, range: mid.range, text: await text(mid.stream) }).toEqual({ size: 10, range: { start: 2, end: 4 }, text: '234' });
    const tail = await driver.get(`${T}/files/r`, { range: { start: 7, end: 1_000 } });
    expect({ range: tail.range, text: await text(tail.stream) }).toEqual({ range: { start: 7, end: 9 }, text: '789' });
  });

  it('refuses a range that starts at or past the end with StorageRangeError carrying the size', async () => {
    await driver.put(`${T}/files/r`, Buffer.from('0123456789'), { contentType: 'text/plain' });
    const err = await driver.get(`${T}/files/r`, { range: { start: 10, end: 12 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageRangeError);
    expect((err as StorageRangeError).size).toBe(10);
    await driver.put(`${T}/files/empty`, Buffer.alloc(0), { contentType: 'text/plain' });
    await expect(driver.get(`${T}/files/empty`, { range: { start: 0, end: 0 } })).rejects.toBeInstanceOf(StorageRangeError);
  });

  it('replaces an object whole and leaves no temporary file behind', async () => {
    await driver.put(`${T}/k`, Buffer.from('old'), { contentType: 'x/y' });
    await driver.put(`${T}/k`, Buffer.from('new and longer'), { contentType: 'x/y' });
    expect(readFileSync(join(root, T, 'k'), 'utf8')).toBe('new and longer');
    expect(tree(root)).toEqual([`${T}/k`]);
  });

  it('stores nothing when the body does not have the announced size', async () => {
    await expect(driver.put(`${T}/k`, Buffer.from('four'), { contentType: 'x/y', size: 5 })).rejects.toThrow(/got 4 bytes, expected 5/);
    expect(tree(root)).toEqual([]);
  });

  it('stores nothing when the body stream fails midway', async () => {
    const failing = new Readable({
      read() {
        this.push('partial');
        this.destroy(new Error('client went away'));
      },
    });
    await expect(driver.put(`${T}/k`, failing, { contentType: 'x/y' })).rejects.toThrow('client went away');
    expect(tree(root)).toEqual([]);
  });

  it.each(['../outside/secret', `${T}/../../outside/secret`, '..\\outside\\secret', '/etc/passwd', '/tmp/x', '%2e%2e/outside/secret', '.hidden'])(
    'refuses to escape the root through %p for every operation',
    async (key) => {
      await expect(driver.put(key, Buffer.from('pwned'), { contentType: 'x/y' })).rejects.toThrow(StorageKeyError);
      await expect(driver.get(key)).rejects.toThrow(StorageKeyError);
      await expect(driver.head(key)).rejects.toThrow(StorageKeyError);
      await expect(driver.delete(key)).rejects.toThrow(StorageKeyError);
      expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('outside the root');
      expect(tree(outside)).toEqual(['secret']);
    },
  );

  it('refuses to follow a symlink planted under the root to the outside', async () => {
    mkdirSync(join(root, T), { recursive: true });
    symlinkSync(outside, join(root, T, 'link'));
    symlinkSync(join(outside, 'secret'), join(root, T, 'file-link'));
    await expect(driver.put(`${T}/link/planted`, Buffer.from('pwned'), { contentType: 'x/y' })).rejects.toThrow(StorageKeyError);
    await expect(driver.get(`${T}/link/secret`)).rejects.toThrow(StorageKeyError);
    await expect(driver.get(`${T}/file-link`)).rejects.toThrow(StorageKeyError);
    await expect(driver.delete(`${T}/link/secret`)).rejects.toThrow(StorageKeyError);
    expect(tree(outside)).toEqual(['secret']);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('outside the root');
  });

  it('answers StorageObjectNotFoundError for a missing object or a directory', async () => {
    await driver.put(`${T}/dir/file`, Buffer.from('x'), { contentType: 'x/y' });
    await expect(driver.get(`${T}/missing`)).rejects.toThrow(StorageObjectNotFoundError);
    await expect(driver.head(`${T}/dir`)).rejects.toThrow(StorageObjectNotFoundError);
    await expect(driver.get(`${T}/dir/file/below-a-file`)).rejects.toThrow(StorageObjectNotFoundError);
  });

  it("lists and deletes every object under a tenant's prefix, and nothing else", async () => {
    const other = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
    await driver.put(`${T}/files/a`, Buffer.from('a'), { contentType: 'text/plain' });
    await driver.put(`${T}/exports/x/y`, Buffer.from('y'), { contentType: 'text/plain' });
    await driver.put(`${other}/files/a`, Buffer.from('b'), { contentType: 'text/plain' });
    expect((await driver.list(`${T}/`)).sort()).toEqual([`${T}/exports/x/y`, `${T}/files/a`]);
    expect(await driver.deletePrefix(`${T}/`)).toBe(2);
    expect(await driver.list(`${T}/`)).toEqual([]);
    expect(await driver.deletePrefix(`${T}/`)).toBe(0);
    expect(tree(root)).toEqual([join(other, 'files', 'a')]);
  });

  it('refuses a prefix that does not end with / or leads out of the root', async () => {
    await expect(driver.list(T)).rejects.toThrow(StorageKeyError);
    await expect(driver.deletePrefix('../outside/')).rejects.toThrow(StorageKeyError);
    expect(existsSync(join(outside, 'secret'))).toBe(true);
  });

  it('deletes idempotently', async () => {
    await driver.put(`${T}/k`, Buffer.from('x'), { contentType: 'x/y' });
    await driver.delete(`${T}/k`);
    await driver.delete(`${T}/k`);
    await driver.delete(`${T}/never/written`);
    expect(existsSync(join(root, T, 'k'))).toBe(false);
  });

  it('has no presigned URLs', async () => {
    expect(await driver.presignedGetUrl()).toBeNull();
  });

  it('needs an absolute root that is not /', () => {
    expect(() => new LocalStorageDriver('relative/root')).toThrow(/absolute/);
    expect(() => new LocalStorageDriver('/')).toThrow(/filesystem root/);
  });
});
