import { msUntilFull, msUntilToken, type BucketState } from './token.bucket';

/** Which bucket a header set describes, named in `RateLimit-Policy`. */
export type LimitScope = 'tenant' | 'user';

export interface ScopedBucket {
  scope: LimitScope;
  bucket: BucketState;
}

/**
 * The draft-ietf-httpapi-ratelimit-headers-06 fields (separate `RateLimit-Limit`, `-Remaining`,
 * `-Reset` and `-Policy`, the form express-rate-limit calls `draft-6`; drafts 07+ fold the first
 * three into one `RateLimit` field, which few clients read yet). A token bucket maps onto them as:
 * limit = the bucket's capacity, over a window of capacity ÷ rate seconds (`w`); remaining = whole
 * tokens left; reset = seconds until the bucket is full again. With several buckets the one closest
 * to running out speaks (draft-06 §5: "the one with the lowest remaining"); the policy lists all.
 */
export function rateLimitHeaders(buckets: ScopedBucket[]): Record<string, string> {
  if (buckets.length === 0) return {};
  return headersOf(buckets.reduce((a, b) => (remaining(b.bucket) < remaining(a.bucket) ? b : a)), buckets);
}

/** The headers of a refusal: the refusing bucket's, with `Retry-After` (whole seconds until a token, at least 1). */
export function refusalHeaders(buckets: ScopedBucket[], refusedBy: ScopedBucket): Record<string, string> {
  return { ...headersOf(refusedBy, buckets), 'Retry-After': String(Math.max(1, Math.ceil(msUntilToken(refusedBy.bucket) / 1000))) };
}

function headersOf(speaker: ScopedBucket, all: ScopedBucket[]): Record<string, string> {
  return {
    'RateLimit-Limit': String(Math.floor(speaker.bucket.capacity)),
    'RateLimit-Remaining': String(remaining(speaker.bucket)),
    'RateLimit-Reset': String(Math.ceil(msUntilFull(speaker.bucket) / 1000)),
    'RateLimit-Policy': all.map(({ scope, bucket }) => `${Math.floor(bucket.capacity)};w=${windowSeconds(bucket)};comment="${scope}"`).join(', '),
  };
}

function remaining(b: BucketState): number {
  return Math.max(0, Math.floor(b.tokens));
}

function windowSeconds(b: BucketState): number {
  return Math.max(1, Math.round(b.capacity / b.rate));
}
