// Public API of libs/platform/storage: tenant-prefixed object storage. Domain libs use TenantStorage and the
// header helpers; the drivers are exported for tests and tools that need one without a tenant.
export { StorageModule } from './storage.module';
export { TenantStorage, type PresignedDownload, type PresignedDownloadOptions } from './tenant.storage';
export {
  STORAGE_OPTIONS,
  MAX_URL_TTL_SECONDS,
  resolveStorageOptions,
  type StorageModuleOptions,
  type ResolvedStorageOptions,
  type S3StorageOptions,
  type S3Credentials,
  type StorageDriverName,
} from './storage.options';
export {
  STORAGE_DRIVER,
  type StorageDriver,
  type StoredObject,
  type ObjectInfo,
  type PutObjectOptions,
  type PresignOptions,
  type GetObjectOptions,
  type ByteRange,
} from './storage.driver';
export { SignedDownloads, type SignedDownload } from './signed-download.tokens';
export { LocalStorageDriver } from './local-storage.driver';
export { S3StorageDriver } from './s3-storage.driver';
export {
  StorageKeyError,
  StorageObjectNotFoundError,
  StorageRangeError,
  StorageErrorCode,
  SignedUrlInvalidError,
  SignedUrlExpiredError,
} from './storage.errors';
export { sanitizeContentType } from './content-type.sanitizer';
export { attachmentDisposition } from './content-disposition.header';
