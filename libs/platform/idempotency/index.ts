// Public API of libs/platform/idempotency: Idempotency-Key on tenant create routes, recorded in the
// tenant's own home in the create's transaction; the per-tenant sweep of expired keys.
export { IdempotencyModule } from './idempotency.module';
export { Idempotent } from './idempotent.decorator';
export { IdempotencyInterceptor } from './idempotency.interceptor';
export { IdempotentRequests, type IdempotentAnswer, type IdempotentRequest } from './idempotent-requests';
export { IdempotencyKeySweeper, type IdempotencyKeySweepPayload, type IdempotencyKeySweepResult } from './idempotency-key.sweeper';
export { IdempotencyKeySweepProcessor } from './idempotency-key-sweep.processor';
export { IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER, parseIdempotencyKey, idempotencyKeyRowId, requestFingerprint } from './idempotency-key';
export { IDEMPOTENCY_KEY_SWEEP_QUEUE, IDEMPOTENCY_KEY_SWEEP_JOB } from './idempotency.options';
export {
  IdempotencyErrorCode,
  InvalidIdempotencyKeyError,
  IdempotencyKeyReusedError,
  IdempotencyKeyInUseError,
} from './idempotency.errors';
