/**
 * A token bucket as plain numbers: `capacity` tokens at most (the burst), refilled at `rate` per
 * second, one token per request. Kept apart from any store so the math is tested on its own; the
 * shared buckets (shared.buckets.ts) hold one of these per key and correct it from Redis.
 */
export interface BucketState {
  /** Tokens left as of `at`; negative after another instance's overshoot (a debt, repaid by refill). */
  tokens: number;
  /** Milliseconds (a monotonic clock) of `tokens`. */
  at: number;
  rate: number;
  capacity: number;
}

export interface BucketLimit {
  /** Tokens per second. */
  rate: number;
  /** Most tokens held: rate × RATE_LIMIT_BURST_SECONDS. */
  capacity: number;
}

/** Brings `tokens` up to `now`; never above capacity. */
export function refill(b: BucketState, now: number): void {
  if (now > b.at) {
    b.tokens = Math.min(b.capacity, b.tokens + ((now - b.at) * b.rate) / 1000);
    b.at = now;
  }
}

/**
 * A plan change: the new rate from now on, the tokens held kept but never above the new capacity
 * (lowering a plan takes effect at once; raising it does not hand out a burst that was not earned).
 */
export function retarget(b: BucketState, limit: BucketLimit, now: number): void {
  if (b.rate === limit.rate && b.capacity === limit.capacity) return;
  refill(b, now);
  b.rate = limit.rate;
  b.capacity = limit.capacity;
  b.tokens = Math.min(b.tokens, limit.capacity);
}

/** Whether one request fits now (the bucket refilled first). */
export function hasToken(b: BucketState, now: number): boolean {
  refill(b, now);
  return b.tokens >= 1;
}

/** Milliseconds until one token is there (0 when one is). */
export function msUntilToken(b: BucketState): number {
  return b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) * 1000) / b.rate);
}

/** Milliseconds until the bucket is full again. */
export function msUntilFull(b: BucketState): number {
  return b.tokens >= b.capacity ? 0 : Math.ceil(((b.capacity - b.tokens) * 1000) / b.rate);
}
