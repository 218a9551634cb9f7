import { ApiException } from '#strata/common';

/** A key that could name something outside its tenant's prefix (or the driver's root), or is not portable. */
export class StorageKeyError extends Error {
  constructor(key: unknown, reason: string) {
    super(`invalid storage key ${JSON.stringify(typeof key === 'string' && key.length > 80 ? `${key.slice(0, 80)}…` : key)}: ${reason}`);
    this.name = 'StorageKeyError';
  }
}

/** No object under this key (never written, deleted, or another tenant's: the prefix makes those the same). */
export class StorageObjectNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`no stored object under ${key}`);
    this.name = 'StorageObjectNotFoundError';
  }
}

/** A byte range that starts at or past the end of the object (HTTP 416 territory). */
export class StorageRangeError extends Error {
  constructor(
    readonly key: string,
    /** The whole object's size, for `Content-Range: bytes *\/{size}`. */
    readonly size: number,
  ) {
    super(`the object under ${key} has ${size} bytes; the requested range starts past its end`);
    this.name = 'StorageRangeError';
  }
}

/**
 * Codes of the answers libs/storage gives a client itself (signed download URLs). Everything else
 * here is an Error for the domain module to translate (a missing object is its `*_not_found`).
 */
export const StorageErrorCode = {
  /** Malformed, tampered, signed with another key or for another purpose: 403, like S3's SignatureDoesNotMatch. */
  signedUrlInvalid: 'signed_url_invalid',
  /** A genuine URL past its expiry: 403, like S3's expired presigned URLs. Ask for a new one. */
  signedUrlExpired: 'signed_url_expired',
} as const;
export type StorageErrorCode = (typeof StorageErrorCode)[keyof typeof StorageErrorCode];

/** 403 `signed_url_invalid`: the URL was not made by this deployment for this use, or was altered. */
export class SignedUrlInvalidError extends ApiException {
  constructor() {
    super(403, StorageErrorCode.signedUrlInvalid, 'this download URL is not valid (altered, truncated or not issued here); ask the API for a new one');
    this.name = 'SignedUrlInvalidError';
  }
}

/** 403 `signed_url_expired`: a genuine URL whose lifetime is over. */
export class SignedUrlExpiredError extends ApiException {
  constructor() {
    super(403, StorageErrorCode.signedUrlExpired, 'this download URL has expired; ask the API for a new one');
    this.name = 'SignedUrlExpiredError';
  }
}
