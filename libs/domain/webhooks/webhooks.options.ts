/** Queue of webhook deliveries (one job per delivery row, jobId = delivery id). */
export const WEBHOOK_DELIVERY_QUEUE = 'webhook-delivery';
/** Queue of the outbox relay: one job per active tenant per relay run (apps/worker fans them out). */
export const WEBHOOK_RELAY_QUEUE = 'webhook-relay';
export const WEBHOOK_RELAY_JOB = 'relay-pending-deliveries';
/** Events an endpoint can subscribe to. Names follow the in-process events that cause them. */
export const WEBHOOK_EVENT_TYPES = [
  'invoice.created',
  'invoice.updated',
  'project.created',
  'project.updated',
  'project.deleted',
  'task.created',
  'task.updated',
  'task.deleted',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
/** Sent by POST /webhooks/:id/ping to that endpoint only; nobody subscribes to it. */
export const WEBHOOK_PING_EVENT = 'webhook.ping';
/** Every event type a delivery can carry. */
export const WEBHOOK_DELIVERY_EVENT_TYPES = [...WEBHOOK_EVENT_TYPES, WEBHOOK_PING_EVENT] as const;
export type WebhookDeliveryEventType = (typeof WEBHOOK_DELIVERY_EVENT_TYPES)[number];

// Read once at startup: @Processor() takes its options when the class is decorated.
/** Deliveries one worker sends at a time. */
export const WEBHOOK_DELIVERY_CONCURRENCY = Number(process.env.WEBHOOK_DELIVERY_CONCURRENCY || 8);
/** Tenants one worker relays at a time (each relay is one query and a few Redis round trips). */
export const WEBHOOK_RELAY_CONCURRENCY = Number(process.env.WEBHOOK_RELAY_CONCURRENCY || 2);

export interface WebhooksOptions {
  /** Deliver to loopback/private/link-local addresses too. Env `WEBHOOKS_ALLOW_PRIVATE_NETWORKS`, default false. */
  allowPrivateNetworks: boolean;
  /** Attempts per delivery, first one included. Env `WEBHOOK_MAX_ATTEMPTS`, default 8. */
  maxAttempts: number;
  /** Base of the exponential backoff between attempts. Env `WEBHOOK_BACKOFF_MS`, default 10000. */
  backoffMs: number;
  /** Deadline of one POST. Env `WEBHOOK_TIMEOUT_MS`, default 10000. */
  timeoutMs: number;
  /**
   * The relay re-enqueues `pending` rows created more than this long ago (database clock), leaving
   * younger rows to their after-commit enqueue. Env `WEBHOOK_RELAY_AFTER_MS`, default 60000.
   */
  relayAfterMs: number;
  /** Rows one tenant's relay job takes per run, oldest first. Env `WEBHOOK_RELAY_BATCH_SIZE`, default 500. */
  relayBatchSize: number;
  /**
   * After a secret rotation, deliveries are signed with the old secret too for this long (two
   * signatures in `webhook-signature`). Env `WEBHOOK_SECRET_GRACE_MS`, default 24 h.
   */
  secretGraceMs: number;
  /**
   * Deliveries older than this are deleted by each tenant's relay run, and so are deleted endpoints
   * whose log is empty by then. Env `WEBHOOK_DELIVERY_RETENTION_MS`, default 30 days.
   */
  deliveryRetentionMs: number;
}

export const WEBHOOKS_OPTIONS = Symbol('WEBHOOKS_OPTIONS');

function int(env: NodeJS.ProcessEnv, key: string, fallback: number, min: number, max: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`config: ${key} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  return n;
}

function bool(env: NodeJS.ProcessEnv, key: string): boolean {
  const raw = (env[key] ?? '').trim().toLowerCase();
  if (raw === '' || raw === 'false' || raw === '0') return false;
  if (raw === 'true' || raw === '1') return true;
  throw new Error(`config: ${key} must be true or false, got ${JSON.stringify(env[key])}`);
}

/** Reads and validates once, at startup: a bad value stops the process with its name. */
export function resolveWebhooksOptions(env: NodeJS.ProcessEnv = process.env): WebhooksOptions {
  return {
    allowPrivateNetworks: bool(env, 'WEBHOOKS_ALLOW_PRIVATE_NETWORKS'),
    maxAttempts: int(env, 'WEBHOOK_MAX_ATTEMPTS', 8, 1, 50),
    backoffMs: int(env, 'WEBHOOK_BACKOFF_MS', 10_000, 1, 24 * 3600_000),
    timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 1, 120_000),
    relayAfterMs: int(env, 'WEBHOOK_RELAY_AFTER_MS', 60_000, 1000, 7 * 24 * 3600_000),
    relayBatchSize: int(env, 'WEBHOOK_RELAY_BATCH_SIZE', 500, 1, 10_000),
    secretGraceMs: int(env, 'WEBHOOK_SECRET_GRACE_MS', 24 * 3600_000, 0, 30 * 24 * 3600_000),
    deliveryRetentionMs: int(env, 'WEBHOOK_DELIVERY_RETENTION_MS', 30 * 24 * 3600_000, 60_000, 365 * 24 * 3600_000),
  };
}
