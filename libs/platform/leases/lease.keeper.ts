/** The executor no longer holds its claim (taken over, finished elsewhere, or not confirmed in time): it stops, touching nothing. */
export class LeaseLost extends Error {
  constructor(message = 'lease lost') {
    super(message);
    this.name = 'LeaseLost';
  }
}

/** A claim is given up this long before its lease would run out, so two executors never overlap. */
export const LEASE_MARGIN_MS = 500;
/** The heartbeat's floor: a very short lease (tests) is still renewed at most five times a second. */
const MIN_RENEW_EVERY_MS = 200;

export interface LeaseKeeperOptions {
  /** How long one claim or renewal holds (the lease the repository wrote). */
  leaseMs: number;
  /** The repository's renew: true while this executor still holds the row. */
  renew: () => Promise<boolean>;
  marginMs?: number;
}

/**
 * Keeps one claimed row's lease while its work runs: renews every lease/3 in the background, and
 * knows until when the claim is surely still ours. The local deadline moves only on a renewal the
 * database confirmed — counted from when it was asked — so a control plane that stops answering
 * makes the executor stop before another one can have claimed the row, rather than trust a lease
 * it could not confirm. A renewal that answers "not yours" marks the lease lost for good.
 *
 * Hand-written: the lease lives in our own control tables (one row per move, onboarding, deletion,
 * export, with its own state machine), which no job-queue library's lock model fits.
 */
export class LeaseKeeper {
  private lost = false;
  private deadline: number;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly aborter = new AbortController();
  private readonly marginMs: number;

  private constructor(private readonly options: LeaseKeeperOptions) {
    this.marginMs = options.marginMs ?? LEASE_MARGIN_MS;
    this.deadline = Date.now() + options.leaseMs - this.marginMs;
    // A renewal that throws (control plane unreachable) neither extends nor loses the lease: the deadline decides.
    this.heartbeat = setInterval(() => void this.renew().catch(() => undefined), Math.max(MIN_RENEW_EVERY_MS, Math.floor(options.leaseMs / 3)));
    this.heartbeat.unref();
  }

  /** Starts keeping a lease just claimed (the claim itself counts as the first renewal). */
  static start(options: LeaseKeeperOptions): LeaseKeeper {
    return new LeaseKeeper(options);
  }

  /** Aborted (with a LeaseLost reason) once a renewal learns the row is no longer ours. */
  get signal(): AbortSignal {
    return this.aborter.signal;
  }

  /** Whether the claim may still be ours (false once lost or past the local deadline). */
  get held(): boolean {
    return !this.lost && Date.now() <= this.deadline;
  }

  /** Renews now; false (and the lease lost) when another process has the row or it ended. */
  async renew(): Promise<boolean> {
    const asked = Date.now();
    const ok = await this.options.renew();
    if (ok) this.deadline = asked + this.options.leaseMs - this.marginMs;
    else this.markLost();
    return ok;
  }

  /** Throws LeaseLost unless the claim is still ours as far as this process knows (no round trip). */
  assert(): void {
    if (!this.held) throw new LeaseLost();
  }

  /** Before a destructive step: confirms the claim in the database, not only in memory. */
  async confirm(): Promise<void> {
    this.assert();
    if (!(await this.renew())) throw new LeaseLost();
  }

  /** The work ended (done, failed, released or abandoned): no more renewals. */
  stop(): void {
    clearInterval(this.heartbeat);
  }

  private markLost(): void {
    this.lost = true;
    if (!this.aborter.signal.aborted) this.aborter.abort(new LeaseLost());
  }
}
