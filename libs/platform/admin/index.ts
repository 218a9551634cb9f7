export { AdminModule } from './admin.module';
export { TenantAdminService } from './tenant-admin.service';
export { CreateTenantDto, AddTenantUserDto, MaintenanceDto, TenantView, TenantUserView } from './admin.dto';
export { CreatePoolDto, PoolView } from './pools.dto';
export { AdminErrorCode } from './admin.errors';
