/**
 * Typed failures of an outbound call, so callers decide on retries by type, never by parsing
 * undici's messages. The target is named by origin only: paths and query strings of webhook URLs
 * often carry tokens, and these messages end up in logs and in job failure reasons.
 */
export class OutboundTimeoutError extends Error {
  constructor(
    readonly method: string,
    readonly origin: string,
    readonly timeoutMs: number,
  ) {
    super(`outbound ${method} to ${origin} timed out after ${timeoutMs} ms`);
    this.name = 'OutboundTimeoutError';
  }
}

/** The request never got an HTTP answer: DNS, refused or reset connection, TLS, a blocked address. */
export class OutboundRequestError extends Error {
  constructor(
    readonly method: string,
    readonly origin: string,
    cause: unknown,
  ) {
    super(`outbound ${method} to ${origin} failed: ${describeCause(cause)}`, { cause });
    this.name = 'OutboundRequestError';
  }
}

// undici reports every network failure as TypeError('fetch failed'); the useful part is its cause.
function describeCause(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause ?? err;
  const code = (cause as { code?: unknown })?.code;
  const message = (cause as Error)?.message ?? String(cause);
  return typeof code === 'string' && !message.includes(code) ? `${code} ${message}` : message;
}

/** `https://host:port` of a URL, for messages; never the path, query or userinfo. */
export function originOf(url: string | URL): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}
