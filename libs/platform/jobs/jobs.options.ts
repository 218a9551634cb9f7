import type { RedisOptions } from 'ioredis';

/** Options of JobsModule.forRoot(); anything unset comes from STRATA_CONFIG. */
export interface JobsModuleOptions {
  /** A redis:// or rediss:// URL, or ioredis options. Default: STRATA_CONFIG.redisUrl, then redis://127.0.0.1:6379. */
  connection?: string | RedisOptions;
  /** BullMQ key prefix; every key of every queue (and the fairness counters) lives under it. */
  prefix?: string;
  /**
   * How long a job of a suspended tenant (or one in maintenance) is parked (delayed) before a worker
   * looks at its tenant again. Reactivation promotes parked jobs at once; this only bounds how late
   * they run when that promotion was missed (Redis down at that moment). Default 60 s.
   */
  parkDelayMs?: number;
}

export interface ResolvedJobsOptions {
  connection: RedisOptions;
  prefix: string;
  parkDelayMs: number;
}

export const DEFAULT_PARK_DELAY_MS = 60_000;

export const JOBS_OPTIONS = Symbol('JOBS_OPTIONS');
export const DEFAULT_JOBS_PREFIX = 'strata';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** ioredis options from a URL: BullMQ takes options (not a URL) and duplicates them per connection. */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`config: REDIS_URL must be redis:// or rediss://, got ${u.protocol}`);
  const db = u.pathname.replace(/^\//, '');
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // Workers block on Redis; BullMQ requires unlimited retries per request on their connections.
    maxRetriesPerRequest: null,
    retryStrategy: reconnectDelay,
  };
}

/**
 * Reconnect attempts 100 ms apart, growing to one every 2 s (ioredis' own default pace). BullMQ's
 * default grows to one every 20 s after a minute of outage, so queues and workers would come back
 * up to 20 s after Redis did; a refused TCP connect every 2 s costs Redis nothing.
 */
export function reconnectDelay(attempt: number): number {
  return Math.min(attempt * 100, 2000);
}

const PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * JOBS_PREFIX, read by every process that touches the queues: the API producing under one prefix
 * while the worker consumes another would strand every job without an error anywhere.
 */
export function jobsPrefixFrom(env: NodeJS.ProcessEnv): string {
  const raw = env.JOBS_PREFIX?.trim();
  if (!raw) return DEFAULT_JOBS_PREFIX;
  if (!PREFIX.test(raw)) throw new Error(`config: JOBS_PREFIX must match ${PREFIX.source}, got ${JSON.stringify(env.JOBS_PREFIX)}`);
  return raw;
}

export function resolveJobsOptions(options: JobsModuleOptions, redisUrl: string | undefined): ResolvedJobsOptions {
  const connection =
    typeof options.connection === 'object'
      ? { maxRetriesPerRequest: null, retryStrategy: reconnectDelay, ...options.connection }
      : redisOptionsFromUrl(options.connection ?? redisUrl ?? DEFAULT_REDIS_URL);
  return { connection, prefix: options.prefix ?? jobsPrefixFrom(process.env), parkDelayMs: options.parkDelayMs ?? DEFAULT_PARK_DELAY_MS };
}
