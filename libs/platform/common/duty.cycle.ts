/**
 * A duty cycle for bulk work on servers that also serve tenants (a move's copy and checksums, an
 * export's scan, emptying a shared home): after each piece, rest `ratio` times as long as it took,
 * so the work leaves that share of the server's CPU to the tenants still served there. Written by
 * hand: a rate limiter caps requests per second, while this caps the share of time the work runs,
 * whatever each piece costs (bench:move measured the neighbours' p99 at 3–12× during an
 * unthrottled copy on 2 cores).
 */
export class DutyCycle {
  constructor(private readonly ratio: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const result = await work();
    const rest = (performance.now() - started) * this.ratio;
    if (rest >= 1) await new Promise((r) => setTimeout(r, rest));
    return result;
  }
}

/** Work at full speed: no rest. */
export const FULL_SPEED = new DutyCycle(0);
