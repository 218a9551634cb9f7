import { Redis, type RedisOptions } from 'ioredis';
import type { StrataConfig } from '#strata/common';
import { watchRedisClient, type RedisMonitor } from './redis.monitor';

/** The process's one shared ioredis client, or null when REDIS_URL is unset. */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');
export type RedisClient = Redis | null;
/** The shared client's connection name. */
export const SHARED_REDIS_CONNECTION = 'strata';

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

export interface RedisConnectionSettings {
  /** Its name in logs, readiness and Redis' CLIENT LIST. */
  connectionName: string;
  /** REDIS_COMMAND_TIMEOUT_MS: the longest any command waits for its answer. */
  commandTimeoutMs: number;
  /** Connect on the first command instead of at once. */
  lazyConnect?: boolean;
}

/**
 * An ioredis client for commands (not for blocking commands: commandTimeout would cut them off),
 * watched by the monitor. Bounded waits, whatever Redis does:
 * - while the connection is known to be down, its offline queue is off and commands fail at once;
 * - a command sent while it reconnects or before it first connects waits at most one reconnect
 *   attempt (maxRetriesPerRequest 1) and never longer than commandTimeout;
 * - a server that accepts the command and never answers costs commandTimeout.
 */
export function openRedisConnection(target: string | RedisOptions, settings: RedisConnectionSettings, monitor: RedisMonitor): Redis {
  const options: RedisOptions = {
    maxRetriesPerRequest: 1,
    commandTimeout: settings.commandTimeoutMs,
    lazyConnect: settings.lazyConnect ?? false,
    connectionName: settings.connectionName,
  };
  const client = typeof target === 'string' ? new Redis(target, options) : new Redis({ ...target, ...options });
  watchRedisClient(monitor, client, settings.connectionName, { failFast: true });
  return client;
}

/**
 * The shared client. lazyConnect: building the app (tests, CLI, an API without a cache in use)
 * opens no socket; the first command connects.
 */
export function createRedisClient(config: StrataConfig, monitor: RedisMonitor, connectionName = SHARED_REDIS_CONNECTION): RedisClient {
  if (!config.redisUrl) return null;
  return openRedisConnection(config.redisUrl, { connectionName, commandTimeoutMs: config.redisCommandTimeoutMs, lazyConnect: true }, monitor);
}

/** quit() lets replies in flight arrive; a never-connected client has nothing to say goodbye to. */
export async function closeRedisClient(client: Redis): Promise<void> {
  if (client.status === 'wait' || client.status === 'end') {
    client.disconnect();
    return;
  }
  await client.quit().catch(() => client.disconnect());
}
