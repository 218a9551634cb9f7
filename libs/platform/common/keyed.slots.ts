/**
 * At most `limit` holders per key at once; the excess waits in a FIFO per key, bounded in length
 * and in time. Behind the per-tenant concurrency budget of requests (libs/platform/capacity) and
 * the per-tenant job cap (libs/platform/jobs).
 *
 * Hand-written because no installed library does it per key with a bounded wait: p-limit is one
 * limiter per instance with an unbounded queue and no timeout (one per tenant would never be
 * removed), rate-limiter-flexible limits rates, not concurrency (nothing is given back). This is a
 * Map of small records: a key holding nothing and with nobody waiting is deleted at once, so memory
 * follows the tenants busy right now, not the tenants ever seen.
 */

/** Why a wait for a slot ended without one. */
export type SlotWaitFailure = 'queue_full' | 'timed_out' | 'cancelled';

export class SlotWaitError extends Error {
  constructor(readonly reason: SlotWaitFailure, readonly key: string) {
    super(`no slot for ${key}: ${reason.replace('_', ' ')}`);
    this.name = 'SlotWaitError';
  }
}

/** How a waiter learns that whoever waits has gone (an HTTP client that left); tenancy's UnitCancellation fits. */
export interface SlotWaitCancellation {
  readonly cancelled: boolean;
  onCancel(listener: () => void): () => void;
}

interface Waiter {
  resolve(): void;
  reject(err: SlotWaitError): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  stopCancel: (() => void) | undefined;
}

interface KeySlots {
  held: number;
  waiters: Waiter[] | undefined;
}

export interface KeyedSlotsOptions {
  /** Most waiters per key; one more is refused at once (`queue_full`). */
  queueMax: number;
  /** Longest a waiter waits (`timed_out`); 0 refuses at once instead of waiting. */
  waitMs: number;
}

export class KeyedSlots {
  private readonly slots = new Map<string, KeySlots>();

  constructor(private readonly options: KeyedSlotsOptions) {}

  /**
   * A slot of `key`: `true` when taken at once (the fast path: one Map lookup, no allocation beyond
   * the key's record), else a promise that resolves when a holder hands its slot over (FIFO: a
   * freed slot goes to the oldest waiter, never to a newcomer) or rejects with SlotWaitError.
   * Every `true` and every resolved promise must be paired with one give(key).
   */
  take(key: string, limit: number, cancellation?: SlotWaitCancellation, waitMs = this.options.waitMs): true | Promise<void> {
    let slots = this.slots.get(key);
    if (!slots) {
      slots = { held: 0, waiters: undefined };
      this.slots.set(key, slots);
    }
    if (slots.held < limit && !slots.waiters?.length) {
      slots.held++;
      return true;
    }
    const queued = slots.waiters?.length ?? 0;
    if (queued >= this.options.queueMax || waitMs <= 0 || cancellation?.cancelled) {
      this.forgetIfIdle(key, slots);
      return Promise.reject(new SlotWaitError(cancellation?.cancelled ? 'cancelled' : queued >= this.options.queueMax ? 'queue_full' : 'timed_out', key));
    }
    const waiters = (slots.waiters ??= []);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined, stopCancel: undefined };
      const leave = (reason: SlotWaitFailure) => {
        const at = waiters.indexOf(waiter);
        if (at < 0) return;
        waiters.splice(at, 1);
        settle(waiter);
        this.forgetIfIdle(key, slots);
        reject(new SlotWaitError(reason, key));
      };
      waiter.timer = setTimeout(() => leave('timed_out'), waitMs);
      if (cancellation) waiter.stopCancel = cancellation.onCancel(() => leave('cancelled'));
      waiters.push(waiter);
    });
  }

  /** Gives a slot of `key` back: to the oldest waiter if there is one, else it is free. */
  give(key: string): void {
    const slots = this.slots.get(key);
    if (!slots) return;
    const next = slots.waiters?.shift();
    if (next) {
      // Handed over: `held` stays as it is.
      settle(next);
      next.resolve();
      return;
    }
    if (slots.held > 0) slots.held--;
    this.forgetIfIdle(key, slots);
  }

  /** Slots of `key` held right now. */
  held(key: string): number {
    return this.slots.get(key)?.held ?? 0;
  }

  /** Waiters of `key` right now. */
  waiting(key: string): number {
    return this.slots.get(key)?.waiters?.length ?? 0;
  }

  /** Keys with a holder or a waiter (the rest are not kept). */
  get size(): number {
    return this.slots.size;
  }

  private forgetIfIdle(key: string, slots: KeySlots): void {
    if (slots.held === 0 && !slots.waiters?.length && this.slots.get(key) === slots) this.slots.delete(key);
  }
}

function settle(waiter: Waiter): void {
  if (waiter.timer) clearTimeout(waiter.timer);
  waiter.stopCancel?.();
}
