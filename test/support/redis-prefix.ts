import { Redis } from 'ioredis';

/**
 * Deletes every key under a test's BullMQ prefix (SCAN + UNLINK). Twice, because a closing queue may
 * still write its meta key just after shutdown.
 */
export async function dropRedisPrefix(url: string | undefined, prefix: string): Promise<void> {
  const redis = new Redis(url ?? 'redis://127.0.0.1:6379');
  try {
    for (const pass of [1, 2]) {
      if (pass === 2) await new Promise((r) => setTimeout(r, 300));
      for (let cursor = '0'; ; ) {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        if (keys.length) await redis.unlink(...keys);
        if ((cursor = next) === '0') break;
      }
    }
  } finally {
    await redis.quit();
  }
}
