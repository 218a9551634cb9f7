import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { leaseOwnerId, PollLoop } from './poll.loop';

/**
 * What every durable executor (moves, onboarding, offboarding, exports) does around its state
 * machine: it polls while its process is allowed to run them, looks at once when work is requested
 * in this process (`nudge`), and on shutdown lets the running round finish before the process ends.
 * The subclass says whether it polls and what one round does (`drain`, also called by tests and the CLI).
 */
export abstract class LeasedExecutor implements OnApplicationBootstrap, OnApplicationShutdown {
  /** Who holds this executor's leases. */
  readonly owner = leaseOwnerId();
  protected readonly logger: Logger;
  protected readonly poll: PollLoop;

  /** `name`: the warning's prefix (`move executor`); `loggerName`: the Nest logger's context. */
  protected constructor(name: string, loggerName: string, pollMs: number) {
    this.logger = new Logger(loggerName);
    // drain() is looked up per round: the subclass's fields are set by then.
    this.poll = new PollLoop({ name, intervalMs: pollMs, round: () => this.drain(), logger: this.logger });
  }

  /** Whether this process runs rounds on its own (its executor flag); drain() works either way. */
  protected abstract polls(): boolean;

  /** Claims and runs rows until none is claimable. */
  abstract drain(): Promise<void>;

  onApplicationBootstrap(): void {
    if (this.polls()) this.poll.schedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.poll.stop();
  }

  /** Work was requested (or released for a retry) in this process: look in `ms` rather than at the next poll. */
  nudge(ms = 0): void {
    if (this.polls()) this.poll.schedule(ms);
  }
}
