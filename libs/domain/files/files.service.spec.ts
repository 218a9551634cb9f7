import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import type { EntityManager } from 'typeorm';
import { type KeysetWindow } from '#strata/common';
import type { TenantConnectionManager } from '#strata/tenancy';
import type { PlanLimits } from '#strata/plans';
import {
  StorageObjectNotFoundError,
  StorageRangeError,
  type GetObjectOptions,
  type PresignedDownload,
  type SignedDownloads,
  type TenantStorage,
} from '#strata/storage';
import type { FilesRepository, NewFileRow } from './files.repository';
import { FilesService, type FileContent } from './files.service';
import type { StoredFile } from './stored-file.entity';
import { apiError } from '../../../test/support/api-error';

/** Runs work at once; records every step, in order, next to the storage calls. */
class FakeTransactions {
  open = false;
  constructor(private readonly log: string[]) {}
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.unit('tx', work);
  }
  read<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.unit('read', work);
  }
  private async unit<T>(kind: 'tx' | 'read', work: (manager: EntityManager) => Promise<T>): Promise<T> {
    this.log.push(`${kind}:begin`);
    this.open = true;
    try {
      return await work({} as EntityManager);
    } finally {
      this.open = false;
      this.log.push(`${kind}:end`);
    }
  }
}

class FakeFilesRepository implements Pick<FilesRepository, keyof FilesRepository> {
  rows: StoredFile[] = [];
  failInsert?: Error;
  private clock = Date.UTC(2026, 0, 1);
  constructor(
    private readonly tx: FakeTransactions,
    private readonly log: string[],
  ) {}

  private inTx(step: string) {
    if (!this.tx.open) throw new Error(`${step} outside a tenant transaction`);
    this.log.push(step);
  }
  async insert(fields: NewFileRow): Promise<StoredFile> {
    this.inTx('row:insert');
    if (this.failInsert) throw this.failInsert;
    const row = { ...fields, tenantId: 'tenant', createdAt: new Date(this.clock++) };
    this.rows.push(row);
    return { ...row };
  }
  async findById(id: string): Promise<StoredFile | null> {
    this.inTx('row:find');
    return this.rows.find((r) => r.id === id) ?? null;
  }
  async list(window: KeysetWindow): Promise<StoredFile[]> {
    this.inTx('row:list');
    return [...this.rows].reverse().slice(0, window.take);
  }
  async delete(id: string): Promise<{ storageKey: string; sizeBytes: number } | null> {
    this.inTx('row:delete');
    const row = this.rows.find((r) => r.id === id);
    this.rows = this.rows.filter((r) => r !== row);
    return row ? { storageKey: row.storageKey, sizeBytes: Number(row.sizeBytes) } : null;
  }
}

/** Relative keys, as TenantStorage takes them; it must never be called inside a transaction. */
class FakeStorage implements Pick<TenantStorage, 'put' | 'get' | 'delete' | 'presignedDownloadUrl'> {
  objects = new Map<string, { body: Buffer; contentType: string }>();
  presign: PresignedDownload | null = null;
  failDelete = false;
  constructor(
    private readonly tx: FakeTransactions,
    private readonly log: string[],
  ) {}
  private step(step: string) {
    if (this.tx.open) throw new Error(`${step} inside a transaction`);
    this.log.push(step);
  }
  async put(key: string, body: Buffer | Readable, options: { contentType: string }): Promise<void> {
    this.step('object:put');
    this.objects.set(key, { body: body as Buffer, contentType: options.contentType });
  }
  async get(key: string, options: GetObjectOptions = {}) {
    this.step(options.range ? `object:get ${options.range.start}-${options.range.end}` : 'object:get');
    const o = this.objects.get(key);
    if (!o) throw new StorageObjectNotFoundError(key);
    const { range } = options;
    if (!range) return { stream: Readable.from([o.body]), size: o.body.length };
    if (range.start >= o.body.length) throw new StorageRangeError(key, o.body.length);
    const end = Math.min(range.end, o.body.length - 1);
    return { stream: Readable.from([o.body.subarray(range.start, end + 1)]), size: o.body.length, range: { start: range.start, end } };
  }
  async delete(key: string): Promise<void> {
    this.step('object:delete');
    if (this.failDelete) throw new Error('storage down');
    this.objects.delete(key);
  }
  async presignedDownloadUrl(): Promise<PresignedDownload | null> {
    this.step('object:presign');
    return this.presign;
  }
}

