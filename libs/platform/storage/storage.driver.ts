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

/** Bytes `start` through `end` of an object, both inclusive, as in an HTTP `Range`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface GetObjectOptions {
  /** Only these bytes; `end` past the object's last byte is clamped to it. */
  range?: ByteRange;
}

export interface StoredObject extends ObjectInfo {
  stream: Readable;
  /** The bytes the stream carries when a range was asked for (clamped); `size` stays the whole object's. */
  range?: ByteRange;
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
  /**
   * StorageObjectNotFoundError when there is no object under `key`; StorageRangeError when
   * `options.range` starts at or past its end.
   */
  get(key: string, options?: GetObjectOptions): Promise<StoredObject>;
  /** StorageObjectNotFoundError when there is no object under `key`. */
  head(key: string): Promise<ObjectInfo>;
  /** Idempotent: deleting a missing object succeeds. */
  delete(key: string): Promise<void>;
  /** Every key that starts with `prefix` (a whole key segment, ending in `/`), in no particular order. */
  list(prefix: string): Promise<string[]>;
  /** Deletes every object whose key starts with `prefix` (ending in `/`); returns how many. Idempotent. */
  deletePrefix(prefix: string): Promise<number>;
  /** A URL that serves the object without credentials until it expires; null when the driver has no such thing. */
  presignedGetUrl(key: string, options: PresignOptions): Promise<string | null>;
}

export const STORAGE_DRIVER = Symbol('STORAGE_DRIVER');
