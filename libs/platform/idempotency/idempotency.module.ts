import { Module } from '@nestjs/common';
import { IdempotencyInterceptor } from './idempotency.interceptor';
import { IdempotencyKeySweeper } from './idempotency-key.sweeper';
import { IdempotencyKeysRepository } from './idempotency-keys.repository';
import { IdempotentRequests } from './idempotent-requests';

/**
 * Imported by every domain module whose controllers use @Idempotent() (the interceptor is built in
 * that module's scope and needs IdempotentRequests from here), and by apps/worker for the sweep.
 * Needs STRATA_CONFIG and TenancyModule (both global).
 */
@Module({
  providers: [IdempotencyKeysRepository, IdempotentRequests, IdempotencyInterceptor, IdempotencyKeySweeper],
  exports: [IdempotentRequests, IdempotencyInterceptor, IdempotencyKeySweeper],
})
export class IdempotencyModule {}