/** Tokens are `signed:<resource>`; open() runs the work as SignedDownloads does, outside any transaction. */
class FakeSignedDownloads implements Pick<SignedDownloads, 'issue' | 'open'> {
  constructor(private readonly log: string[]) {}
  async issue(purpose: string, resource: string) {
    this.log.push(`sign:${purpose}`);
    return { token: `signed:${resource}`, expiresAt: new Date(60_000) };
  }
  async open<T>(purpose: string, token: unknown, work: (resource: string) => Promise<T>): Promise<T> {
    this.log.push(`open:${purpose}`);
    return work(String(token).replace(/^signed:/, ''));
  }
}

function setup(options: { publicUrl?: string } = {}) {
  const log: string[] = [];
  const tx = new FakeTransactions(log);
  const repo = new FakeFilesRepository(tx, log);
  const storage = new FakeStorage(tx, log);
  const signed = new FakeSignedDownloads(log);
  const service = new FilesService(
    tx as unknown as TenantConnectionManager,
    repo as unknown as FilesRepository,
    storage as unknown as TenantStorage,
    signed as unknown as SignedDownloads,
    options,
    // Quotas are PlanLimits' own tests (test/e2e/plan-limits.e2e-spec.ts); here every reservation passes.
    { reserve: async () => undefined, release: async () => undefined } as unknown as PlanLimits,
  );
  return { service, repo, storage, log };
}

/** The bytes of a download that has them. */
async function body(content: FileContent): Promise<string> {
  if (content.status === 304) throw new Error('a 304 has no body');
  return text(content.stream);
}

const upload = { name: 'notes.txt', contentType: 'text/plain', body: Buffer.from('hello') };

