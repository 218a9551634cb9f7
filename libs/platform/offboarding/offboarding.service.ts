import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, TENANT_CHANGE_PUBLISHER, TenantRegistry, type AuditTrail, type TenantChangePublisher } from '#strata/control-plane';
import { MetricsService } from '#strata/observability';
import { OffboardingExecutor } from './offboarding.executor';
import { offboardingError, OffboardingErrorCode as E } from './offboarding.errors';
import { TenantDeletionsRepository } from './tenant-deletions.repository';
import { deletionReportView, DELETION_STEPS, type DeletionReportView } from './tenant-deletion.types';

/** A running deletion with no step finished for this long counts as stuck (strata_tenant_deletions_stuck). */
export const DELETION_STUCK_AFTER_MS = 10 * 60_000;

/** What operators ask of offboarding (admin API): delete a tenant, read its deletion report. The executor does the work. */
@Injectable()
export class OffboardingService implements OnApplicationBootstrap, OnModuleDestroy {
  private unregister?: () => void;

  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly deletions: TenantDeletionsRepository,
    private readonly executor: OffboardingExecutor,
    private readonly registry: TenantRegistry,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
    @Optional() @Inject(TENANT_CHANGE_PUBLISHER) private readonly changes?: TenantChangePublisher,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  onApplicationBootstrap(): void {
    this.unregister = this.metrics?.registerCollectedGauge(
      'strata_tenant_deletions_stuck',
      `Tenants in \`deleting\` whose offboarding finished no step for ${DELETION_STUCK_AFTER_MS / 60_000} minutes (see GET /admin/tenants/{id}/deletion-report).`,
      () => this.deletions.countStuck(DELETION_STUCK_AFTER_MS),
    );
  }

  onModuleDestroy(): void {
    this.unregister?.();
  }

  /**
   * The tenant becomes `deleting` at once (every instance stops serving it) and its deletion is
   * queued for an executor. Asking again returns the same deletion, running or finished.
   */
  async request(tenantId: string, requestedBy: string): Promise<DeletionReportView> {
    const open: unknown[] = await this.db.query(
      `SELECT 1 FROM control.tenant_moves m JOIN control.tenants t ON t.id = m.tenant_id
        WHERE m.tenant_id = $1 AND m.phase NOT IN ('done', 'failed', 'cancelled') AND t.status IN ('active', 'suspended')`,
      [tenantId],
    );
    if (open.length) throw offboardingError(E.moveInProgress, 'a move of this tenant is under way: cancel it (POST /admin/moves/{id}/cancel) or let it finish first');
    const deletion = await this.deletions.request(tenantId, requestedBy, DELETION_STEPS[0], (em, started) =>
      this.audit.record({ action: 'tenant.deletion_requested', tenantId, actor: { type: 'operator', id: requestedBy }, details: { slug: started.slug, tier: started.tier } }, em),
    );
    if (!deletion) {
      const tenant = await this.deletions.tenant(tenantId);
      if (!tenant || tenant.status === 'deleted') throw offboardingError(E.tenantNotFound, 'tenant not found');
      if (tenant.status === 'failed') {
        // Without its onboarding's record nothing tells the home it made from one its slug collided with.
        throw offboardingError(E.tenantStateConflict, 'this failed tenant has no onboarding record telling its own home from another: remove it by hand');
      }
      throw offboardingError(E.tenantStateConflict, `a ${tenant.status} tenant cannot be deleted yet`);
    }
    this.registry.invalidateTenant({ id: tenantId, slug: deletion.slug });
    await this.changes?.publishTenantChanged({ id: tenantId, slug: deletion.slug });
    this.executor.nudge();
    return deletionReportView(deletion);
  }

  async report(tenantId: string): Promise<DeletionReportView> {
    const deletion = await this.deletions.find(tenantId);
    if (deletion) return deletionReportView(deletion);
    if (!(await this.deletions.tenant(tenantId))) throw offboardingError(E.tenantNotFound, 'tenant not found');
    throw offboardingError(E.deletionNotFound, 'this tenant has not been deleted (DELETE /admin/tenants/{id} starts it)');
  }
}
