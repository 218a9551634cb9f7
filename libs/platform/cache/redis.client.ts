import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { StrataConfig } from '#strata/common';

/** The process's one shared ioredis client, or null when REDIS_URL is unset. */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');
export type RedisClient = Redis | null;

export class RedisNotConfiguredError extends Error {
  constructor(what: string) {
    super(`${what} needs Redis, but REDIS_URL is not set. Set REDIS_URL (e.g. redis://127.0.0.1:6379) and restart.`);
    this.name = 'RedisNotConfiguredError';
  }
}

/** The client, or an actionable error naming what wanted it. */
export function requireRedis(client: RedisClient, what: string): Redis {
  if (!client) throw new RedisNotConfiguredError(what);
  return client;
}

const logger = new Logger('Redis');

/**
 * lazyConnect: building the app (tests, CLI, an API without a cache in use) opens no socket; the
 * first command connects. Few retries per command: a cache or a publish should fail in well under
 * a second when Redis is down, not hold a request for the default 20 reconnect attempts.
 */
export function createRedisClient(config: StrataConfig, connectionName = 'strata'): RedisClient {
  if (!config.redisUrl) return null;
  const client = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2, connectionName });
  // Without a listener ioredis prints every reconnect failure as an unhandled error event.
  client.on('error', (err: Error) => logger.warn(`${connectionName}: ${err.message}`));
  return client;
}

/** quit() lets replies in flight arrive; a never-connected client has nothing to say goodbye to. */
export async function closeRedisClient(client: Redis): Promise<void> {
  if (client.status === 'wait' || client.status === 'end') {
    client.disconnect();
    return;
  }
  await client.quit().catch(() => client.disconnect());
}
