import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { CONTROL_PLANE_ENTITIES } from './control-plane.entities';
import { CONTROL_DATA_SOURCE, TenantRegistry } from './tenant.registry';
import { TenantMoveHints } from './tenant-move.hints';
import { withCredentials } from './connection-url';

@Global()
@Module({
  providers: [
    {
      provide: CONTROL_DATA_SOURCE,
      inject: [STRATA_CONFIG],
      // Its own role: tenant units of work (app role) cannot touch the control plane, and the
      // control plane cannot read tenant rows. DDL stays with the owner.
      useFactory: async (config: StrataConfig) =>
        new DataSource({
          type: 'postgres',
          url: withCredentials(config.databaseUrl, config.controlDbUser, config.controlDbPassword),
          entities: CONTROL_PLANE_ENTITIES,
          synchronize: false,
          installExtensions: false,
          applicationName: 'strata-control',
          extra: { max: 5 },
        }).initialize(),
    },
    TenantRegistry,
    TenantMoveHints,
  ],
  exports: [CONTROL_DATA_SOURCE, TenantRegistry, TenantMoveHints],
})
export class ControlPlaneModule implements OnApplicationShutdown {
  constructor(@Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.db.isInitialized) await this.db.destroy();
  }
}
