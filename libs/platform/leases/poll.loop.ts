import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from '@nestjs/common';

/** Who holds a lease: this host and process, and a random part so two executors of one process differ. */
export function leaseOwnerId(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

export interface PollLoopOptions {
  /** Named in the warning when a round fails (`move executor: …`). */
  name: string;
  /** Between the end of one round and the next look. */
  intervalMs: number;
  /** One round: claim and run until nothing is claimable. */
  round: () => Promise<void>;
  logger: Pick<Logger, 'warn'>;
}

/**
 * The poll scheduler of a durable executor: one round at a time, the next one `intervalMs` after
 * the last ended (or sooner on a nudge), unref'd so it never holds a process open, and stopped —
 * waiting for the running round — on shutdown. A round that throws is logged and the loop goes on:
 * the rows stay in the database for the next look.
 */
export class PollLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private halted = false;

  constructor(private readonly options: PollLoopOptions) {}

  get stopped(): boolean {
    return this.halted;
  }

  /** Looks in `ms` (0: now) rather than at the next poll; a round already running is left to finish. */
  schedule(ms: number): void {
    if (this.halted) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.running) return;
      this.running = this.options
        .round()
        .catch((err: unknown) => this.options.logger.warn(`${this.options.name}: ${(err as Error).message}`))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.options.intervalMs);
        });
    }, ms);
    this.timer.unref();
  }

  /** No new round starts; resolves when the running one has ended. */
  async stop(): Promise<void> {
    this.halted = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /**
   * Claims and runs rows one after another until none is claimable (true) or the loop stopped (false).
   * Rounds, tests and the CLI call it through the executor's `drain()`.
   */
  async drain<T>(claim: () => Promise<T | null>, execute: (claimed: T) => Promise<unknown>): Promise<boolean> {
    for (;;) {
      if (this.halted) return false;
      const claimed = await claim();
      if (!claimed) return true;
      await execute(claimed);
    }
  }
}
