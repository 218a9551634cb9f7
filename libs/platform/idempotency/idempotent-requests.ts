import { Inject, Injectable } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { LOCK_NOT_AVAILABLE, STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantConnectionManager } from '#strata/tenancy';
import { IdempotencyKeyInUseError, IdempotencyKeyReusedError } from './idempotency.errors';
import { idempotencyKeyRowId } from './idempotency-key';
import { IdempotencyKeysRepository } from './idempotency-keys.repository';

/** What the request (or its replay) answers. */
export interface IdempotentAnswer {
  status: number;
  /** A JSON value, or undefined for an answer without a body. */
  body: unknown;
  /** True when the answer is the stored one of an earlier request with this key. */
  replayed: boolean;
}

/** The request as the key's row records it. */
export interface IdempotentRequest {
  /** `POST /projects/:id/tasks` */
  route: string;
  /** requestFingerprint() of it. */
  hash: string;
}

// A live row can vanish between claim and read only if the sweep took it in between (it was expiring).
const CLAIM_ATTEMPTS = 3;

/**
 * Runs a request at most once per (tenant, key): one tenant transaction — TenantConnectionManager's
 * unit of work, which the handler's own transaction() and read() calls join — that claims the key
 * first, runs the handler, and records its answer; all of it commits together or not at all. So
 * the key is taken iff the create committed: a handler that throws rolls the key back with its
 * data, and the same key is free for the client's next try.
 */
@Injectable()
export class IdempotentRequests {
  private readonly retentionSeconds: number;

  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly keys: IdempotencyKeysRepository,
    @Inject(STRATA_CONFIG) config: StrataConfig,
  ) {
    this.retentionSeconds = config.idempotencyKeyRetentionMs / 1000;
  }

  run(key: string, request: IdempotentRequest, handle: () => Promise<{ status: number; body: unknown }>): Promise<IdempotentAnswer> {
    const id = idempotencyKeyRowId(key);
    return this.connections.transaction(async () => {
      for (let attempt = 1; ; attempt++) {
        if (await this.claim({ id, key, route: request.route, requestHash: request.hash })) break;
        const stored = await this.keys.find(id);
        if (stored) {
          if (stored.requestHash !== request.hash) throw new IdempotencyKeyReusedError(stored.route);
          const body = stored.responseBody === null ? undefined : (JSON.parse(stored.responseBody) as unknown);
          return { status: stored.responseStatus, body, replayed: true };
        }
        if (attempt >= CLAIM_ATTEMPTS) throw new Error(`idempotency key row ${id} neither claimable nor readable after ${attempt} attempts`);
      }
      const answer = await handle();
      // As Express' res.json() will send it (no replacer or spacing is configured), so a replay is byte for byte the same.
      const text = answer.body === undefined ? null : JSON.stringify(answer.body);
      await this.keys.complete(id, answer.status, text ?? null);
      return { ...answer, replayed: false };
    });
  }

  private async claim(claim: Parameters<IdempotencyKeysRepository['claim']>[0]): Promise<boolean> {
    try {
      return await this.keys.claim(claim, this.retentionSeconds);
    } catch (err) {
      if (err instanceof QueryFailedError && (err.driverError as { code?: string } | undefined)?.code === LOCK_NOT_AVAILABLE) {
        throw new IdempotencyKeyInUseError();
      }
      throw err;
    }
  }
}
