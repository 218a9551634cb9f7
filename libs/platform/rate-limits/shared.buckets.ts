import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { isRedisUnavailableError } from '#strata/cache';
import { refill, retarget, type BucketLimit, type BucketState } from './token.bucket';

/**
 * One round trip applies an instance's consumption to the shared bucket and answers what is left.
 * Refill uses Redis' clock (TIME), so instances' clocks never need to agree. The debt is floored at
 * one capacity: an overshoot is paid back, a flood does not lock a tenant out for minutes. The key
 * expires when the bucket would be full anyway (absent = full).
 */
const SYNC_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delta = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(v[1])
local at = tonumber(v[2])
if tokens == nil or at == nil then tokens = cap; at = now end
if now > at then tokens = tokens + (now - at) * rate / 1000 end
if tokens > cap then tokens = cap end
tokens = tokens - delta
if tokens < -cap then tokens = -cap end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) * 1000 / rate) + 1000)
return tostring(tokens)
`;
const COMMAND = 'strataRateLimitSync';

type SyncingRedis = Redis & { [COMMAND](key: string, delta: number, rate: number, capacity: number): Promise<string> };

export interface SharedBucket extends BucketState {
  readonly key: string;
  /** Taken here since the last sync was sent. */
  pending: number;
  /** When the last sync answered or failed (monotonic ms); -Infinity before the first. */
  syncedAt: number;
  /** The sync in flight, which a request on a stale bucket waits for. */
  syncing: Promise<void> | undefined;
}

export interface SharedBucketsOptions {
  /** null: no Redis configured, every instance limits on its own (the embedded demo). */
  redis: Redis | null;
  /** Redis key prefix of this deployment (per control plane). */
  keyPrefix: string;
  /** Background sync period (RATE_LIMIT_SYNC_MS). */
  syncMs: number;
  /** Local buckets kept (RATE_LIMIT_MAX_KEYS), least recently used dropped first. */
  maxKeys: number;
  now?: () => number;
}

/**
 * Token buckets shared by every instance through Redis, without a Redis round trip per request.
 *
 * Each instance decides on its local copy of a bucket (refilled locally at the full rate) and takes
 * tokens from it synchronously. Every `syncMs` one pipelined batch pushes each touched bucket's
 * local consumption to Redis, which applies it to the shared bucket and answers its level; the
 * local copy becomes that level minus what was taken here since. A bucket that took a tenth of its
 * burst since its last sync is sent at once, in the background. So instances see each other's
 * consumption within one sync period, or one round trip after a tenth of a burst; together they can
 * overshoot by what the others took and have not sent yet (about rate × syncMs each at the limit,
 * at most a tenth of a burst each in a burst), charged to the shared bucket as a debt, repaid before
 * more is allowed.
 *
 * A bucket not synced within `staleMs` (first request of a key on this instance, or one idle for
 * a while) makes its request wait for one sync, so an instance never lets through a burst on a
 * stale "full" copy. Steadily used keys never wait. Redis down or absent: each instance keeps
 * limiting on its local copy (the limit holds per instance) and never waits on Redis (a failed sync
 * counts as one, so only one request per `staleMs` pays a failing call).
 *
 * Hand-written: rate-limiter-flexible (used for the anonymous routes, see login.throttle.ts) asks
 * Redis on every consume; its `inMemoryBlockOnConsumed` only skips Redis once a key is blocked.
 */
export class SharedBuckets {
  private readonly logger = new Logger(SharedBuckets.name);
  private readonly buckets: LRUCache<string, SharedBucket>;
  /** Buckets with consumption not yet sent; kept apart from the LRU so an evicted one is still sent once. */
  private readonly dirty = new Set<SharedBucket>();
  private readonly redis: SyncingRedis | null;
  private readonly now: () => number;
  private readonly staleMs: number;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private flushSoon: NodeJS.Immediate | undefined;
  private failing = false;

  constructor(private readonly options: SharedBucketsOptions) {
    this.buckets = new LRUCache({ max: options.maxKeys });
    this.now = options.now ?? (() => performance.now());
    // A bucket used at least this often stays in the background sync and never waits.
    this.staleMs = Math.max(1000, options.syncMs * 5);
    const redis = options.redis as SyncingRedis | null;
    if (redis && typeof redis[COMMAND] !== 'function') redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: SYNC_SCRIPT });
    this.redis = redis;
  }

  start(): void {
    if (!this.redis || this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.options.syncMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.flushSoon) clearImmediate(this.flushSoon);
    this.flushSoon = undefined;
    this.timer = undefined;
    await this.flush();
  }

  get size(): number {
    return this.buckets.size;
  }

  /**
   * The local bucket of `key`, current enough to decide on: at once when it was synced recently,
   * else after one sync (shared by the requests that arrive meanwhile).
   */
  bucket(key: string, limit: BucketLimit): SharedBucket | Promise<SharedBucket> {
    const now = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { key, tokens: limit.capacity, at: now, rate: limit.rate, capacity: limit.capacity, pending: 0, syncedAt: -Infinity, syncing: undefined };
      this.buckets.set(key, b);
    } else {
      retarget(b, limit, now);
    }
    if (!this.redis || now - b.syncedAt < this.staleMs) return b;
    const bucket = b;
    return (bucket.syncing ??= this.sync([bucket])).then(() => bucket);
  }

  /**
   * Takes one token (the caller checked there is one). A bucket that has taken a tenth of its burst
   * since its last sync is sent at once (in the background, after this turn of the event loop), so
   * what other instances cannot see yet stays a tenth of a burst, not up to a whole one.
   */
  take(b: SharedBucket): void {
    b.tokens -= 1;
    if (!this.redis) return;
    b.pending += 1;
    this.dirty.add(b);
    // Not while Redis fails: the timer's retry is enough, a send per request would only fail faster.
    if (b.pending >= Math.max(1, b.capacity / 10) && !this.flushSoon && !this.failing) {
      this.flushSoon = setImmediate(() => {
        this.flushSoon = undefined;
        void this.flush();
      });
    }
  }

  /** Sends every bucket's consumption since the last flush; one pipeline, one round trip. */
  flush(): Promise<void> {
    if (this.flushing || this.dirty.size === 0) return this.flushing ?? Promise.resolve();
    // A bucket a request is syncing stays dirty: what it takes meanwhile goes out with the next flush.
    const batch: SharedBucket[] = [];
    for (const b of this.dirty) {
      if (b.syncing) continue;
      batch.push(b);
      this.dirty.delete(b);
    }
    const done = (this.flushing = this.sync(batch).finally(() => (this.flushing = undefined)));
    return done;
  }

  private async sync(batch: SharedBucket[]): Promise<void> {
    if (!this.redis || batch.length === 0) return;
    const sent = batch.map((b) => {
      const delta = b.pending;
      b.pending = 0;
      return delta;
    });
    let replies: Array<[Error | null, unknown]> | null = null;
    let failure: unknown;
    try {
      const pipeline = this.redis.pipeline() as unknown as Record<string, (...args: unknown[]) => unknown> & { exec(): Promise<Array<[Error | null, unknown]> | null> };
      batch.forEach((b, i) => pipeline[COMMAND](`${this.options.keyPrefix}:${b.key}`, sent[i], b.rate, b.capacity));
      replies = await pipeline.exec();
    } catch (err) {
      failure = err;
    }
    const now = this.now();
    batch.forEach((b, i) => {
      const [err, value] = replies?.[i] ?? [failure ?? new Error('no reply'), null];
      b.syncedAt = now;
      b.syncing = undefined;
      if (err) {
        // Kept for the next sync (at most one burst of it), so a Redis outage does not forgive a flood.
        b.pending = Math.min(b.capacity, b.pending + sent[i]);
        // Bounded like the LRU: an outage over more keys than that forgets the rest's counts.
        if (b.pending > 0 && this.dirty.size < this.options.maxKeys) this.dirty.add(b);
        failure ??= err;
        return;
      }
      const shared = Number(value);
      if (!Number.isFinite(shared)) return;
      refill(b, now);
      b.tokens = Math.min(b.capacity, shared - b.pending);
      b.at = now;
    });
    // Redis being down is the monitor's to report (one line per connection per outage); anything else is ours.
    const message = `rate limits counted per instance until Redis answers: ${(failure as Error)?.message ?? failure}`;
    if (failure && !this.failing) isRedisUnavailableError(failure) ? this.logger.debug(message) : this.logger.warn(message);
    if (!failure && this.failing) this.logger.debug('rate limits shared through Redis again');
    this.failing = Boolean(failure);
  }
}
