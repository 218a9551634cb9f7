// autocannon ships no types; this is the slice of its programmatic API the bench uses.

export interface AutocannonOptions {
  url: string;
  connections: number;
  /** Seconds to run; or `amount`: this many requests, every one answered before it ends. */
  duration?: number;
  amount?: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Request body; with `idReplacement`, every `[<id>]` in it becomes a fresh unique id per request. */
  body?: string;
  idReplacement?: boolean;
  timeout?: number;
  pipelining?: number;
  /** Requests cycled through; `setupRequest` may rewrite each before it is sent (e.g. pick a random tenant). */
  requests?: AutocannonRequest[];
}

export interface AutocannonRequest {
  method?: 'GET' | 'POST';
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (req: { method?: string; path?: string; headers: Record<string, string>; body?: string }) => unknown;
}

export interface AutocannonHistogram {
  average: number;
  mean: number;
  stddev: number;
  min: number;
  max: number;
  total: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface AutocannonResult {
  duration: number;
  requests: AutocannonHistogram & { sent: number };
  latency: AutocannonHistogram;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  statusCodeStats: Record<string, { count: number }>;
}

type Autocannon = (opts: AutocannonOptions, cb: (err: Error | null, result: AutocannonResult) => void) => unknown;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as Autocannon;

export function runAutocannon(opts: AutocannonOptions): Promise<AutocannonResult> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}
