import { Injectable, Logger } from '@nestjs/common';
import type { PoolEntity, TenantEntity } from '#strata/control-plane';
import { TierDrivers, type TenantHome } from '#strata/tenancy/platform';

/**
 * Creates (and removes) a tenant's home through its tier's driver: nothing for pool beyond the
 * shared schema, a schema for bridge, a database for silo; each migrated to this release.
 */
@Injectable()
export class TenantProvisioner {
  private readonly logger = new Logger(TenantProvisioner.name);

  constructor(private readonly drivers: TierDrivers) {}

  homeOf(tenant: TenantEntity, pool: PoolEntity): TenantHome {
    return this.drivers.of(tenant.tier).homeOf(tenant, pool);
  }

  async provision(tenant: TenantEntity, pool: PoolEntity): Promise<void> {
    await this.drivers.of(tenant.tier).provision(this.homeOf(tenant, pool));
  }

  /** Best-effort undo of provision(); used when onboarding fails half-way. Never a shared home's other tenants. */
  async deprovision(tenant: TenantEntity, pool: PoolEntity): Promise<void> {
    try {
      await this.drivers.of(tenant.tier).drop(this.homeOf(tenant, pool), tenant.id);
    } catch (err) {
      this.logger.error(`could not remove the home of tenant ${tenant.id}: ${(err as Error).message}`);
    }
  }
}
