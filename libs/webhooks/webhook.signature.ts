import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

// Written on node:crypto rather than taken from a package: Stripe-style signing is one HMAC and a
// constant-time compare, and receivers must be able to reimplement it from the README in any language.

/** Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export const WEBHOOK_SIGNATURE_HEADER = 'Strata-Signature';
/** Header carrying the event id; the same on every retry, so receivers can deduplicate. */
export const WEBHOOK_EVENT_ID_HEADER = 'Strata-Event-Id';
/** How old a signature may be before verifyWebhookSignature() refuses it (replay window). */
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = 'whsec_';

/** A fresh signing secret: `whsec_` + 32 random bytes, base64url (256 bits, as strong as the HMAC). */
export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

function hmac(secret: string, timestamp: number, body: string | Buffer): Buffer {
  // The secret is used exactly as shown to the tenant, prefix included: nothing to decode.
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

/** The `Strata-Signature` value for `body` sent at `timestamp` (unix seconds). */
export function signWebhookPayload(body: string | Buffer, secret: string, timestamp = Math.floor(Date.now() / 1000)): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new RangeError(`signature timestamp must be unix seconds, got ${timestamp}`);
  return `t=${timestamp},v1=${hmac(secret, timestamp, body).toString('hex')}`;
}

export interface VerifyWebhookSignatureOptions {
  /** Largest accepted |now - t| in seconds. Default 300. */
  toleranceSeconds?: number;
  /** "Now" in unix seconds (tests). */
  now?: number;
}

/**
 * True when `header` signs exactly these raw body bytes with `secret` and its timestamp is within
 * the tolerance. Accepts several v1 entries (a future secret rotation may send two). Verify the raw
 * body as received, before any JSON parsing: re-serialised JSON does not have the same bytes.
 */
export function verifyWebhookSignature(
  body: string | Buffer,
  header: string | null | undefined,
  secret: string,
  options: VerifyWebhookSignatureOptions = {},
): boolean {
  if (typeof header !== 'string' || header.length > 1024) return false;
  let timestamp: number | undefined;
  const candidates: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) candidates.push(Buffer.from(value, 'hex'));
  }
  if (timestamp === undefined || candidates.length === 0) return false;
  const tolerance = options.toleranceSeconds ?? DEFAULT_SIGNATURE_TOLERANCE_SECONDS;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > tolerance) return false;
  const expected = hmac(secret, timestamp, body);
  return candidates.some((c) => timingSafeEqual(c, expected));
}
