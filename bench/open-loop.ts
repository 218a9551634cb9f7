import { Pool } from 'undici';

/**
 * A bounded open-loop HTTP load generator for `npm run bench:move`: requests leave on a fixed
 * schedule (request i is due at start + i / rate), whether or not earlier ones have answered, so a
 * server that stalls is seen as latency rather than hidden by a client that waits (coordinated
 * omission). Latency is measured from the scheduled time, not from when the request left, so a
 * late timer or a full connection pool counts against the server's answer time as a user would see it.
 *
 * Bounded three ways: a request count, a wall-clock deadline, and a cap on requests in flight
 * (past it, a due request is skipped and counted, never queued without bound).
 */

/** Wall-clock milliseconds with sub-millisecond resolution (comparable with PostgreSQL's now()). */
export const clock = (): number => performance.timeOrigin + performance.now();

export interface PlannedRequest<M = unknown> {
  op: string;
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Anything the caller wants back with the sample (the invoice number sent, say). */
  meta?: M;
  /** Parse the JSON answer of a 2xx into `sample.response`. */
  wantBody?: boolean;
}

export interface Sample<M = unknown> {
  op: string;
  /** When the schedule said the request was due (wall-clock ms). */
  intended: number;
  /** When the answer (or the error) arrived. */
  done: number;
  /** HTTP status; 0 for a network error or timeout. */
  status: number;
  error?: string;
  meta?: M;
  response?: unknown;
}

export interface OpenLoopOptions<M> {
  name: string;
  /** http://127.0.0.1:port — anything else is refused. */
  origin: string;
  rate: number;
  /** Builds request number `seq` (0-based); null skips that slot (counted as skipped). */
  plan: (seq: number) => PlannedRequest<M> | null;
  maxRequests: number;
  maxDurationMs: number;
  maxInFlight: number;
  connections: number;
  timeoutMs: number;
}

export class OpenLoop<M = unknown> {
  readonly samples: Sample<M>[] = [];
  /** Due slots not sent because `maxInFlight` requests were already waiting (or plan() returned null). */
  skipped = 0;
  private readonly pool: Pool;
  private issued = 0;
  private inFlight = 0;
  private stopped = false;
  private started = 0;
  private timer: NodeJS.Timeout | undefined;
  private idle: Array<() => void> = [];
  /** Scheduled times of the requests in flight. */
  private readonly pending = new Set<number>();
  private ended?: Promise<void>;

  constructor(private readonly opts: OpenLoopOptions<M>) {
    const u = new URL(opts.origin);
    if (u.hostname !== '127.0.0.1') throw new Error(`${opts.name}: load goes to 127.0.0.1 only, not ${u.hostname}`);
    this.pool = new Pool(opts.origin, {
      connections: opts.connections,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  get inflight(): number {
    return this.inFlight;
  }

  /** The scheduled time of the oldest request still waiting for its answer; Infinity when none is. */
  oldestInFlight(): number {
    let oldest = Infinity;
    for (const t of this.pending) if (t < oldest) oldest = t;
    return oldest;
  }

  /** Most requests in flight at once. */
  get inflightCap(): number {
    return this.opts.maxInFlight;
  }

  /** Offered rate (requests/s). */
  get rate(): number {
    return this.opts.rate;
  }

  start(): void {
    this.started = clock();
    this.tick();
  }

  /** Stops issuing and waits for the requests in flight (each bounded by the timeout). */
  stop(): Promise<void> {
    this.ended ??= (async () => {
      this.stopped = true;
      clearTimeout(this.timer);
      if (this.inFlight) await new Promise<void>((resolve) => this.idle.push(resolve));
      await this.pool.close().catch(() => undefined);
    })();
    return this.ended;
  }

  private tick = (): void => {
    if (this.stopped) return;
    const now = clock();
    const elapsed = now - this.started;
    if (elapsed > this.opts.maxDurationMs || this.issued >= this.opts.maxRequests) {
      void this.stop();
      return;
    }
    const due = Math.min(this.opts.maxRequests, Math.floor((elapsed * this.opts.rate) / 1000) + 1);
    while (this.issued < due) {
      const seq = this.issued++;
      const intended = this.started + (seq * 1000) / this.opts.rate;
      if (this.inFlight >= this.opts.maxInFlight) {
        this.skipped++;
        continue;
      }
      const req = this.opts.plan(seq);
      if (!req) {
        this.skipped++;
        continue;
      }
      void this.fire(req, intended);
    }
    this.timer = setTimeout(this.tick, 1);
  };

  private async fire(req: PlannedRequest<M>, intended: number): Promise<void> {
    this.inFlight++;
    this.pending.add(intended);
    const sample: Sample<M> = { op: req.op, intended, done: 0, status: 0, meta: req.meta };
    try {
      const res = await this.pool.request({ method: req.method, path: req.path, headers: req.headers, body: req.body });
      const text = await res.body.text();
      sample.status = res.statusCode;
      if (res.statusCode >= 200 && res.statusCode < 300) {
        if (req.wantBody && text) sample.response = JSON.parse(text);
      } else {
        sample.error = text.slice(0, 300);
      }
    } catch (err) {
      sample.error = (err as { code?: string }).code ?? (err as Error).message;
    } finally {
      sample.done = clock();
      this.samples.push(sample);
      this.pending.delete(intended);
      this.inFlight--;
      if (!this.inFlight && this.idle.length) for (const resolve of this.idle.splice(0)) resolve();
    }
  }
}

export const ok = (s: Sample): boolean => s.status >= 200 && s.status < 300;
export const latency = (s: Sample): number => s.done - s.intended;

export interface LatencyStats {
  count: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
  /** Status codes of the failures (0 = network error / timeout) with counts. */
  failures: Record<string, number>;
}

/** Latency figures of the samples whose scheduled time falls in [from, to). */
export function statsOf(samples: Sample[], from = -Infinity, to = Infinity): LatencyStats {
  const inWindow = samples.filter((s) => s.intended >= from && s.intended < to);
  const lat = inWindow.map(latency).sort((a, b) => a - b);
  const failures: Record<string, number> = {};
  for (const s of inWindow) if (!ok(s)) failures[s.status] = (failures[s.status] ?? 0) + 1;
  return {
    count: inWindow.length,
    failed: inWindow.filter((s) => !ok(s)).length,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    max: lat.length ? lat[lat.length - 1] : NaN,
    failures,
  };
}

/** Nearest-rank quantile of sorted values; NaN when empty. */
export function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
