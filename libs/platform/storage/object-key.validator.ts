import { StorageKeyError } from './storage.errors';

/**
 * S3 allows 1024 bytes per key; the tenant prefix takes 37 of them and the rest is headroom for
 * whatever a driver adds. 255 per segment is NAME_MAX of every common filesystem.
 */
export const MAX_KEY_LENGTH = 512;
export const MAX_SEGMENT_LENGTH = 255;

// AWS's documented "safe characters" for object keys. Everything else (backslash, %, :, spaces,
// non-ASCII look-alikes of '.' and '/', control characters) is refused rather than escaped, so a
// key means the same thing to every driver, every filesystem and every URL it ends up in.
const SAFE = /^[A-Za-z0-9!\-_.*'()/]+$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Throws StorageKeyError unless `key` is a relative key: segments of safe characters joined by
 * '/', none empty and none starting with '.', so '.', '..' and hidden names (which the local driver
 * keeps for its temporary files) cannot occur. Specific reasons first, for an actionable message.
 */
export function assertObjectKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new StorageKeyError(key, 'must be a string');
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) throw new StorageKeyError(key, `must be 1..${MAX_KEY_LENGTH} characters`);
  if (CONTROL.test(key)) throw new StorageKeyError(key, 'must not contain NUL or other control characters');
  if (key.includes('\\')) throw new StorageKeyError(key, "must use '/' as separator, never a backslash");
  if (key.startsWith('/')) throw new StorageKeyError(key, 'must be relative (no leading /)');
  if (key.includes('%')) throw new StorageKeyError(key, 'must not be percent-encoded');
  for (const segment of key.split('/')) {
    if (segment === '') throw new StorageKeyError(key, 'must not have empty segments (//, or a trailing /)');
    if (segment.startsWith('.')) throw new StorageKeyError(key, "segments must not start with '.' (no '.', '..' or hidden names)");
    if (segment.length > MAX_SEGMENT_LENGTH) throw new StorageKeyError(key, `segments must be at most ${MAX_SEGMENT_LENGTH} characters`);
  }
  if (!SAFE.test(key)) throw new StorageKeyError(key, "may contain only A-Z a-z 0-9 ! - _ . * ' ( ) and /");
}
