/** Queue of the per-tenant key sweeps (apps/worker's cron fans one job out per active tenant). */
export const IDEMPOTENCY_KEY_SWEEP_QUEUE = 'idempotency-key-sweep';
export const IDEMPOTENCY_KEY_SWEEP_JOB = 'sweep-expired-keys';

// Read once at startup: @Processor() takes its options when the class is decorated.
/** Tenants one worker sweeps at a time. Env `IDEMPOTENCY_KEY_SWEEP_CONCURRENCY`, default 2. */
export const IDEMPOTENCY_KEY_SWEEP_CONCURRENCY = Number(process.env.IDEMPOTENCY_KEY_SWEEP_CONCURRENCY || 2);

/** Rows one DELETE takes; each batch is its own short transaction, so a backlog never holds a long one. */
export const IDEMPOTENCY_KEY_SWEEP_BATCH = 1000;
