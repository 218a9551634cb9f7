import type { Readable } from 'node:stream';

export interface PutObjectOptions {
  contentType: string;
  /** Byte length of the body. Required for a stream on S3 (PutObject needs Content-Length); checked when given. */
  size?: number;
}

export interface ObjectInfo {
  /** What the object was stored with; the local driver keeps bytes only and answers undefined. */
  contentType?: string;
  size: number;
}

export interface StoredObject extends ObjectInfo {
  stream: Readable;
}

export interface PresignOptions {
  expiresInSeconds: number;
  /** Served as `Content-Disposition: attachment` with this name. */
  filename?: string;
  /** Served as the response's Content-Type, whatever the object was stored with. */
  contentType?: string;
}

/**
 * Where bytes live. Keys reaching a driver are already full keys (`{tenantId}/…`): drivers know
 * nothing of tenants, and check keys again only as a second line behind TenantStorage.
 */
export interface StorageDriver {
  readonly name: 'local' | 's3';
  put(key: string, body: Buffer | Readable, options: PutObjectOptions): Promise<void>;
  /** StorageObjectNotFoundError when there is no object under `key`. */
  get(key: string): Promise<StoredObject>;
  /** StorageObjectNotFoundError when there is no object under `key`. */
  head(key: string): Promise<ObjectInfo>;
  /** Idempotent: deleting a missing object succeeds. */
  delete(key: string): Promise<void>;
  /** A URL that serves the object without credentials until it expires; null when the driver has no such thing. */
  presignedGetUrl(key: string, options: PresignOptions): Promise<string | null>;
}

export const STORAGE_DRIVER = Symbol('STORAGE_DRIVER');
