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
