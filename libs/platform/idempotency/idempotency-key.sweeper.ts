import { Inject, Injectable, Logger } from '@nestjs/common';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { IdempotencyKeysRepository } from './idempotency-keys.repository';
import { IDEMPOTENCY_KEY_SWEEP_BATCH } from './idempotency.options';

/** What one tenant's sweep did: its job's return value. */
export interface IdempotencyKeySweepResult {
  tenantId: string;
  deleted: number;
}

/** What the sweep job carries besides its tenant envelope: nothing (the tenant is the envelope's). */
export type IdempotencyKeySweepPayload = Record<string, never>;

/**
 * Deletes the current tenant's keys older than IDEMPOTENCY_KEY_RETENTION_SECONDS (database clock),
 * in batches of IDEMPOTENCY_KEY_SWEEP_BATCH, each in its own transaction. Storage hygiene only: a
 * key past the retention is already free to reuse (the claim takes it over), swept or not.
 */
@Injectable()
export class IdempotencyKeySweeper {
  private readonly logger = new Logger('IdempotencyKeySweeper');
  private readonly retentionSeconds: number;

  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
    private readonly keys: IdempotencyKeysRepository,
    @Inject(STRATA_CONFIG) config: StrataConfig,
  ) {
    this.retentionSeconds = config.idempotencyKeyRetentionMs / 1000;
  }

  async sweep(): Promise<IdempotencyKeySweepResult> {
    const tenant = this.context.require('sweeping idempotency keys').tenant;
    let deleted = 0;
    for (;;) {
      const n = await this.connections.transaction(() => this.keys.deleteExpired(this.retentionSeconds, IDEMPOTENCY_KEY_SWEEP_BATCH));
      deleted += n;
      if (n < IDEMPOTENCY_KEY_SWEEP_BATCH) break;
    }
    // Every tenant, every run: the common case stays out of the log.
    if (deleted > 0) this.logger.log(`tenant ${tenant.slug}: deleted ${deleted} idempotency key(s) older than ${this.retentionSeconds} s`);
    return { tenantId: tenant.id, deleted };
  }
}
