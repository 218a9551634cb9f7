import { ApiException } from '#strata/common';
import { AuthErrorCode } from './auth.errors';

/**
 * At most `concurrency` password hashes at once per process, `queueMax` more waiting, the rest
 * refused (429 rate_limited, Retry-After: 1). scrypt runs on libuv's thread pool, which file and DNS
 * work and TLS share: 16 concurrent bad logins held all 4 default threads and slowed another
 * tenant's download from 6 ms to 240 ms. Bounded here, hashing keeps the other threads free
 * (apps raise UV_THREADPOOL_SIZE too: apps/api/src/threadpool.setup.ts).
 *
 * Hand-written (a counter and a FIFO): p-limit, the usual choice, is not a dependency of this repo
 * (only a transitive one) and has no bound on its queue.
 */
export class HashingGate {
  private active = 0;
  private peak = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private concurrency: number,
    private queueMax: number,
  ) {}

  configure(concurrency: number, queueMax: number): void {
    this.concurrency = concurrency;
    this.queueMax = queueMax;
  }

  /** Hashes running now, the most ever at once, and those waiting. */
  get stats(): { inFlight: number; peakInFlight: number; queued: number } {
    return { inFlight: this.active, peakInFlight: this.peak, queued: this.waiting.length };
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) {
      if (this.waiting.length >= this.queueMax) {
        throw new ApiException(429, AuthErrorCode.RateLimited, 'too many password checks at once; retry in 1 s', { 'Retry-After': '1' });
      }
      // The slot is handed over by the finishing hash (active stays counted), so no newcomer can jump the queue.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    this.peak = Math.max(this.peak, this.active);
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** The process's gate: HASH_CONCURRENCY / HASH_QUEUE_MAX, applied by AuthModule at startup. */
export const PASSWORD_HASHING = new HashingGate(2, 64);
