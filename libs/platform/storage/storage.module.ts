import { Module, type DynamicModule } from '@nestjs/common';
import { LocalStorageDriver } from './local-storage.driver';
import { S3StorageDriver } from './s3-storage.driver';
import { STORAGE_DRIVER, type StorageDriver } from './storage.driver';
import { resolveStorageOptions, STORAGE_OPTIONS, type ResolvedStorageOptions, type StorageModuleOptions } from './storage.options';
import { TenantStorage } from './tenant.storage';
import { SignedDownloads } from './signed-download.tokens';

/**
 * TenantStorage and SignedDownloads for domain code, with the driver FILES_DRIVER names. forRoot()
 * once per app (global). Needs TenancyModule (TenantContext), ControlPlaneModule (the registry, for
 * the tenant a signed download names) and ClsModule in the application.
 */
@Module({})
export class StorageModule {
  static forRoot(options: StorageModuleOptions = {}): DynamicModule {
    return {
      module: StorageModule,
      global: true,
      providers: [
        // Resolved while the app is built, so a bad setting stops startup rather than the first upload.
        { provide: STORAGE_OPTIONS, useFactory: () => resolveStorageOptions(options, process.env) },
        {
          provide: STORAGE_DRIVER,
          inject: [STORAGE_OPTIONS],
          useFactory: (o: ResolvedStorageOptions): StorageDriver =>
            o.driver === 's3' ? new S3StorageDriver(o.s3) : new LocalStorageDriver(o.root),
        },
        TenantStorage,
        SignedDownloads,
      ],
      // The driver itself for platform libs working on platform-owned keys or a whole prefix (exports).
      exports: [STORAGE_OPTIONS, STORAGE_DRIVER, TenantStorage, SignedDownloads],
    };
  }
}
