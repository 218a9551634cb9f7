import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DEFAULT_PAGE_LIMIT, keysetWindow, toPage, type Page } from '#strata/common';
import { TenantConnectionManager } from '#strata/tenancy';
import { PlanLimits } from '#strata/plans';
import {
  sanitizeContentType,
  SignedDownloads,
  STORAGE_OPTIONS,
  StorageObjectNotFoundError,
  StorageRangeError,
  TenantStorage,
  type ByteRange,
  type ResolvedStorageOptions,
} from '#strata/storage';
import { fileEtag, planDownload, type DownloadConditions } from './file-download.conditions';
import { fileNotFound, rangeNotSatisfiable } from './files.errors';
import { toFileView, validFileName, type FileView } from './files.dto';
import { FilesRepository } from './files.repository';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The purpose signed download tokens of this module are made for (their audience). */
export const SIGNED_FILE_PURPOSE = 'files';
/** The public route a signed download URL points at (FilesController), relative to the API's origin. */
export const SIGNED_FILE_PATH = '/files/signed';

export interface NewUpload {
  name: string;
  /** As the client claimed it; sanitized here. */
  contentType: string;
  body: Buffer;
}

/** What a download sends: the bytes (all, or one range), or nothing when the client's copy is current. */
export type FileContent =
  | { status: 304; file: FileView; etag: string }
  | {
      status: 200 | 206;
      file: FileView;
      /** Strong: see fileEtag(). */
      etag: string;
      stream: Readable;
      /** The whole object's size as the storage has it (not the row's). */
      size: number;
      /** With 206: the bytes the stream carries. */
      range?: ByteRange;
    };

export interface FileDownloadUrl {
  url: string;
  expiresAt: Date;
}

/**
 * Files of the current tenant: metadata in the tenant's `files` table, bytes in TenantStorage
 * (key `files/{id}` under the tenant's prefix). The database decides what exists: an object
 * without a row is unreachable, so writes store the object before the row and deletes remove the
 * row before the object. Storage I/O never runs inside a transaction, so no database connection
 * is held while bytes move.
 */
@Injectable()
export class FilesService {
  private readonly logger = new Logger('FilesService');

  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly files: FilesRepository,
    private readonly storage: TenantStorage,
    private readonly signed: SignedDownloads,
    @Inject(STORAGE_OPTIONS) private readonly options: Pick<ResolvedStorageOptions, 'publicUrl'>,
    private readonly limits: PlanLimits,
  ) {}

  /** Newest first. A malformed cursor is refused before any connection is taken. */
  async list(limit = DEFAULT_PAGE_LIMIT, cursor?: string): Promise<Page<FileView>> {
    const window = keysetWindow({ limit, cursor });
    const rows = await this.connections.read(() => this.files.list(window));
    return toPage(rows, limit, toFileView);
  }

  async upload(input: NewUpload): Promise<FileView> {
    const name = validFileName(input.name);
    const contentType = sanitizeContentType(input.contentType);
    const id = randomUUID();
    const storageKey = `files/${id}`;
    await this.storage.put(storageKey, input.body, { contentType, size: input.body.length });
    try {
      const file = await this.connections.transaction(async () => {
        // The bytes count with the row, in its transaction: exact, and a refused upload's object is
        // taken back below like any failed insert's (402 plan_limit_reached).
        await this.limits.reserve('storageBytes', input.body.length);
        return this.files.insert({ id, name, contentType, sizeBytes: input.body.length, storageKey });
      });
      return toFileView(file);
    } catch (err) {
      // No row, so nothing will ever reach this object again: take it back now.
      await this.storage.delete(storageKey).catch((cleanupErr: unknown) => {
        this.logger.error(`could not remove object ${storageKey} after its row failed to insert: ${String(cleanupErr)}`);
      });
      throw err;
    }
  }

  async get(id: string): Promise<FileView> {
    const file = await this.connections.read(() => this.files.findById(id));
    if (!file) throw fileNotFound();
    return toFileView(file);
  }

  /**
   * The row decides (404 for another tenant's id); the bytes are opened after its transaction ended.
   * `conditions` are the request's If-None-Match / Range / If-Range (see planDownload): a current
   * copy is answered 304 from the row alone, a range 206, a range past the end 416
   * `range_not_satisfiable`.
   */
  async openContent(id: string, conditions: DownloadConditions = {}): Promise<FileContent> {
    const row = await this.connections.read(() => this.files.findById(id));
    if (!row) throw fileNotFound();
    const file = toFileView(row);
    const etag = fileEtag(file);
    const plan = planDownload(conditions, { etag, size: file.size });
    if (plan.kind === 'not-modified') return { status: 304, file, etag };
    if (plan.kind === 'unsatisfiable') throw rangeNotSatisfiable(file.size);
    try {
      const object = await this.storage.get(row.storageKey, plan.kind === 'partial' ? { range: plan.range } : {});
      return object.range
        ? { status: 206, file, etag, stream: object.stream, size: object.size, range: object.range }
        : { status: 200, file, etag, stream: object.stream, size: object.size };
    } catch (err) {
      // Deleted between the two reads, or lost out of band: either way there is nothing to send.
      if (err instanceof StorageObjectNotFoundError) {
        this.logger.warn(`file ${id} has a row but no object (${row.storageKey}); answering 404`);
        throw fileNotFound();
      }
      // The row's size said the range fits, the object disagrees: answer from the object.
      if (err instanceof StorageRangeError) throw rangeNotSatisfiable(err.size);
      throw err;
    }
  }

  /**
   * A URL that downloads the file without credentials until `expiresAt`: S3's presigned GET, or on
   * the local driver a signed URL of this API (`GET /files/signed?token=…`, see SignedDownloads)
   * under FILES_PUBLIC_URL, else `origin` (the origin the request came to).
   */
  async downloadUrl(id: string, origin: string): Promise<FileDownloadUrl> {
    const file = await this.connections.read(() => this.files.findById(id));
    if (!file) throw fileNotFound();
    const presigned = await this.storage.presignedDownloadUrl(file.storageKey, { filename: file.name, contentType: file.contentType });
    if (presigned) return presigned;
    const { token, expiresAt } = await this.signed.issue(SIGNED_FILE_PURPOSE, file.id);
    return { url: `${this.options.publicUrl ?? origin}${SIGNED_FILE_PATH}?token=${token}`, expiresAt };
  }

  /**
   * The content behind a signed URL: the tenant comes from the verified token (entered with
   * TenantContext.run by SignedDownloads.open), never from the request, and the file is then looked
   * up as that tenant, so a deleted file is 404 at once even while its URL is still valid.
   */
  openSigned(token: unknown, conditions: DownloadConditions = {}): Promise<FileContent> {
    return this.signed.open(SIGNED_FILE_PURPOSE, token, async (fileId) => {
      // Signed by us, so always a file id; checked anyway before it reaches a query.
      if (!UUID.test(fileId)) throw fileNotFound();
      return this.openContent(fileId, conditions);
    });
  }

  async remove(id: string): Promise<void> {
    const storageKey = await this.connections.transaction(async () => {
      const gone = await this.files.delete(id);
      if (gone) await this.limits.release('storageBytes', gone.sizeBytes);
      return gone?.storageKey ?? null;
    });
    if (storageKey === null) throw fileNotFound();
    // The row is gone, so the file is gone for every reader; a failure here only leaves an
    // unreachable object behind, which is logged rather than turned into an error for a done delete.
    await this.storage.delete(storageKey).catch((err: unknown) => {
      this.logger.error(`file ${id} deleted, but its object ${storageKey} was not: ${String(err)}`);
    });
  }
}
