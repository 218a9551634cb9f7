import { randomUUID } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { mkdir, open, realpath, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertObjectKey } from './object-key.validator';
import type { ObjectInfo, PutObjectOptions, StorageDriver, StoredObject } from './storage.driver';
import { StorageKeyError, StorageObjectNotFoundError } from './storage.errors';

const missing = (err: unknown) => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException)?.code ?? '');

/**
 * Objects as files under `root/`, one directory level per key segment. Bytes only: the content
 * type is the caller's metadata (the files table keeps it), so nothing sits next to the object
 * that a key could collide with. No presigned URLs (presignedGetUrl answers null).
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

  async get(key: string): Promise<StoredObject> {
    const { handle, size } = await this.openFile(key);
    return { stream: handle.createReadStream(), size };
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
