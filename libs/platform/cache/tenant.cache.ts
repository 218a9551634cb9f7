import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { TenantContext } from '#strata/tenancy/platform';
import { globLiteral, unlinkMatching } from './redis.keys';
import { REDIS_CLIENT, requireRedis, RedisNotConfiguredError, SHARED_REDIS_CONNECTION, type RedisClient } from './redis.client';
import { RedisMonitor } from './redis.monitor';

export const TENANT_CACHE_OPTIONS = Symbol('TENANT_CACHE_OPTIONS');

export interface TenantCacheOptions {
  /**
   * Prepended to every key (`{namespace}t:{tenantId}:{key}`). Empty in the app; tests sharing one
   * Redis set a unique one so they neither see nor delete each other's keys.
   */
  namespace?: string;
}

export class TenantCacheKeyError extends Error {
  constructor(key: unknown) {
    super(
      `invalid cache key ${JSON.stringify(String(key).slice(0, 80))}: 1..${MAX_KEY_LENGTH} printable ASCII characters, ` +
        `no spaces and none of * ? [ ] \\ (keys must never act as a SCAN pattern)`,
    );
    this.name = 'TenantCacheKeyError';
  }
}

const MAX_KEY_LENGTH = 256;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;
// Glob metacharacters: a key must never read as a pattern if it reaches a MATCH or a log grep.
const GLOB_CHARS = /[*?[\]\\]/;
const NAMESPACE_RULE = /^[A-Za-z0-9:._-]{0,64}$/;

/** Escapes Redis glob metacharacters so a literal prefix stays literal inside MATCH. */

/**
 * Tenant-scoped JSON cache. The tenant comes from TenantContext, never from an argument, so code
 * cannot read or write another tenant's keys by passing the wrong id; without a context every
 * method throws MissingTenantContextError before touching Redis (fail closed).
 */
@Injectable()
export class TenantCache {
  private readonly logger = new Logger(TenantCache.name);
  private readonly namespace: string;
  /** Concurrent wrap() misses of one key in this process share one loader call. */
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(
    @Inject(REDIS_CLIENT) private readonly client: RedisClient,
    private readonly context: TenantContext,
    private readonly monitor: RedisMonitor,
    @Inject(TENANT_CACHE_OPTIONS) options: TenantCacheOptions = {},
  ) {
    this.namespace = options.namespace ?? '';
    if (!NAMESPACE_RULE.test(this.namespace)) throw new Error(`cache namespace must match ${NAMESPACE_RULE}`);
  }

  /** The cached value, or undefined on a miss. */
  async get<T>(key: string): Promise<T | undefined> {
    const full = this.keyFor(key, 'reading the cache');
    const raw = await this.redis().get(full);
    return raw === null ? undefined : (JSON.parse(raw) as T);
  }

  async set<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    const full = this.keyFor(key, 'writing the cache');
    const json = encode(value);
    // Every entry expires: a cache without TTLs is a second database nobody migrates.
    await this.redis().set(full, json, 'EX', ttl(ttlSeconds));
  }

  /** True when the key existed. */
  async del(key: string): Promise<boolean> {
    const full = this.keyFor(key, 'deleting from the cache');
    return (await this.redis().unlink(full)) > 0;
  }

  /**
   * Read-through: the cached value, or `loader()`'s result stored for `ttlSeconds`. A Redis
   * failure degrades to calling the loader (the cache is an optimisation, not a dependency);
   * a missing tenant or missing REDIS_URL still throws. `undefined` results are not cached.
   */
  async wrap<T>(key: string, ttlSeconds: number, loader: () => Promise<T>): Promise<T> {
    const full = this.keyFor(key, 'reading the cache');
    const seconds = ttl(ttlSeconds);
    const redis = this.redis();
    const pending = this.inflight.get(full) as Promise<T> | undefined;
    if (pending) return pending;
    const load = (async () => {
      const raw = await redis.get(full).catch((err: Error) => this.degraded('get', err));
      if (raw !== null && raw !== undefined) return JSON.parse(raw) as T;
      const value = await loader();
      if (value !== undefined) await redis.set(full, encode(value), 'EX', seconds).catch((err: Error) => this.degraded('set', err));
      return value;
    })();
    this.inflight.set(full, load);
    try {
      return await load;
    } finally {
      this.inflight.delete(full);
    }
  }

  /**
   * Removes every key of the current tenant. SCAN walks the keyspace in steps of ~500 without
   * blocking Redis (KEYS would stall every other client on a large keyspace); UNLINK frees memory
   * off the main thread. Returns how many keys were removed. Keys written during the walk may
   * survive; callers that need a hard cut combine this with versioned keys.
   */
  async invalidateTenant(): Promise<number> {
    const tenantId = this.context.require('invalidating the tenant cache').tenant.id;
    return unlinkMatching(this.redis(), `${globLiteral(this.prefixOf(tenantId))}*`);
  }

  private prefixOf(tenantId: string): string {
    return `${this.namespace}t:${tenantId}:`;
  }

  /** The context check comes first: no tenant means no Redis access at all. */
  private keyFor(key: string, what: string): string {
    const tenantId = this.context.require(what).tenant.id;
    if (typeof key !== 'string' || key.length > MAX_KEY_LENGTH || !PRINTABLE_ASCII.test(key) || GLOB_CHARS.test(key)) {
      throw new TenantCacheKeyError(key);
    }
    return this.prefixOf(tenantId) + key;
  }

  private redis(): Redis {
    return requireRedis(this.client, 'TenantCache');
  }

  private degraded(op: string, err: Error): undefined {
    if (err instanceof RedisNotConfiguredError) throw err;
    // An outage is logged once by the monitor, not once per request it slows down.
    const log = this.monitor.isDown(SHARED_REDIS_CONNECTION) ? 'debug' : 'warn';
    this.logger[log](`cache ${op} failed, serving without the cache: ${err.message}`);
    return undefined;
  }
}

function ttl(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`cache TTL must be a whole number of seconds >= 1, got ${seconds}`);
  return seconds;
}

function encode(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new Error('cache values must be JSON-serialisable (undefined and functions are not)');
  return json;
}
