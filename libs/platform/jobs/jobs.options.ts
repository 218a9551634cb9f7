import type { RedisOptions } from 'ioredis';

/** Options of JobsModule.forRoot(); anything unset comes from STRATA_CONFIG. */
export interface JobsModuleOptions {
  /** A redis:// or rediss:// URL, or ioredis options. Default: STRATA_CONFIG.redisUrl, then redis://127.0.0.1:6379. */
  connection?: string | RedisOptions;
  /** BullMQ key prefix; every key of every queue (and the fairness counters) lives under it. */
  prefix?: string;
}

export interface ResolvedJobsOptions {
  connection: RedisOptions;
  prefix: string;
}

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
  };
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
      ? { maxRetriesPerRequest: null, ...options.connection }
      : redisOptionsFromUrl(options.connection ?? redisUrl ?? DEFAULT_REDIS_URL);
  return { connection, prefix: options.prefix ?? jobsPrefixFrom(process.env) };
}
