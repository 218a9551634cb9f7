import type { CorsOptions } from '@nestjs/common/interfaces/external/cors-options.interface';

/** What a browser app may send: the headers the API reads. */
export const CORS_ALLOWED_HEADERS = ['authorization', 'content-type', 'x-tenant', 'x-request-id', 'idempotency-key'] as const;
/** What a browser app may read from answers: request id, retry and rate-limit hints, replays, file metadata. */
export const CORS_EXPOSED_HEADERS = [
  'x-request-id',
  'retry-after',
  'idempotent-replayed',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'ratelimit-policy',
  'location',
  'etag',
  'content-disposition',
  'content-range',
  'accept-ranges',
] as const;

// An exact origin (scheme://host[:port]) or one label of subdomain wildcard (scheme://*.domain[:port]).
const ORIGIN = /^(https?):\/\/(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*)(:\d{1,5})?$/;

/**
 * CORS_ORIGINS → the origins list; refuses (at startup) anything that is not an exact origin or a
 * `*.domain` pattern, and `*` when credentials are on (browsers refuse `*` with credentials anyway,
 * and echoing any origin instead would hand every site the users' cookies).
 */
export function parseCorsOrigins(raw: string | undefined, credentials: boolean): string[] {
  const origins = (raw ?? '')
    .split(',')
    .map((o) => o.trim().toLowerCase().replace(/\/$/, ''))
    .filter(Boolean);
  for (const o of origins) {
    if (o === '*') {
      if (credentials) throw new Error('config: CORS_ORIGINS=* cannot be combined with CORS_CREDENTIALS=true; list the origins');
      continue;
    }
    if (!ORIGIN.test(o)) throw new Error(`config: CORS_ORIGINS entry ${JSON.stringify(o)} is not an origin like https://app.example.com or https://*.example.com`);
  }
  if (origins.includes('*') && origins.length > 1) throw new Error('config: CORS_ORIGINS=* stands alone');
  return origins;
}

/** Whether a request's Origin header is one of `origins` (exact, or one subdomain label of a `*.` pattern). */
export function corsOriginAllowed(origins: readonly string[], origin: string | undefined): boolean {
  if (!origin) return false;
  const o = origin.toLowerCase();
  for (const allowed of origins) {
    if (allowed === '*' || allowed === o) return true;
    const m = ORIGIN.exec(allowed);
    if (m?.[2]) {
      const [, scheme, , domain, port = ''] = m;
      const got = ORIGIN.exec(o);
      // Exactly one label in front of the domain: https://acme.example.com, not https://a.b.example.com.
      if (got && !got[2] && got[1] === scheme && (got[4] ?? '') === port && got[3].endsWith(`.${domain}`) && !got[3].slice(0, -domain.length - 1).includes('.')) {
        return true;
      }
    }
  }
  return false;
}

/** Nest's enableCors() options for the configured origins, or undefined (no CORS: same-origin only). */
export function corsOptionsOf(config: { corsOrigins: string[]; corsCredentials: boolean }): CorsOptions | undefined {
  if (config.corsOrigins.length === 0) return undefined;
  const origins = config.corsOrigins;
  return {
    // A function rather than the list: the `*.domain` patterns, and an answer without CORS headers
    // (not an error) for any other origin, which the browser then refuses.
    origin: (origin, done) => done(null, corsOriginAllowed(origins, origin)),
    credentials: config.corsCredentials,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: [...CORS_ALLOWED_HEADERS],
    exposedHeaders: [...CORS_EXPOSED_HEADERS],
    // Browsers cap it (Chromium at 2 h); 10 min keeps a config change from lingering.
    maxAge: 600,
  };
}
