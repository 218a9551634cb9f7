/** Options of HttpClientModule.forRoot(); anything unset comes from the environment, then defaults. */
export interface HttpClientOptions {
  /** Default per-request timeout (whole exchange, body included). Env `OUTBOUND_HTTP_TIMEOUT_MS`, default 5000. */
  timeoutMs?: number;
  /** `User-Agent` of every outbound call. Default `strata/<version>`. */
  userAgent?: string;
}

export type ResolvedHttpClientOptions = Required<HttpClientOptions>;

export const HTTP_CLIENT_OPTIONS = Symbol('HTTP_CLIENT_OPTIONS');
export const DEFAULT_OUTBOUND_TIMEOUT_MS = 5000;
// setTimeout's ceiling (2^31 - 1 ms); AbortSignal.timeout() fires at once above it.
export const MAX_OUTBOUND_TIMEOUT_MS = 2 ** 31 - 1;

/** A positive integer number of milliseconds that a timer can hold, or a message naming `what`. */
export function checkTimeoutMs(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_OUTBOUND_TIMEOUT_MS) {
    throw new Error(`${what} must be an integer number of milliseconds in 1..${MAX_OUTBOUND_TIMEOUT_MS}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Reads and validates once, at startup, so a bad value stops the process with its name.
 * (STRATA_CONFIG stays untouched: this lib owns its settings.)
 */
export function resolveHttpClientOptions(options: HttpClientOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedHttpClientOptions {
  const raw = env.OUTBOUND_HTTP_TIMEOUT_MS;
  const timeoutMs =
    options.timeoutMs !== undefined
      ? checkTimeoutMs(options.timeoutMs, 'HttpClientModule timeoutMs')
      : raw === undefined || raw === ''
        ? DEFAULT_OUTBOUND_TIMEOUT_MS
        : checkTimeoutMs(Number(raw), `config: OUTBOUND_HTTP_TIMEOUT_MS (${JSON.stringify(raw)})`);
  const userAgent = options.userAgent ?? `strata/${env.npm_package_version || 'dev'}`;
  // Header values cannot hold control characters; refused here rather than on the first call.
  if (!/^[\x20-\x7e]{1,256}$/.test(userAgent)) throw new Error(`HttpClientModule userAgent ${JSON.stringify(userAgent)} is not a valid header value`);
  return { timeoutMs, userAgent };
}
