import { createHash, randomBytes } from 'node:crypto';

/**
 * Refresh and invitation tokens: 256 random bits, base64url (43 characters). Only their sha256 is
 * stored; with that much entropy a fast hash is as good as a slow one, and a lookup is one index probe.
 */
export function newOpaqueToken(): { token: string; hash: Buffer } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashOpaqueToken(token) };
}

export function hashOpaqueToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
