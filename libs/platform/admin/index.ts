export { AdminModule } from './admin.module';
export { TenantAdminService, type TenantView } from './tenant-admin.service';
export { CreateTenantDto, AddTenantUserDto } from './admin.dto';
