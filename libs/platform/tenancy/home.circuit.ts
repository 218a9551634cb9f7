import { Injectable, Logger } from '@nestjs/common';
import { TenantUnavailableError } from './tenancy.errors';

// First wait after a home's server refused a unit, doubled per failed trial up to the cap: a
// restart (seconds) is noticed within a fraction of a second, a long outage costs one connection
// attempt per 2 s instead of one per request, and a server that is back waits at most 2 s for it.
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 2000;

interface OpenCircuit {
  since: number;
  failures: number;
  openUntil: number;
  reason: string;
  /** A trial unit is on its way to the server: everyone else keeps failing fast until it reports. */
  trial: boolean;
  /** Connection attempts let through since the circuit opened (the first failure and every trial). */
  attempts: number;
}

/** What readiness and metrics show of one home whose server cannot be reached. */
export interface DegradedHome {
  home: string;
  since: string;
  reason: string;
  failures: number;
  attempts: number;
  retryInMs: number;
}

/**
 * One circuit per home address (`host:port/database`: a pool server's database, or a silo
 * database). Hand-written because the breaker libraries (opossum, cockatiel) wrap one function per
 * breaker and count failure ratios over windows; here the key is the placement, the only failure
 * that counts is "the server cannot be reached" (a 23505 is not the server's fault), and the state
 * must be readable by readiness. Closed circuits cost nothing: the manager asks only when one is open.
 */
@Injectable()
export class HomeCircuits {
  private readonly logger = new Logger('HomeCircuits');
  private readonly open = new Map<string, OpenCircuit>();

  /** Whether any circuit is open (the manager's fast path skips everything else when none is). */
  get anyOpen(): boolean {
    return this.open.size > 0;
  }

  /**
   * Lets a unit for `home` through, or throws a fast 503 while its circuit is open. Once the backoff
   * has passed, exactly one unit goes through as the trial; its outcome closes or reopens the circuit.
   */
  admit(home: string, now = Date.now()): 'closed' | 'trial' {
    const circuit = this.open.get(home);
    if (!circuit) return 'closed';
    if (circuit.trial || now < circuit.openUntil) {
      const waitMs = Math.max(circuit.openUntil - now, 0);
      throw new TenantUnavailableError(
        "this tenant's database cannot be reached right now; retry shortly",
        Math.max(1, Math.ceil(waitMs / 1000)),
      );
    }
    circuit.trial = true;
    circuit.attempts += 1;
    return 'trial';
  }

  /**
   * A unit for `home` could not reach its server: open the circuit, or (a failed trial) back off
   * further. Units that were already on their way when the circuit opened fail too, but only the
   * first failure and the trials count, so a burst of in-flight units does not jump to the longest wait.
   */
  failed(home: string, reason: string, admitted: 'closed' | 'trial', now = Date.now()): void {
    let circuit = this.open.get(home);
    if (!circuit) {
      circuit = { since: now, failures: 0, openUntil: now, reason, trial: false, attempts: 1 };
      this.open.set(home, circuit);
      this.logger.warn(`database ${home} cannot be reached (${reason}); its tenants answer 503 until a trial connection succeeds`);
    } else if (admitted !== 'trial') {
      circuit.reason = reason;
      return;
    }
    circuit.failures += 1;
    circuit.reason = reason;
    circuit.trial = false;
    circuit.openUntil = now + Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.min(circuit.failures - 1, 16));
  }

  /** A unit for `home` reached its server: close the circuit. */
  succeeded(home: string, now = Date.now()): void {
    const circuit = this.open.get(home);
    if (!circuit) return;
    this.open.delete(home);
    this.logger.log(`database ${home} reachable again after ${now - circuit.since} ms (${circuit.attempts} connection attempts while it was down)`);
  }

  /** A trial unit ended before it reached the server (its client left, say): let the next unit try. */
  abandoned(home: string): void {
    const circuit = this.open.get(home);
    if (circuit) circuit.trial = false;
  }

  /** The homes whose circuit is open, for readiness (degraded, not down) and metrics. */
  degraded(now = Date.now()): DegradedHome[] {
    return [...this.open].map(([home, c]) => ({
      home,
      since: new Date(c.since).toISOString(),
      reason: c.reason,
      failures: c.failures,
      attempts: c.attempts,
      retryInMs: Math.max(c.openUntil - now, 0),
    }));
  }
}
