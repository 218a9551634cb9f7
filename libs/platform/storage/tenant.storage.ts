import { Inject, Injectable } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { TenantContext } from '#strata/tenancy/platform';
import { assertObjectKey } from './object-key.validator';
import { sanitizeContentType } from './content-type.sanitizer';
import { STORAGE_DRIVER, type GetObjectOptions, type ObjectInfo, type PutObjectOptions, type StorageDriver, type StoredObject } from './storage.driver';
import { MAX_URL_TTL_SECONDS, STORAGE_OPTIONS, type ResolvedStorageOptions } from './storage.options';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface PresignedDownload {
  url: string;
  expiresAt: Date;
}

export interface PresignedDownloadOptions {
  /** Default: FILES_URL_TTL_SECONDS. */
  expiresInSeconds?: number;
  filename?: string;
  contentType?: string;
}

/**
 * Object storage for the current tenant. Every key is `{tenantId}/{key}` with the tenant read from
 * TenantContext: there is no tenant parameter, so a caller cannot name another tenant's object, and
 * without a context nothing is read or written (MissingTenantContextError before any I/O).
 */
@Injectable()
export class TenantStorage {
  constructor(
    @Inject(STORAGE_DRIVER) private readonly driver: StorageDriver,
    @Inject(STORAGE_OPTIONS) private readonly options: ResolvedStorageOptions,
    private readonly context: TenantContext,
  ) {}

  /** Atomic replace. The content type is sanitized (see sanitizeContentType) before it is stored. */
  async put(key: string, body: Buffer | Readable, options: PutObjectOptions): Promise<void> {
    // async: a missing context is a rejection like any other failure, never a synchronous throw.
    const fullKey = this.tenantKey(key, 'storing an object');
    return this.driver.put(fullKey, body, { ...options, contentType: sanitizeContentType(options.contentType) });
  }

  /**
   * StorageObjectNotFoundError when this tenant has no object under `key`; StorageRangeError when
   * `options.range` starts past its end. The caller consumes or destroys the stream.
   */
  async get(key: string, options: GetObjectOptions = {}): Promise<StoredObject> {
    return this.driver.get(this.tenantKey(key, 'reading an object'), options);
  }

  /** StorageObjectNotFoundError when this tenant has no object under `key`. */
  async head(key: string): Promise<ObjectInfo> {
    return this.driver.head(this.tenantKey(key, 'reading object metadata'));
  }

  /** Idempotent. */
  async delete(key: string): Promise<void> {
    return this.driver.delete(this.tenantKey(key, 'deleting an object'));
  }

  /** Every key of the current tenant (without the tenant prefix). */
  async listAll(): Promise<string[]> {
    const prefix = this.tenantPrefix('listing objects');
    return (await this.driver.list(prefix)).map((k) => k.slice(prefix.length));
  }

  /** Deletes every object of the current tenant (offboarding); returns how many. Idempotent. */
  async removeAll(): Promise<number> {
    return this.driver.deletePrefix(this.tenantPrefix('deleting every object'));
  }

  /**
   * A URL serving the object to whoever holds it until `expiresAt`, or null when the driver has no
   * such URLs (local): callers then serve the bytes themselves. Does not check that the object exists.
   */
  async presignedDownloadUrl(key: string, options: PresignedDownloadOptions = {}): Promise<PresignedDownload | null> {
    const fullKey = this.tenantKey(key, 'presigning a download');
    const expiresInSeconds = options.expiresInSeconds ?? this.options.urlTtlSeconds;
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_URL_TTL_SECONDS) {
      throw new RangeError(`presigned URL lifetime must be an integer in 1..${MAX_URL_TTL_SECONDS} seconds, got ${expiresInSeconds}`);
    }
    // Taken before signing and floored to the second like X-Amz-Date, so the answer never claims
    // more lifetime than the signature has (at most a second less).
    const expiresAt = new Date(Math.floor(Date.now() / 1000) * 1000 + expiresInSeconds * 1000);
    const url = await this.driver.presignedGetUrl(fullKey, {
      expiresInSeconds,
      ...(options.filename !== undefined ? { filename: options.filename } : {}),
      ...(options.contentType !== undefined ? { contentType: sanitizeContentType(options.contentType) } : {}),
    });
    return url === null ? null : { url, expiresAt };
  }

  private tenantKey(key: string, what: string): string {
    const prefix = this.tenantPrefix(what);
    assertObjectKey(key);
    return prefix + key;
  }

  private tenantPrefix(what: string): string {
    const { tenant } = this.context.requireTenant(what, 'stored objects');
    // The prefix is a registry id, but it is checked anyway: it is the one thing keeping tenants apart.
    if (!UUID.test(tenant.id)) throw new Error(`refusing tenant id ${JSON.stringify(tenant.id)} as a storage prefix: not a UUID`);
    return `${tenant.id}/`;
  }
}
