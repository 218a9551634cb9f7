import { Inject, Injectable, Optional } from '@nestjs/common';
import { TENANT_CHANGE_PUBLISHER, TenantRegistry, type TenantChangePublisher } from '#strata/control-plane';

/**
 * Tells every instance's TenantRegistry that a membership changed (added, role changed, removed),
 * so the guard's next request sees it at once rather than after REGISTRY_CACHE_TTL_MS. Call it
 * after COMMIT: invalidating earlier lets a concurrent read cache the old answer again.
 */
@Injectable()
export class MembershipChanges {
  constructor(
    private readonly registry: TenantRegistry,
    // Absent without Redis: then only this instance's registry learns of it (others wait a TTL).
    @Optional() @Inject(TENANT_CHANGE_PUBLISHER) private readonly publisher?: TenantChangePublisher,
  ) {}

  async changed(userId: string, tenantId: string): Promise<void> {
    this.registry.invalidateMembership(userId, tenantId);
    await this.publisher?.publishMembershipChanged(userId, tenantId);
  }
}
