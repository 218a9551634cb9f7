import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ApiException, DEFAULT_PAGE_LIMIT, keysetWindow, notFound, toPage, type Page } from '#strata/common';
import { TenantConnectionManager } from '#strata/tenancy';
import { sanitizeContentType, StorageObjectNotFoundError, TenantStorage } from '#strata/storage';
import { toFileView, validFileName, type FileView } from './files.dto';
import { FilesRepository } from './files.repository';

const fileNotFound = () => notFound('file_not_found', 'file not found');

export interface NewUpload {
  name: string;
  /** As the client claimed it; sanitized here. */
  contentType: string;
  body: Buffer;
}

export interface FileContent {
  file: FileView;
  stream: Readable;
  /** Bytes the storage will actually send (the object's size, not the row's). */
  size: number;
}

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
      const file = await this.connections.transaction(() =>
        this.files.insert({ id, name, contentType, sizeBytes: input.body.length, storageKey }),
      );
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

  /** The row decides (404 for another tenant's id); the bytes are opened after its transaction ended. */
  async openContent(id: string): Promise<FileContent> {
    const file = await this.connections.read(() => this.files.findById(id));
    if (!file) throw fileNotFound();
    try {
      const object = await this.storage.get(file.storageKey);
      return { file: toFileView(file), stream: object.stream, size: object.size };
    } catch (err) {
      // Deleted between the two reads, or lost out of band: either way there is nothing to send.
      if (err instanceof StorageObjectNotFoundError) {
        this.logger.warn(`file ${id} has a row but no object (${file.storageKey}); answering 404`);
        throw fileNotFound();
      }
      throw err;
    }
  }

  /** 501 `presigned_urls_unsupported` on the local driver, after the 404 check, so it reveals nothing. */
  async downloadUrl(id: string): Promise<FileDownloadUrl> {
    const file = await this.connections.read(() => this.files.findById(id));
    if (!file) throw fileNotFound();
    const presigned = await this.storage.presignedDownloadUrl(file.storageKey, { filename: file.name, contentType: file.contentType });
    if (!presigned) {
      throw new ApiException(
        501,
        'presigned_urls_unsupported',
        `this deployment stores files locally (FILES_DRIVER=local), which has no presigned URLs; download through GET /files/${id}/content`,
      );
    }
    return presigned;
  }

  async remove(id: string): Promise<void> {
    const storageKey = await this.connections.transaction(() => this.files.delete(id));
    if (storageKey === null) throw fileNotFound();
    // The row is gone, so the file is gone for every reader; a failure here only leaves an
    // unreachable object behind, which is logged rather than turned into an error for a done delete.
    await this.storage.delete(storageKey).catch((err: unknown) => {
      this.logger.error(`file ${id} deleted, but its object ${storageKey} was not: ${String(err)}`);
    });
  }
}
