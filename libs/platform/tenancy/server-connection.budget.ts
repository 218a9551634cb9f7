import { Inject, Injectable } from '@nestjs/common';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { ServerCapacityError } from './tenancy.errors';

/** Which data-plane DataSource a connection belongs to: the shared one of pool and bridge tenants, or a silo tenant's. */
export type ConnectionKind = 'shared' | 'silo';
export const CONNECTION_KINDS: readonly ConnectionKind[] = ['shared', 'silo'];

/** A budget slot held by one open connection; released exactly once, however often it is called. */
export interface ServerSlot {
  release(): void;
}

/** One finished wait for admission: how long, and whether it got a slot. */
export interface AdmissionWait {
  server: string;
  kind: ConnectionKind;
  seconds: number;
  admitted: boolean;
}

interface Waiter {
  kind: ConnectionKind;
  grant(): void;
}

interface ServerState {
  open: Record<ConnectionKind, number>;
  waiters: Waiter[];
}

/** pg-pool option (createTenantDataSource): the budget and the server a TenantPgClient's connection counts against. */
export const SERVER_BUDGET_OPTION = 'strataServerBudget';
export interface ServerBudgetGate {
  budget: ServerConnectionBudget;
  kind: ConnectionKind;
}

/** `host:port`: the unit of the budget (every database of one server shares its max_connections). */
export const serverOf = (a: { host: string; port: number }): string => `${a.host}:${a.port}`;

/**
 * One instance's data-plane connections per database server (host:port), pool, bridge and silo
 * counted together, never above DB_SERVER_MAX_CONNECTIONS. A connection takes a slot before it
 * connects (TenantPgClient.connect) and gives it back when its socket ends; a connection that finds
 * the server's budget full waits in FIFO order up to DB_SERVER_ACQUIRE_TIMEOUT_MS, then fails with
 * ServerCapacityError (503 tenant_capacity) instead of PostgreSQL's "too many clients".
 *
 * Only the opening of a connection passes here, never a unit of work on a pooled one: the hot path
 * pays nothing. While someone waits, reclaimers (the silo cache) are asked to close an idle
 * connection on that server. Hand-written: a counting semaphore keyed by server with FIFO waiters,
 * a deadline and a reclaim hook is a few lines, and no pooling library counts across pools.
 */
@Injectable()
export class ServerConnectionBudget {
  readonly max: number;
  readonly acquireTimeoutMs: number;
  private readonly servers = new Map<string, ServerState>();
  private readonly reclaimers = new Set<(server: string) => boolean>();
  private readonly waitObservers = new Set<(wait: AdmissionWait) => void>();

  constructor(@Inject(STRATA_CONFIG) config: StrataConfig) {
    // Partial configs (unit tests of other parts) get the documented defaults.
    this.max = config.dbServerMaxConnections ?? 60;
    this.acquireTimeoutMs = config.dbServerAcquireTimeoutMs ?? 2000;
  }

  /**
   * A slot on `server` for one new connection: at once when the budget has room, else after
   * waiting up to `waitMs` (DB_SERVER_ACQUIRE_TIMEOUT_MS by default) for one to be released.
   */
  acquire(server: string, kind: ConnectionKind, waitMs = this.acquireTimeoutMs): Promise<ServerSlot> {
    const state = this.stateOf(server);
    if (state.waiters.length === 0 && this.openOn(state) < this.max) return Promise.resolve(this.take(state, kind));
    const started = performance.now();
    return new Promise<ServerSlot>((resolve, reject) => {
      const finish = (admitted: boolean) => {
        const seconds = (performance.now() - started) / 1000;
        for (const observe of this.waitObservers) observe({ server, kind, seconds, admitted });
      };
      const waiter: Waiter = {
        kind,
        grant: () => {
          clearTimeout(timer);
          finish(true);
          resolve(this.take(state, kind));
        },
      };
      const timer = setTimeout(() => {
        const at = state.waiters.indexOf(waiter);
        if (at >= 0) state.waiters.splice(at, 1);
        finish(false);
        reject(new ServerCapacityError(this.max));
      }, waitMs);
      state.waiters.push(waiter);
      // One connection closed per waiter: the first reclaimer that has one to spare.
      for (const reclaim of this.reclaimers) if (reclaim(server)) break;
    });
  }

  /**
   * Called with a server whose budget someone waits on: close one idle connection there if one may
   * go, and say whether it did (its slot then reaches the waiter when its socket ends).
   */
  onPressure(reclaim: (server: string) => boolean): () => void {
    this.reclaimers.add(reclaim);
    return () => this.reclaimers.delete(reclaim);
  }

  /** Every finished admission wait (metrics: the wait histogram). */
  onWait(observe: (wait: AdmissionWait) => void): () => void {
    this.waitObservers.add(observe);
    return () => this.waitObservers.delete(observe);
  }

  /** Open connections and admission waiters per server and kind, for gauges and tests. */
  stats(): Array<{ server: string; kind: ConnectionKind; open: number; waiting: number }> {
    const out = [];
    for (const [server, state] of this.servers) {
      for (const kind of CONNECTION_KINDS) {
        out.push({ server, kind, open: state.open[kind], waiting: state.waiters.filter((w) => w.kind === kind).length });
      }
    }
    return out;
  }

  /** Open connections to `server`, all kinds. */
  openOnServer(server: string): number {
    const state = this.servers.get(server);
    return state ? this.openOn(state) : 0;
  }

  private take(state: ServerState, kind: ConnectionKind): ServerSlot {
    state.open[kind]++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        state.open[kind]--;
        // Handed straight to the first waiter: a newcomer cannot barge past the queue.
        const next = state.waiters.shift();
        if (next) next.grant();
      },
    };
  }

  private openOn(state: ServerState): number {
    return state.open.shared + state.open.silo;
  }

  private stateOf(server: string): ServerState {
    let state = this.servers.get(server);
    if (!state) {
      state = { open: { shared: 0, silo: 0 }, waiters: [] };
      this.servers.set(server, state);
    }
    return state;
  }
}