describe('FilesService', () => {
  it('stores the object first, then inserts the row under the same id', async () => {
    const { service, repo, storage, log } = setup();
    const view = await service.upload(upload);
    expect(log).toEqual(['object:put', 'tx:begin', 'row:insert', 'tx:end']);
    expect(view).toEqual({ id: expect.any(String), name: 'notes.txt', contentType: 'text/plain', size: 5, createdAt: expect.any(Date) });
    expect(repo.rows[0].storageKey).toBe(`files/${view.id}`);
    expect([...storage.objects.keys()]).toEqual([`files/${view.id}`]);
  });

  it('takes the object back when the row cannot be inserted, and rethrows', async () => {
    const { service, repo, storage, log } = setup();
    repo.failInsert = new Error('connection reset');
    await expect(service.upload(upload)).rejects.toBe(repo.failInsert);
    expect(log).toEqual(['object:put', 'tx:begin', 'row:insert', 'tx:end', 'object:delete']);
    expect(storage.objects.size).toBe(0);
  });

  it('records a sanitized content type', async () => {
    const { service } = setup();
    expect((await service.upload({ ...upload, contentType: 'text/html\r\nX: y' })).contentType).toBe('application/octet-stream');
    expect((await service.upload({ ...upload, contentType: 'Image/PNG' })).contentType).toBe('image/png');
  });

  it('refuses a bad file name before storing anything', async () => {
    const { service, log } = setup();
    expect(await apiError(service.upload({ ...upload, name: '../../etc/passwd' }))).toBe('400 invalid_filename');
    expect(log).toEqual([]);
  });

  it('opens the content after the row was read, outside the transaction', async () => {
    const { service, log } = setup();
    const { id } = await service.upload(upload);
    log.length = 0;
    const content = await service.openContent(id);
    expect(log).toEqual(['read:begin', 'row:find', 'read:end', 'object:get']);
    expect(content).toMatchObject({ status: 200, size: 5, etag: `"${id}-5"` });
    expect(await body(content)).toBe('hello');
  });

  it('answers a matching If-None-Match with 304 from the row alone, without opening the object', async () => {
    const { service, log } = setup();
    const { id } = await service.upload(upload);
    log.length = 0;
    for (const ifNoneMatch of [`"${id}-5"`, `W/"${id}-5"`, `"other", "${id}-5"`, '*']) {
      expect(await service.openContent(id, { ifNoneMatch })).toEqual({ status: 304, file: expect.objectContaining({ id }), etag: `"${id}-5"` });
    }
    expect(log.filter((s) => s.startsWith('object:'))).toEqual([]);
    expect((await service.openContent(id, { ifNoneMatch: '"stale"' })).status).toBe(200);
  });

  it('reads only the requested range and answers 206 with it', async () => {
    const { service, log } = setup();
    const { id } = await service.upload(upload);
    log.length = 0;
    const content = await service.openContent(id, { range: 'bytes=1-3' });
    expect(content).toMatchObject({ status: 206, size: 5, range: { start: 1, end: 3 } });
    expect(await body(content)).toBe('ell');
    expect(log).toContain('object:get 1-3');
    expect(await body(await service.openContent(id, { range: 'bytes=-2' }))).toBe('lo');
  });

  it('answers 416 range_not_satisfiable with Content-Range bytes */size for a range past the end', async () => {
    const { service, log } = setup();
    const { id } = await service.upload(upload);
    log.length = 0;
    const err = await service.openContent(id, { range: 'bytes=5-' }).catch((e: unknown) => e);
    expect(await apiError(Promise.reject(err))).toBe('416 range_not_satisfiable');
    expect((err as { headers: Record<string, string> }).headers).toEqual({ 'Content-Range': 'bytes */5' });
    expect(log.filter((s) => s.startsWith('object:'))).toEqual([]);
  });

  it('answers 416 from the object when the row says the range fits but the object is shorter', async () => {
    const { service, storage } = setup();
    const { id } = await service.upload(upload);
    storage.objects.set(`files/${id}`, { body: Buffer.from('he'), contentType: 'text/plain' });
    const err = await service.openContent(id, { range: 'bytes=3-4' }).catch((e: unknown) => e);
    expect((err as { headers: Record<string, string> }).headers).toEqual({ 'Content-Range': 'bytes */2' });
  });

  it('answers 404 file_not_found for an unknown id without touching storage', async () => {
    const { service, log } = setup();
    const id = randomUUID();
    expect(await apiError(service.get(id))).toBe('404 file_not_found');
    expect(await apiError(service.openContent(id))).toBe('404 file_not_found');
    expect(await apiError(service.downloadUrl(id, 'http://127.0.0.1'))).toBe('404 file_not_found');
    expect(await apiError(service.remove(id))).toBe('404 file_not_found');
    expect(log.filter((s) => s.startsWith('object:'))).toEqual([]);
  });

  it('answers 404 file_not_found when the row outlived its object', async () => {
    const { service, storage } = setup();
    const { id } = await service.upload(upload);
    storage.objects.clear();
    const warned = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    expect(await apiError(service.openContent(id))).toBe('404 file_not_found');
    expect(warned).toHaveBeenCalledWith(expect.stringContaining('has a row but no object'));
    warned.mockRestore();
  });

  it('deletes the row first, then the object', async () => {
    const { service, storage, log } = setup();
    const { id } = await service.upload(upload);
    log.length = 0;
    await service.remove(id);
    expect(log).toEqual(['tx:begin', 'row:delete', 'tx:end', 'object:delete']);
    expect(storage.objects.size).toBe(0);
  });

  it('completes a delete whose object removal failed: the file is gone for every reader', async () => {
    const { service, storage } = setup();
    const { id } = await service.upload(upload);
    storage.failDelete = true;
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    await expect(service.remove(id)).resolves.toBeUndefined();
    expect(logged).toHaveBeenCalledWith(expect.stringContaining(`its object files/${id} was not`));
    logged.mockRestore();
    expect(await apiError(service.get(id))).toBe('404 file_not_found');
  });

  it("hands out the driver's presigned URL, or one of its own signed route when the driver has none", async () => {
    const { service, storage, log } = setup();
    const { id } = await service.upload(upload);
    log.length = 0;
    expect(await service.downloadUrl(id, 'http://127.0.0.1:3000')).toEqual({
      url: `http://127.0.0.1:3000/files/signed?token=signed:${id}`,
      expiresAt: new Date(60_000),
    });
    expect(log).toEqual(['read:begin', 'row:find', 'read:end', 'object:presign', 'sign:files']);
    storage.presign = { url: 'https://s3.example/x', expiresAt: new Date(0) };
    expect(await service.downloadUrl(id, 'http://127.0.0.1:3000')).toEqual(storage.presign);
  });

  it('starts signed URLs with FILES_PUBLIC_URL when it is set, whatever origin the request came to', async () => {
    const { service } = setup({ publicUrl: 'https://api.example.com/strata' });
    const { id } = await service.upload(upload);
    expect((await service.downloadUrl(id, 'http://10.0.0.7:3000')).url).toBe(`https://api.example.com/strata/files/signed?token=signed:${id}`);
  });

  it('serves a signed download as the tenant the token names, looking the file up again (a deleted file is 404 at once)', async () => {
    const { service, log } = setup();
    const { id } = await service.upload(upload);
    log.length = 0;
    const content = await service.openSigned(`signed:${id}`, { range: 'bytes=0-1' });
    expect(await body(content)).toBe('he');
    expect(log).toEqual(['open:files', 'read:begin', 'row:find', 'read:end', 'object:get 0-1']);
    await service.remove(id);
    expect(await apiError(service.openSigned(`signed:${id}`))).toBe('404 file_not_found');
    expect(await apiError(service.openSigned('signed:not-a-uuid'))).toBe('404 file_not_found');
  });

  it('refuses a malformed cursor before opening a transaction', async () => {
    const { service, log } = setup();
    expect(await apiError(service.list(20, '%%%garbage'))).toBe('400 invalid_cursor');
    expect(log).toEqual([]);
  });
});
