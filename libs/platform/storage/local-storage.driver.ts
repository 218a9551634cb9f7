import { randomUUID } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, realpath, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertObjectKey } from './object-key.validator';
import type { GetObjectOptions, ObjectInfo, PutObjectOptions, StorageDriver, StoredObject } from './storage.driver';
import { StorageKeyError, StorageObjectNotFoundError, StorageRangeError } from './storage.errors';

const missing = (err: unknown) => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException)?.code ?? '');

/**
 * Objects as files under `root/`, one directory level per key segment. Bytes only: the content
 * type is the caller's metadata (the files table keeps it), so nothing sits next to the object
 * that a key could collide with. No presigned URLs (presignedGetUrl answers null): a domain module
 * hands out SignedDownloads tokens for its own public route instead.
 */
export class LocalStorageDriver implements StorageDriver {
  readonly name = 'local' as const;
  readonly root: string;
  private realRoot?: Promise<string>;

  constructor(root: string) {
    if (!isAbsolute(root)) throw new Error(`local storage root must be an absolute path, got ${JSON.stringify(root)}`);
    this.root = resolve(root);
    if (this.root === sep) throw new Error('local storage root must not be the filesystem root');
  }

  async put(key: string, body: Buffer | Readable, options: PutObjectOptions): Promise<void> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await this.assertUnderRoot(key, dir);
    // Written beside the target and renamed over it: readers see the old object or the whole new
    // one, never a prefix, and a crash leaves only a dot-file that no valid key can name.
    const temp = join(dir, `.tmp-${randomUUID()}`);
    try {
      if (Buffer.isBuffer(body)) await writeFile(temp, body, { flag: 'wx', mode: 0o600, flush: true });
      else await pipeline(body, createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true }));
      if (options.size !== undefined) {
        const written = (await stat(temp)).size;
        if (written !== options.size) throw new Error(`storing ${key}: got ${written} bytes, expected ${options.size}`);
      }
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  async get(key: string, options: GetObjectOptions = {}): Promise<StoredObject> {
    const { handle, size } = await this.openFile(key);
    const { range } = options;
    if (!range) return { stream: handle.createReadStream(), size };
    // Checked against the open descriptor's size: the object a range is read from is the one sized.
    if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start || range.start >= size) {
      await handle.close();
      throw new StorageRangeError(key, size);
    }
    const clamped = { start: range.start, end: Math.min(range.end, size - 1) };
    return { stream: handle.createReadStream(clamped), size, range: clamped };
  }

  async head(key: string): Promise<ObjectInfo> {
    const { handle, size } = await this.openFile(key);
    await handle.close();
    return { size };
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await this.assertUnderRoot(key, dirname(path));
      await unlink(path);
    } catch (err) {
      if (!missing(err)) throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const dir = this.prefixDir(prefix);
    try {
      await this.assertUnderRoot(prefix, dir);
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      // Upload temp files (put() writes beside the object, then renames) are not objects yet.
      return entries
        .filter((e) => e.isFile() && !e.name.startsWith('.'))
        .map((e) => prefix + join(e.parentPath, e.name).slice(dir.length + 1).split(sep).join('/'));
    } catch (err) {
      if (missing(err)) return [];
      throw err;
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    const count = (await this.list(prefix)).length;
    const dir = this.prefixDir(prefix);
    await this.assertUnderRoot(prefix, dir).then(
      () => rm(dir, { recursive: true, force: true }),
      (err: unknown) => {
        if (!missing(err)) throw err;
      },
    );
    return count;
  }

  /** The directory holding every key under `prefix` (`{tenantId}/` → root/{tenantId}). */
  private prefixDir(prefix: string): string {
    if (!prefix.endsWith('/')) throw new StorageKeyError(prefix, 'a prefix must end with /');
    return this.pathOf(prefix.slice(0, -1));
  }

  async presignedGetUrl(): Promise<null> {
    return null;
  }

  /** Lexical check: the key's segments under root, and the result strictly inside it. */
  private pathOf(key: string): string {
    assertObjectKey(key);
    const path = resolve(this.root, ...key.split('/'));
    if (!path.startsWith(this.root + sep)) throw new StorageKeyError(key, 'resolves outside the storage root');
    return path;
  }

  /** Physical check: a symlink planted under root must not lead out of it. */
  private async assertUnderRoot(key: string, path: string): Promise<void> {
    const [real, root] = await Promise.all([realpath(path), this.resolvedRoot()]);
    if (real !== root && !real.startsWith(root + sep)) throw new StorageKeyError(key, 'resolves outside the storage root');
  }

  private resolvedRoot(): Promise<string> {
    this.realRoot ??= mkdir(this.root, { recursive: true, mode: 0o700 })
      .then(() => realpath(this.root))
      .catch((err) => {
        this.realRoot = undefined;
        throw err;
      });
    return this.realRoot;
  }

  /** Opens the object itself (O_NOFOLLOW) and sizes it from the open descriptor, not a second lookup. */
  private async openFile(key: string): Promise<{ handle: FileHandle; size: number }> {
    const path = this.pathOf(key);
    let handle: FileHandle;
    try {
      await this.assertUnderRoot(key, path);
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (missing(err)) throw new StorageObjectNotFoundError(key);
      throw err;
    }
    const info = await handle.stat().catch(async (err) => {
      await handle.close();
      throw err;
    });
    if (!info.isFile()) {
      await handle.close();
      throw new StorageObjectNotFoundError(key);
    }
    return { handle, size: info.size };
  }
}
