import type { Redis } from 'ioredis';

const SCAN_COUNT = 500;

/** `s` matched literally by SCAN MATCH: `*`, `?`, `[`, `]` and `\` are glob syntax there. */
export const globLiteral = (s: string): string => s.replace(/[*?[\]\\]/g, '\\$&');

/**
 * Removes every key matching `match`. SCAN walks the keyspace in steps of ~500 without blocking Redis
 * (KEYS would stall every other client on a large keyspace); UNLINK frees memory off the main thread.
 * Keys written during the walk may survive. Returns how many keys were removed.
 */
export async function unlinkMatching(redis: Redis, match: string): Promise<number> {
  let cursor = '0';
  let removed = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
    if (keys.length > 0) removed += await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  return removed;
}
