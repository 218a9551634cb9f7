import { Global, Module } from '@nestjs/common';
import { AUDIT_LOG } from '#strata/control-plane';
import { AdminAuditController, TenantAuditController } from './audit.controller';
import { AuditLog } from './audit.log';

/**
 * The writer: AuditLog, also as control-plane's AUDIT_LOG port (which auth, admin and moves
 * inject). Global, so one import in each app (API, worker, CLI) serves every lib that records.
 */
@Global()
@Module({
  providers: [AuditLog, { provide: AUDIT_LOG, useExisting: AuditLog }],
  exports: [AuditLog, AUDIT_LOG],
})
export class AuditLogModule {}

/** The writer and the read routes (`GET /admin/audit`, `GET /audit`): the API imports this one. */
@Module({
  imports: [AuditLogModule],
  controllers: [AdminAuditController, TenantAuditController],
})
export class AuditModule {}
