import { Injectable, Logger } from '@nestjs/common';
import type { TenantEntity } from './control-plane.entities';

/** Where a tenant is about to live (its record's placement fields): what a move's executor says right before its cutover. */
export type TenantMoveHint = { tenantId: string; slug: string } & Pick<TenantEntity, 'tier' | 'poolId' | 'schemaName' | 'databaseName'>;

/**
 * In-process delivery of move hints: a move's executor publishes one (TenantChangePublisher) just
 * before it fences the tenant, and each instance that serves the tenant opens connections to the
 * target (libs/platform/tenancy's placement warmer) so the writes its fence holds do not also wait
 * for new server connections after the flip. A hint is never needed for correctness: lost, late
 * or wrong, it costs only that wait.
 */
@Injectable()
export class TenantMoveHints {
  private readonly logger = new Logger(TenantMoveHints.name);
  private readonly listeners = new Set<(hint: TenantMoveHint) => void | Promise<void>>();

  /** Registers a listener; the returned function removes it. */
  on(listener: (hint: TenantMoveHint) => void | Promise<void>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hands the hint to every listener; never throws, never waits for them. */
  emit(hint: TenantMoveHint): void {
    for (const listener of this.listeners) {
      Promise.resolve()
        .then(() => listener(hint))
        .catch((err: unknown) => this.logger.warn(`move hint for tenant ${hint.tenantId} not taken: ${(err as Error).message}`));
    }
  }
}

/** A hint as it arrives over the wire, or null when it is not one. */
export function readMoveHint(value: unknown): TenantMoveHint | null {
  const v = value as Partial<Record<keyof TenantMoveHint, unknown>> | null;
  if (!v || typeof v !== 'object') return null;
  const { tenantId, slug, tier, poolId, schemaName, databaseName } = v;
  if (typeof tenantId !== 'string' || typeof slug !== 'string' || typeof poolId !== 'string' || typeof schemaName !== 'string') return null;
  if (tier !== 'pool' && tier !== 'bridge' && tier !== 'silo') return null;
  if (databaseName !== null && typeof databaseName !== 'string') return null;
  return { tenantId, slug, tier, poolId, schemaName, databaseName };
}
