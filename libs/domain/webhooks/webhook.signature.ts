import { randomBytes } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

// Deliveries follow the Standard Webhooks specification (https://www.standardwebhooks.com) through
// its official TypeScript package, so receivers verify with the official library of their
// language. This file is the one place the rest of the code (and the receivers' docs) go through.

/** The event id: the same on every attempt of one event, so receivers deduplicate on it. */
export const WEBHOOK_ID_HEADER = 'webhook-id';
/** Unix seconds of this attempt (signed per attempt). */
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
/** `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`; several space-separated entries allowed. */
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';
/**
 * How far `webhook-timestamp` may be from now, either way, before verification refuses it. This is
 * the library's own window (fixed at 5 minutes, not configurable): stated here, not chosen here.
 */
export const WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = 'whsec_';

/** The three headers that sign one attempt (a type literal: assignable to any header record). */
export type WebhookSignatureHeaders = {
  [WEBHOOK_ID_HEADER]: string;
  [WEBHOOK_TIMESTAMP_HEADER]: string;
  [WEBHOOK_SIGNATURE_HEADER]: string;
};

/** Request headers as a receiver has them: fetch `Headers`, or node's `IncomingHttpHeaders` (any case). */
export type ReceivedWebhookHeaders = Headers | Record<string, string | string[] | undefined>;

/** The secret cannot be used as a Standard Webhooks key (`whsec_` + standard base64, not empty). */
export class InvalidWebhookSecretError extends Error {
  override readonly name = 'InvalidWebhookSecretError';
}

/** A fresh signing secret: `whsec_` + 32 random bytes in standard base64 (the spec's format; 256-bit key). */
export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

function webhookFor(secret: string): Webhook {
  // The library takes the secret as shown to the tenant: it strips `whsec_` and base64-decodes the rest.
  try {
    return new Webhook(secret);
  } catch (err) {
    throw new InvalidWebhookSecretError(`webhook secret is not a whsec_ base64 key: ${(err as Error).message}`);
  }
}

/**
 * The Standard Webhooks headers for sending `body` as event `id` at `at` (default now; the header
 * carries whole seconds), signed with each of `secret` (one or several). Throws InvalidWebhookSecretError for a secret the library cannot decode.
 */
export function signWebhook(secret: string | readonly string[], id: string, body: string | Buffer, at: Date = new Date()): WebhookSignatureHeaders {
  const ms = at.getTime();
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`webhook timestamp must be a valid date after 1970, got ${String(at)}`);
  const secrets = typeof secret === 'string' ? [secret] : secret;
  if (secrets.length === 0) throw new InvalidWebhookSecretError('no webhook secret to sign with');
  // Several secrets (a rotation's grace period): one `v1,…` per secret, space-separated, as the
  // spec allows; a receiver holding either secret finds its signature among them.
  const signature = secrets.map((s) => webhookFor(s).sign(id, at, body)).join(' ');
  return {
    [WEBHOOK_ID_HEADER]: id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(Math.floor(ms / 1000)),
    [WEBHOOK_SIGNATURE_HEADER]: signature,
  };
}

function header(headers: ReceivedWebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).has === 'function') {
    return (headers as Headers).get(name) ?? undefined;
  }
  for (const [key, value] of Object.entries(headers)) {
    // A repeated header arrives as an array: ambiguous, so it counts as missing.
    if (key.toLowerCase() === name) return typeof value === 'string' ? value : undefined;
  }
  return undefined;
}

/**
 * True when the headers sign exactly these raw body bytes with `secret`, for this `webhook-id`, at a
 * `webhook-timestamp` within WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS of now: the library's `verify`.
 * Verify the raw body as received, before any JSON parsing (re-serialised JSON has other bytes).
 * A missing header, a forged or stale request is `false`; a malformed secret throws
 * InvalidWebhookSecretError (configuration, not the request).
 */
export function verifyWebhook(body: string | Buffer, headers: ReceivedWebhookHeaders, secret: string): boolean {
  const webhook = webhookFor(secret);
  const id = header(headers, WEBHOOK_ID_HEADER);
  const timestamp = header(headers, WEBHOOK_TIMESTAMP_HEADER);
  const signature = header(headers, WEBHOOK_SIGNATURE_HEADER);
  if (id === undefined || timestamp === undefined || signature === undefined) return false;
  try {
    webhook.verify(
      body,
      { [WEBHOOK_ID_HEADER]: id, [WEBHOOK_TIMESTAMP_HEADER]: timestamp, [WEBHOOK_SIGNATURE_HEADER]: signature },
      { jsonParse: false },
    );
    return true;
  } catch (err) {
    if (err instanceof WebhookVerificationError) return false;
    throw err;
  }
}
